package arrowconv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/dora-go/dora/abi/wire"
)

// MaxDepth is the deepest ArrayInfo tree Read accepts and Write produces,
// counting the root as level 1.
const MaxDepth = 32

// MaxFormatLen bounds the length of a format string (timestamp time zones are
// the only free text in one).
const MaxFormatLen = 256

var (
	// ErrUnsupported reports a type this package cannot store or read.
	ErrUnsupported = errors.New("unsupported type")
	// ErrInvalid reports a malformed format string or an ArrayInfo that does
	// not describe a valid array inside the data.
	ErrInvalid = errors.New("invalid layout")
)

// listItemName is the field name Read gives list elements, as arrow.ListOf
// does.
const listItemName = "item"

// structFieldName is the name Read gives struct field i; see the package
// documentation.
func structFieldName(i int) string { return "f" + strconv.Itoa(i) }

var simpleFormats = map[string]arrow.DataType{
	"n":   arrow.Null,
	"b":   arrow.FixedWidthTypes.Boolean,
	"c":   arrow.PrimitiveTypes.Int8,
	"C":   arrow.PrimitiveTypes.Uint8,
	"s":   arrow.PrimitiveTypes.Int16,
	"S":   arrow.PrimitiveTypes.Uint16,
	"i":   arrow.PrimitiveTypes.Int32,
	"I":   arrow.PrimitiveTypes.Uint32,
	"l":   arrow.PrimitiveTypes.Int64,
	"L":   arrow.PrimitiveTypes.Uint64,
	"e":   arrow.FixedWidthTypes.Float16,
	"f":   arrow.PrimitiveTypes.Float32,
	"g":   arrow.PrimitiveTypes.Float64,
	"z":   arrow.BinaryTypes.Binary,
	"Z":   arrow.BinaryTypes.LargeBinary,
	"u":   arrow.BinaryTypes.String,
	"U":   arrow.BinaryTypes.LargeString,
	"tdD": arrow.FixedWidthTypes.Date32,
	"tdm": arrow.FixedWidthTypes.Date64,
	"tts": arrow.FixedWidthTypes.Time32s,
	"ttm": arrow.FixedWidthTypes.Time32ms,
	"ttu": arrow.FixedWidthTypes.Time64us,
	"ttn": arrow.FixedWidthTypes.Time64ns,
	"tDs": arrow.FixedWidthTypes.Duration_s,
	"tDm": arrow.FixedWidthTypes.Duration_ms,
	"tDu": arrow.FixedWidthTypes.Duration_us,
	"tDn": arrow.FixedWidthTypes.Duration_ns,
	"tiM": arrow.FixedWidthTypes.MonthInterval,
	"tiD": arrow.FixedWidthTypes.DayTimeInterval,
	"tin": arrow.FixedWidthTypes.MonthDayNanoInterval,
}

// knownUnsupported names C data interface formats that are valid but not
// handled here, so the error can say which type was sent.
var knownUnsupported = map[string]string{
	"vz":  "binary_view",
	"vu":  "string_view",
	"+m":  "map",
	"+vl": "list_view",
	"+vL": "large_list_view",
	"+r":  "run_end_encoded",
}

// nestedKind says how a format's type is completed by its children.
type nestedKind uint8

const (
	notNested nestedKind = iota
	nestedList
	nestedLargeList
	nestedFixedSizeList
	nestedStruct
)

// Format returns the C data interface format string of dt. For list, large
// list, fixed-size list and struct it is the parent's format only ("+l",
// "+L", "+w:N", "+s"); the children's formats go in ArrayInfo.Children.
// Field names and nullability are not encoded.
func Format(dt arrow.DataType) (string, error) {
	f, err := format(dt)
	if err != nil {
		return "", fmt.Errorf("arrowconv: %w", err)
	}
	return f, nil
}

func format(dt arrow.DataType) (string, error) {
	if dt == nil {
		return "", fmt.Errorf("%w: nil data type", ErrUnsupported)
	}
	switch dt.ID() {
	case arrow.NULL:
		return "n", nil
	case arrow.BOOL:
		return "b", nil
	case arrow.INT8:
		return "c", nil
	case arrow.UINT8:
		return "C", nil
	case arrow.INT16:
		return "s", nil
	case arrow.UINT16:
		return "S", nil
	case arrow.INT32:
		return "i", nil
	case arrow.UINT32:
		return "I", nil
	case arrow.INT64:
		return "l", nil
	case arrow.UINT64:
		return "L", nil
	case arrow.FLOAT16:
		return "e", nil
	case arrow.FLOAT32:
		return "f", nil
	case arrow.FLOAT64:
		return "g", nil
	case arrow.BINARY:
		return "z", nil
	case arrow.LARGE_BINARY:
		return "Z", nil
	case arrow.STRING:
		return "u", nil
	case arrow.LARGE_STRING:
		return "U", nil
	case arrow.DATE32:
		return "tdD", nil
	case arrow.DATE64:
		return "tdm", nil
	case arrow.TIME32:
		switch dt.(*arrow.Time32Type).Unit {
		case arrow.Second:
			return "tts", nil
		case arrow.Millisecond:
			return "ttm", nil
		}
	case arrow.TIME64:
		switch dt.(*arrow.Time64Type).Unit {
		case arrow.Microsecond:
			return "ttu", nil
		case arrow.Nanosecond:
			return "ttn", nil
		}
	case arrow.TIMESTAMP:
		t := dt.(*arrow.TimestampType)
		if u, ok := unitChar(t.Unit); ok {
			f := "ts" + string(u) + ":" + t.TimeZone
			if len(f) > MaxFormatLen {
				return "", fmt.Errorf("%w %s: time zone longer than %d bytes", ErrUnsupported, dt, MaxFormatLen-4)
			}
			return f, nil
		}
	case arrow.DURATION:
		if u, ok := unitChar(dt.(*arrow.DurationType).Unit); ok {
			return "tD" + string(u), nil
		}
	case arrow.INTERVAL_MONTHS:
		return "tiM", nil
	case arrow.INTERVAL_DAY_TIME:
		return "tiD", nil
	case arrow.INTERVAL_MONTH_DAY_NANO:
		return "tin", nil
	case arrow.FIXED_SIZE_BINARY:
		w := dt.(*arrow.FixedSizeBinaryType).ByteWidth
		if w < 1 || int64(w) > maxInt32 {
			return "", fmt.Errorf("%w %s: byte width must be 1..%d", ErrUnsupported, dt, maxInt32)
		}
		return "w:" + strconv.Itoa(w), nil
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		d := dt.(arrow.DecimalType)
		bits := d.BitWidth()
		if err := checkDecimal(bits, d.GetPrecision(), d.GetScale()); err != nil {
			return "", fmt.Errorf("%w %s: %v", ErrUnsupported, dt, err)
		}
		f := "d:" + strconv.Itoa(int(d.GetPrecision())) + "," + strconv.Itoa(int(d.GetScale()))
		if bits != 128 { // 128 is the C data interface default
			f += "," + strconv.Itoa(bits)
		}
		return f, nil
	case arrow.LIST:
		return "+l", nil
	case arrow.LARGE_LIST:
		return "+L", nil
	case arrow.FIXED_SIZE_LIST:
		n := dt.(*arrow.FixedSizeListType).Len()
		if n < 1 {
			return "", fmt.Errorf("%w %s: list size must be positive", ErrUnsupported, dt)
		}
		return "+w:" + strconv.Itoa(int(n)), nil
	case arrow.STRUCT:
		return "+s", nil
	}
	return "", fmt.Errorf("%w %s", ErrUnsupported, dt)
}

// ParseFormat returns the type a C data interface format string names.
// Nested formats ("+l", "+L", "+w:N", "+s") need their children's types and
// are rejected; use TypeOf on a whole ArrayInfo for those.
func ParseFormat(format string) (arrow.DataType, error) {
	dt, nk, _, err := parseFormat(format)
	if err != nil {
		return nil, fmt.Errorf("arrowconv: %w", err)
	}
	if nk != notNested {
		return nil, fmt.Errorf("arrowconv: format %q is a nested type whose children come from ArrayInfo.Children; use TypeOf", format)
	}
	return dt, nil
}

// TypeOf returns the type an ArrayInfo tree describes (nil: uint8), checking
// only formats, child counts and depth, not buffers.
func TypeOf(info *wire.ArrayInfo) (arrow.DataType, error) {
	if info == nil {
		return arrow.PrimitiveTypes.Uint8, nil
	}
	r := reader{}
	return r.typeOf(info, 1)
}

func (r *reader) typeOf(info *wire.ArrayInfo, depth int) (arrow.DataType, error) {
	if depth > MaxDepth {
		return nil, r.errorf("%w: nested deeper than %d levels", ErrInvalid, MaxDepth)
	}
	leaf, nk, size, err := parseFormat(info.Format)
	if err != nil {
		return nil, r.errorf("%w", err)
	}
	if nk == notNested {
		if len(info.Children) != 0 {
			return nil, r.errorf("%w: format %q takes no children, got %d", ErrInvalid, info.Format, len(info.Children))
		}
		return leaf, nil
	}
	if err := r.checkChildCount(info, nk); err != nil {
		return nil, err
	}
	types := make([]arrow.DataType, len(info.Children))
	for i := range info.Children {
		r.path = append(r.path, i)
		types[i], err = r.typeOf(&info.Children[i], depth+1)
		r.path = r.path[:len(r.path)-1]
		if err != nil {
			return nil, err
		}
	}
	return nestedType(nk, size, types), nil
}

// nestedType builds a nested type from its children's types; the child count
// has been checked.
func nestedType(nk nestedKind, size int32, children []arrow.DataType) arrow.DataType {
	switch nk {
	case nestedList:
		return arrow.ListOfField(arrow.Field{Name: listItemName, Type: children[0], Nullable: true})
	case nestedLargeList:
		return arrow.LargeListOfField(arrow.Field{Name: listItemName, Type: children[0], Nullable: true})
	case nestedFixedSizeList:
		return arrow.FixedSizeListOfField(size, arrow.Field{Name: listItemName, Type: children[0], Nullable: true})
	default: // nestedStruct
		fields := make([]arrow.Field, len(children))
		for i, t := range children {
			fields[i] = arrow.Field{Name: structFieldName(i), Type: t, Nullable: true}
		}
		return arrow.StructOf(fields...)
	}
}

// parseFormat parses one format string. For a nested format it returns the
// kind (and the list size for "+w:N") instead of a type.
func parseFormat(f string) (arrow.DataType, nestedKind, int32, error) {
	if f == "" {
		return nil, 0, 0, fmt.Errorf("%w: empty format", ErrInvalid)
	}
	if len(f) > MaxFormatLen {
		return nil, 0, 0, fmt.Errorf("%w: format is %d bytes, limit %d", ErrInvalid, len(f), MaxFormatLen)
	}
	if dt, ok := simpleFormats[f]; ok {
		return dt, notNested, 0, nil
	}
	switch f {
	case "+l":
		return nil, nestedList, 0, nil
	case "+L":
		return nil, nestedLargeList, 0, nil
	case "+s":
		return nil, nestedStruct, 0, nil
	}
	if name, ok := knownUnsupported[f]; ok {
		return nil, 0, 0, fmt.Errorf("%w %s (format %q)", ErrUnsupported, name, f)
	}
	switch {
	case strings.HasPrefix(f, "w:"):
		n, ok := parseDigits(f[2:])
		if !ok || n < 1 || n > maxInt32 {
			return nil, 0, 0, fmt.Errorf("%w: format %q: fixed-size binary width must be 1..%d", ErrInvalid, f, maxInt32)
		}
		return &arrow.FixedSizeBinaryType{ByteWidth: int(n)}, notNested, 0, nil
	case strings.HasPrefix(f, "+w:"):
		n, ok := parseDigits(f[3:])
		if !ok || n < 1 || n > maxInt32 {
			return nil, 0, 0, fmt.Errorf("%w: format %q: fixed-size list size must be 1..%d", ErrInvalid, f, maxInt32)
		}
		return nil, nestedFixedSizeList, int32(n), nil
	case strings.HasPrefix(f, "d:"):
		dt, err := parseDecimal(f)
		return dt, notNested, 0, err
	case len(f) >= 4 && f[:2] == "ts" && f[3] == ':':
		if u, ok := charUnit(f[2]); ok {
			return &arrow.TimestampType{Unit: u, TimeZone: f[4:]}, notNested, 0, nil
		}
	case strings.HasPrefix(f, "+u"):
		return nil, 0, 0, fmt.Errorf("%w union (format %q)", ErrUnsupported, f)
	}
	return nil, 0, 0, fmt.Errorf("%w: format %q", ErrUnsupported, f)
}

// parseDecimal parses "d:P,S" (128-bit) or "d:P,S,B" with B in 32, 64,
// 128, 256.
func parseDecimal(f string) (arrow.DataType, error) {
	parts := strings.Split(f[2:], ",")
	if len(parts) != 2 && len(parts) != 3 {
		return nil, fmt.Errorf("%w: format %q: want d:precision,scale[,bits]", ErrInvalid, f)
	}
	prec, ok := parseDigits(parts[0])
	if !ok {
		return nil, fmt.Errorf("%w: format %q: bad precision", ErrInvalid, f)
	}
	s := parts[1]
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	scale, ok := parseDigits(s)
	if !ok {
		return nil, fmt.Errorf("%w: format %q: bad scale", ErrInvalid, f)
	}
	if neg {
		scale = -scale
	}
	bits := int64(128)
	if len(parts) == 3 {
		if bits, ok = parseDigits(parts[2]); !ok {
			return nil, fmt.Errorf("%w: format %q: bad bit width", ErrInvalid, f)
		}
	}
	if err := checkDecimal(int(bits), prec, scale); err != nil {
		return nil, fmt.Errorf("%w: format %q: %v", ErrInvalid, f, err)
	}
	p, sc := int32(prec), int32(scale)
	switch bits {
	case 32:
		return &arrow.Decimal32Type{Precision: p, Scale: sc}, nil
	case 64:
		return &arrow.Decimal64Type{Precision: p, Scale: sc}, nil
	case 128:
		return &arrow.Decimal128Type{Precision: p, Scale: sc}, nil
	default:
		return &arrow.Decimal256Type{Precision: p, Scale: sc}, nil
	}
}

// checkDecimal bounds precision to what the bit width holds and scale to
// ±that precision: arrow-go's decimal formatting panics or divides by zero
// beyond it.
func checkDecimal[T ~int32 | ~int64](bits int, prec, scale T) error {
	var maxPrec T
	switch bits {
	case 32:
		maxPrec = 9
	case 64:
		maxPrec = 18
	case 128:
		maxPrec = 38
	case 256:
		maxPrec = 76
	default:
		return fmt.Errorf("bit width %d is not 32, 64, 128 or 256", bits)
	}
	if prec < 1 || prec > maxPrec {
		return fmt.Errorf("precision %d is outside 1..%d", prec, maxPrec)
	}
	if scale < -maxPrec || scale > maxPrec {
		return fmt.Errorf("scale %d is outside -%d..%d", scale, maxPrec, maxPrec)
	}
	return nil
}

const maxInt32 = 1<<31 - 1

// parseDigits parses 1 to 10 ASCII digits (no sign, no spaces).
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func unitChar(u arrow.TimeUnit) (byte, bool) {
	switch u {
	case arrow.Second:
		return 's', true
	case arrow.Millisecond:
		return 'm', true
	case arrow.Microsecond:
		return 'u', true
	case arrow.Nanosecond:
		return 'n', true
	}
	return 0, false
}

func charUnit(c byte) (arrow.TimeUnit, bool) {
	switch c {
	case 's':
		return arrow.Second, true
	case 'm':
		return arrow.Millisecond, true
	case 'u':
		return arrow.Microsecond, true
	case 'n':
		return arrow.Nanosecond, true
	}
	return 0, false
}
