package arrowconv

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// kind groups the types that share a buffer layout.
type kind uint8

const (
	kindNull        kind = iota // no buffers
	kindBool                    // validity, value bitmap
	kindFixed                   // validity, width bytes per value
	kindBinary                  // validity, int32 offsets, data
	kindLargeBinary             // validity, int64 offsets, data
	kindList                    // validity, int32 offsets; 1 child
	kindLargeList               // validity, int64 offsets; 1 child
	kindFixedList               // validity; 1 child of width values per slot
	kindStruct                  // validity; any number of children
)

// layout is how one type's array is stored.
type layout struct {
	kind kind
	// width is the bytes per value for kindFixed and the list size for
	// kindFixedList.
	width int
}

// buffers is the number of buffers the C data interface gives the layout.
func (l layout) buffers() int {
	switch l.kind {
	case kindNull:
		return 0
	case kindFixedList, kindStruct:
		return 1
	case kindBinary, kindLargeBinary:
		return 3
	default:
		return 2
	}
}

// offsetWidth is the size of one offset for the offset-based kinds.
func (l layout) offsetWidth() int {
	switch l.kind {
	case kindLargeBinary, kindLargeList:
		return 8
	default:
		return 4
	}
}

// layoutOf returns the layout of a type format accepts; ok is false for any
// other type.
func layoutOf(dt arrow.DataType) (layout, bool) {
	switch dt.ID() {
	case arrow.NULL:
		return layout{kind: kindNull}, true
	case arrow.BOOL:
		return layout{kind: kindBool}, true
	case arrow.FIXED_SIZE_BINARY:
		return layout{kind: kindFixed, width: dt.(*arrow.FixedSizeBinaryType).ByteWidth}, true
	case arrow.INT8, arrow.UINT8, arrow.INT16, arrow.UINT16, arrow.INT32, arrow.UINT32,
		arrow.INT64, arrow.UINT64, arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.DATE32, arrow.DATE64, arrow.TIME32, arrow.TIME64, arrow.TIMESTAMP, arrow.DURATION,
		arrow.INTERVAL_MONTHS, arrow.INTERVAL_DAY_TIME, arrow.INTERVAL_MONTH_DAY_NANO,
		arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		fw, ok := dt.(arrow.FixedWidthDataType)
		if !ok || fw.BitWidth() <= 0 || fw.BitWidth()%8 != 0 {
			return layout{}, false
		}
		return layout{kind: kindFixed, width: fw.BitWidth() / 8}, true
	case arrow.BINARY, arrow.STRING:
		return layout{kind: kindBinary}, true
	case arrow.LARGE_BINARY, arrow.LARGE_STRING:
		return layout{kind: kindLargeBinary}, true
	case arrow.LIST:
		return layout{kind: kindList}, true
	case arrow.LARGE_LIST:
		return layout{kind: kindLargeList}, true
	case arrow.FIXED_SIZE_LIST:
		return layout{kind: kindFixedList, width: int(dt.(*arrow.FixedSizeListType).Len())}, true
	case arrow.STRUCT:
		return layout{kind: kindStruct}, true
	}
	return layout{}, false
}

// Checked arithmetic on non-negative ints.

const maxInt = int(^uint(0) >> 1)

func addOK(a, b int) (int, bool) {
	if a > maxInt-b {
		return 0, false
	}
	return a + b, true
}

func mulOK(a, b int) (int, bool) {
	if a != 0 && b > maxInt/a {
		return 0, false
	}
	return a * b, true
}

// bitmapBytes is the size of a bitmap of n bits, without overflow.
func bitmapBytes(n int) int { return n/8 + min(n%8, 1) }

func align8(n int) int { return (n + 7) &^ 7 }
