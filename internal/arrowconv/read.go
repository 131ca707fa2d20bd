package arrowconv

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dora-go/dora/abi/wire"
)

// ReadRaw returns a uint8 array without nulls over all of data, sharing its
// memory.
func ReadRaw(data []byte) arrow.Array {
	buf := memory.NewBufferBytes(data[:len(data):len(data)])
	d := array.NewData(arrow.PrimitiveTypes.Uint8, len(data), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// Read returns the array info describes inside data. The array's buffers are
// sub-slices of data (no copy); see the package documentation for what is
// validated and for how long data must live. A nil info means raw bytes
// (ReadRaw).
func Read(data []byte, info *wire.ArrayInfo) (arrow.Array, error) {
	if info == nil {
		return ReadRaw(data), nil
	}
	r := reader{data: data}
	d, err := r.node(info, 1)
	if err != nil {
		return nil, err
	}
	defer d.Release()
	return array.MakeFromData(d), nil
}

// reader validates an ArrayInfo tree against data and builds array.Data over
// it.
type reader struct {
	data []byte
	// path holds the child indices from the root to the node being read, for
	// error messages.
	path []int
}

// errorf formats an error prefixed with the path of the current node.
func (r *reader) errorf(format string, args ...any) error {
	var b strings.Builder
	b.WriteString("arrowconv: ArrayInfo")
	for _, i := range r.path {
		b.WriteString(".Children[")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("]")
	}
	b.WriteString(": ")
	return fmt.Errorf(b.String()+format, args...)
}

func (r *reader) checkChildCount(info *wire.ArrayInfo, nk nestedKind) error {
	if nk != nestedStruct && len(info.Children) != 1 {
		return r.errorf("%w: format %q needs exactly 1 child, got %d", ErrInvalid, info.Format, len(info.Children))
	}
	return nil
}

// node validates one ArrayInfo (and, first, its children) and returns its
// data. The caller owns the returned reference.
func (r *reader) node(info *wire.ArrayInfo, depth int) (*array.Data, error) {
	if depth > MaxDepth {
		return nil, r.errorf("%w: nested deeper than %d levels", ErrInvalid, MaxDepth)
	}
	if info.Length < 0 || info.Offset < 0 {
		return nil, r.errorf("%w: negative length %d or offset %d", ErrInvalid, info.Length, info.Offset)
	}
	if info.Length > int64(maxInt) || info.Offset > int64(maxInt) {
		return nil, r.errorf("%w: length %d or offset %d too large", ErrInvalid, info.Length, info.Offset)
	}
	length, offset := int(info.Length), int(info.Offset)
	end, ok := addOK(offset, length)
	if !ok {
		return nil, r.errorf("%w: offset %d + length %d overflows", ErrInvalid, offset, length)
	}
	if info.NullCount < -1 || info.NullCount > info.Length {
		return nil, r.errorf("%w: null count %d outside -1..%d", ErrInvalid, info.NullCount, info.Length)
	}

	leaf, nk, size, err := parseFormat(info.Format)
	if err != nil {
		return nil, r.errorf("%w", err)
	}

	// Children first: the parent's type is built from theirs.
	var children []arrow.ArrayData
	releaseChildren := func() {
		for _, c := range children {
			c.Release()
		}
	}
	dt := leaf
	if nk == notNested {
		if len(info.Children) != 0 {
			return nil, r.errorf("%w: format %q takes no children, got %d", ErrInvalid, info.Format, len(info.Children))
		}
	} else {
		if err := r.checkChildCount(info, nk); err != nil {
			return nil, err
		}
		children = make([]arrow.ArrayData, 0, len(info.Children))
		types := make([]arrow.DataType, len(info.Children))
		for i := range info.Children {
			r.path = append(r.path, i)
			c, err := r.node(&info.Children[i], depth+1)
			r.path = r.path[:len(r.path)-1]
			if err != nil {
				releaseChildren()
				return nil, err
			}
			children = append(children, c)
			types[i] = c.DataType()
		}
		dt = nestedType(nk, size, types)
	}

	lay, ok := layoutOf(dt)
	if !ok { // parseFormat only returns types with a layout
		releaseChildren()
		return nil, r.errorf("%w %s", ErrUnsupported, dt)
	}
	bufs, nulls, err := r.buffers(info, lay, offset, length, end, children)
	if err != nil {
		releaseChildren()
		return nil, err
	}
	d := array.NewData(dt, length, bufs, children, nulls, offset)
	releaseChildren() // NewData retained them
	return d, nil
}

// buffers validates info's buffers for the layout and returns them with the
// array's null count.
func (r *reader) buffers(info *wire.ArrayInfo, lay layout, offset, length, end int, children []arrow.ArrayData) ([]*memory.Buffer, int, error) {
	want := lay.buffers()
	if len(info.Buffers) != want {
		return nil, 0, r.errorf("%w: format %q needs %d buffers, got %d", ErrInvalid, info.Format, want, len(info.Buffers))
	}
	raw := make([][]byte, want)
	for i, s := range info.Buffers {
		b, err := r.span(i, s)
		if err != nil {
			return nil, 0, err
		}
		raw[i] = b
	}

	if lay.kind == kindNull {
		if info.NullCount != -1 && info.NullCount != 0 && info.NullCount != info.Length {
			return nil, 0, r.errorf("%w: null array of length %d has null count %d", ErrInvalid, length, info.NullCount)
		}
		// arrow-go's null arrays carry one (absent) validity buffer.
		return []*memory.Buffer{nil}, length, nil
	}

	// Validity.
	nulls := 0
	if v := raw[0]; v != nil {
		if len(v) < bitmapBytes(end) {
			return nil, 0, r.errorf("%w: Buffers[0]: validity bitmap has %d bytes, offset+length %d needs %d", ErrInvalid, len(v), end, bitmapBytes(end))
		}
		nulls = length - bitutil.CountSetBits(v, offset, length)
	}
	if info.NullCount != -1 && int(info.NullCount) != nulls {
		if raw[0] == nil {
			return nil, 0, r.errorf("%w: null count %d without a validity bitmap", ErrInvalid, info.NullCount)
		}
		return nil, 0, r.errorf("%w: null count %d, validity bitmap has %d nulls", ErrInvalid, info.NullCount, nulls)
	}

	switch lay.kind {
	case kindBool:
		if err := r.needBytes(1, raw[1], bitmapBytes(end), "value bitmap"); err != nil {
			return nil, 0, err
		}
	case kindFixed:
		need, ok := mulOK(end, lay.width)
		if !ok {
			return nil, 0, r.errorf("%w: offset+length %d of %d-byte values overflows", ErrInvalid, end, lay.width)
		}
		if err := r.needBytes(1, raw[1], need, "values"); err != nil {
			return nil, 0, err
		}
	case kindBinary, kindLargeBinary:
		if _, _, err := r.offsets(raw[1], lay.offsetWidth(), offset, length, len(raw[2]), "data bytes"); err != nil {
			return nil, 0, err
		}
	case kindList, kindLargeList:
		if _, _, err := r.offsets(raw[1], lay.offsetWidth(), offset, length, children[0].Len(), "child elements"); err != nil {
			return nil, 0, err
		}
	case kindFixedList:
		need, ok := mulOK(end, lay.width)
		if !ok {
			return nil, 0, r.errorf("%w: offset+length %d of %d-element lists overflows", ErrInvalid, end, lay.width)
		}
		if n := children[0].Len(); n < need {
			return nil, 0, r.errorf("%w: Children[0] has %d elements, offset+length %d of %d-element lists needs %d", ErrInvalid, n, end, lay.width, need)
		}
	case kindStruct:
		for i, c := range children {
			if c.Len() < end {
				return nil, 0, r.errorf("%w: Children[%d] has %d elements, struct offset+length needs %d", ErrInvalid, i, c.Len(), end)
			}
		}
	}

	bufs := make([]*memory.Buffer, want)
	for i, b := range raw {
		if b != nil {
			bufs[i] = memory.NewBufferBytes(b)
		}
	}
	return bufs, nulls, nil
}

// span checks one BufferSpan and returns the bytes it covers (nil when
// absent), capped so appending cannot reach the next buffer.
func (r *reader) span(i int, s wire.BufferSpan) ([]byte, error) {
	if s.Absent {
		if s.Offset != 0 || s.Len != 0 {
			return nil, r.errorf("%w: Buffers[%d] is absent but has offset %d, length %d", ErrInvalid, i, s.Offset, s.Len)
		}
		return nil, nil
	}
	if s.Offset%8 != 0 {
		return nil, r.errorf("%w: Buffers[%d] offset %d is not a multiple of 8", ErrInvalid, i, s.Offset)
	}
	n := uint64(len(r.data))
	if s.Offset > n || s.Len > n-s.Offset {
		return nil, r.errorf("%w: Buffers[%d] at offset %d, %d bytes long, is outside the data (%d bytes)", ErrInvalid, i, s.Offset, s.Len, n)
	}
	end := s.Offset + s.Len
	return r.data[s.Offset:end:end], nil
}

// needBytes checks that buffer i (absent counts as empty) has at least need
// bytes.
func (r *reader) needBytes(i int, b []byte, need int, what string) error {
	if len(b) < need {
		return r.errorf("%w: Buffers[%d]: %s buffer has %d bytes, needs %d", ErrInvalid, i, what, len(b), need)
	}
	return nil
}

// offsets checks the offsets buffer of a string/binary or list array: the
// offset+length+1 entries the array uses must exist, be non-negative, never
// decrease and end within limit (data bytes or child elements). It returns
// the first and last offset used. A zero-length array needs no offsets.
func (r *reader) offsets(b []byte, width, offset, length, limit int, what string) (int, int, error) {
	if length == 0 {
		return 0, 0, nil
	}
	count, ok := addOK(offset+length, 1) // offset+length was checked
	need, ok2 := mulOK(count, width)
	if !ok || !ok2 {
		return 0, 0, r.errorf("%w: offset+length %d overflows the offsets buffer", ErrInvalid, offset+length)
	}
	if err := r.needBytes(1, b, need, "offsets"); err != nil {
		return 0, 0, err
	}
	at := func(i int) int64 {
		if width == 4 {
			return int64(int32(binary.NativeEndian.Uint32(b[i*4:])))
		}
		return int64(binary.NativeEndian.Uint64(b[i*8:]))
	}
	first := at(offset)
	if first < 0 {
		return 0, 0, r.errorf("%w: Buffers[1]: offsets[%d] = %d is negative", ErrInvalid, offset, first)
	}
	prev := first
	for i := offset + 1; i <= offset+length; i++ {
		v := at(i)
		if v < prev {
			return 0, 0, r.errorf("%w: Buffers[1]: offsets[%d] = %d is less than offsets[%d] = %d", ErrInvalid, i, v, i-1, prev)
		}
		prev = v
	}
	if prev > int64(limit) {
		return 0, 0, r.errorf("%w: Buffers[1]: offsets[%d] = %d is past the %d %s", ErrInvalid, offset+length, prev, limit, what)
	}
	return int(first), int(prev), nil
}
