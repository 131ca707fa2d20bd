package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dora-go/dora/abi/wire"
)

// The metadata types are abi/wire's: the guest ABI encodes the same
// values in its own block layout (below, and ABI.md section 6).
type (
	Metadata   = wire.Metadata
	ParamKind  = wire.ParamKind
	Parameter  = wire.Parameter
	ArrayInfo  = wire.ArrayInfo
	BufferSpan = wire.BufferSpan
)

// Parameter kinds.
const (
	ParamBool       = wire.ParamBool
	ParamInt        = wire.ParamInt
	ParamFloat      = wire.ParamFloat
	ParamString     = wire.ParamString
	ParamIntList    = wire.ParamIntList
	ParamFloatList  = wire.ParamFloatList
	ParamStringList = wire.ParamStringList
)

// The metadata block, little-endian, no alignment (ABI.md, "Metadata"):
//
//	u64 timestamp
//	u32 otel_len, otel_len bytes of OpenTelemetry context
//	u32 param_count, then param_count parameters:
//	    u32 key_len, key bytes, u8 kind, value (see appendParam)
//	u8  has_type, then when 1 one ArrayInfo:
//	    u32 format_len, format bytes, i64 length, i64 null_count, i64 offset,
//	    u32 buffer_count, buffer_count * (u64 offset, u64 len, u8 absent),
//	    u32 child_count, child_count * ArrayInfo

// MinMetadataSize is the size of the block for metadata with only a
// timestamp.
const MinMetadataSize = 8 + 4 + 4 + 1

// maxTypeDepth bounds ArrayInfo nesting when decoding.
const maxTypeDepth = 64

// ErrBadMetadata is wrapped by DecodeMetadata errors.
var ErrBadMetadata = errors.New("malformed dora wasm metadata")

// MetadataSize is len(AppendMetadata(nil, md)).
func MetadataSize(md *Metadata) int {
	n := MinMetadataSize + len(md.OpenTelemetryContext)
	for k, p := range md.Parameters {
		n += 4 + len(k) + 1 + paramSize(&p)
	}
	if md.Type != nil {
		n += typeSize(md.Type)
	}
	return n
}

func paramSize(p *Parameter) int {
	switch p.Kind {
	case ParamBool:
		return 1
	case ParamInt, ParamFloat:
		return 8
	case ParamString:
		return 4 + len(p.String)
	case ParamIntList:
		return 4 + 8*len(p.Ints)
	case ParamFloatList:
		return 4 + 8*len(p.Floats)
	case ParamStringList:
		n := 4
		for _, s := range p.Strings {
			n += 4 + len(s)
		}
		return n
	}
	return 0
}

func typeSize(t *ArrayInfo) int {
	n := 4 + len(t.Format) + 3*8 + 4 + len(t.Buffers)*17 + 4
	for i := range t.Children {
		n += typeSize(&t.Children[i])
	}
	return n
}

// AppendMetadata appends the encoding of md to dst. When dst has
// MetadataSize(md) bytes of spare capacity it does not allocate.
func AppendMetadata(dst []byte, md *Metadata) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, md.Timestamp)
	dst = appendString(dst, md.OpenTelemetryContext)
	dst = le.AppendUint32(dst, uint32(len(md.Parameters)))
	for k, p := range md.Parameters {
		dst = appendString(dst, k)
		dst = appendParam(dst, &p)
	}
	if md.Type == nil {
		return append(dst, 0)
	}
	return appendType(append(dst, 1), md.Type)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendParam(dst []byte, p *Parameter) []byte {
	le := binary.LittleEndian
	dst = append(dst, byte(p.Kind))
	switch p.Kind {
	case ParamBool:
		b := byte(0)
		if p.Bool {
			b = 1
		}
		dst = append(dst, b)
	case ParamInt:
		dst = le.AppendUint64(dst, uint64(p.Int))
	case ParamFloat:
		dst = le.AppendUint64(dst, math.Float64bits(p.Float))
	case ParamString:
		dst = appendString(dst, p.String)
	case ParamIntList:
		dst = le.AppendUint32(dst, uint32(len(p.Ints)))
		for _, v := range p.Ints {
			dst = le.AppendUint64(dst, uint64(v))
		}
	case ParamFloatList:
		dst = le.AppendUint32(dst, uint32(len(p.Floats)))
		for _, v := range p.Floats {
			dst = le.AppendUint64(dst, math.Float64bits(v))
		}
	case ParamStringList:
		dst = le.AppendUint32(dst, uint32(len(p.Strings)))
		for _, s := range p.Strings {
			dst = appendString(dst, s)
		}
	}
	return dst
}

func appendType(dst []byte, t *ArrayInfo) []byte {
	le := binary.LittleEndian
	dst = appendString(dst, t.Format)
	dst = le.AppendUint64(dst, uint64(t.Length))
	dst = le.AppendUint64(dst, uint64(t.NullCount))
	dst = le.AppendUint64(dst, uint64(t.Offset))
	dst = le.AppendUint32(dst, uint32(len(t.Buffers)))
	for _, b := range t.Buffers {
		dst = le.AppendUint64(dst, b.Offset)
		dst = le.AppendUint64(dst, b.Len)
		absent := byte(0)
		if b.Absent {
			absent = 1
		}
		dst = append(dst, absent)
	}
	dst = le.AppendUint32(dst, uint32(len(t.Children)))
	for i := range t.Children {
		dst = appendType(dst, &t.Children[i])
	}
	return dst
}

// MetadataTimestamp returns the timestamp of an encoded block without
// decoding the rest, or 0 when b is too short.
func MetadataTimestamp(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// DecodeMetadata decodes a block written by AppendMetadata. Trailing
// bytes are an error. Strings are copied out of b.
func DecodeMetadata(b []byte) (Metadata, error) {
	d := decoder{b: b}
	var md Metadata
	md.Timestamp = d.u64()
	md.OpenTelemetryContext = d.str()
	if n := d.count(4 + 1); n > 0 {
		md.Parameters = make(map[string]Parameter, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.str()
			md.Parameters[k] = d.param()
		}
	}
	switch d.u8() {
	case 0:
	case 1:
		t := d.typ(0)
		md.Type = &t
	default:
		d.fail("has_type is neither 0 nor 1")
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return Metadata{}, d.err
	}
	return md, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadMetadata, why)
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) str() string {
	n := d.u32()
	return string(d.take(int(n)))
}

// count reads a u32 element count and checks that the rest of the block
// can hold that many elements of at least minSize bytes, so a hostile
// count cannot make the decoder allocate.
func (d *decoder) count(minSize int) int {
	n := int(d.u32())
	if d.err == nil && n > len(d.b)/minSize {
		d.fail("count larger than the block")
		return 0
	}
	return n
}

func (d *decoder) param() Parameter {
	p := Parameter{Kind: ParamKind(d.u8())}
	switch p.Kind {
	case ParamBool:
		p.Bool = d.u8() != 0
	case ParamInt:
		p.Int = int64(d.u64())
	case ParamFloat:
		p.Float = math.Float64frombits(d.u64())
	case ParamString:
		p.String = d.str()
	case ParamIntList:
		p.Ints = make([]int64, d.count(8))
		for i := range p.Ints {
			p.Ints[i] = int64(d.u64())
		}
	case ParamFloatList:
		p.Floats = make([]float64, d.count(8))
		for i := range p.Floats {
			p.Floats[i] = math.Float64frombits(d.u64())
		}
	case ParamStringList:
		p.Strings = make([]string, d.count(4))
		for i := range p.Strings {
			p.Strings[i] = d.str()
		}
	default:
		d.fail(fmt.Sprintf("unknown parameter kind %d", p.Kind))
	}
	return p
}

func (d *decoder) typ(depth int) ArrayInfo {
	if depth > maxTypeDepth {
		d.fail("type nested too deep")
		return ArrayInfo{}
	}
	var t ArrayInfo
	t.Format = d.str()
	t.Length = int64(d.u64())
	t.NullCount = int64(d.u64())
	t.Offset = int64(d.u64())
	if n := d.count(17); n > 0 {
		t.Buffers = make([]BufferSpan, n)
		for i := range t.Buffers {
			t.Buffers[i] = BufferSpan{Offset: d.u64(), Len: d.u64(), Absent: d.u8() != 0}
		}
	}
	if n := d.count(4 + 3*8 + 4 + 4); n > 0 {
		t.Children = make([]ArrayInfo, n)
		for i := range t.Children {
			t.Children[i] = d.typ(depth + 1)
		}
	}
	return t
}
