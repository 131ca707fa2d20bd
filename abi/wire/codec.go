// Package wire encodes and decodes the node ↔ daemon protocol described in
// abi/PROTOCOL.md, and carries frames over the unix sockets between them.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Version is the protocol version a node announces in REGISTER.
const Version = 1

// HeaderSize is the size of a frame header; MaxFrame bounds a whole frame.
const (
	HeaderSize = 8
	MaxFrame   = 64 << 20
	// MaxFDs bounds the descriptors one frame may carry.
	MaxFDs = 32
)

// Kind identifies a frame.
type Kind uint8

const (
	KindRegister      Kind = 1
	KindSendOutput    Kind = 2
	KindCloseOutputs  Kind = 3
	KindRelease       Kind = 4
	KindDropRegions   Kind = 5
	KindStopDataflow  Kind = 6
	KindHandedOff     Kind = 7
	KindNextEvents    Kind = 16
	KindRegisterReply Kind = 65
	KindReleased      Kind = 66
	KindRoutes        Kind = 67
	KindEvents        Kind = 80
)

var kindNames = map[Kind]string{
	KindRegister: "REGISTER", KindSendOutput: "SEND_OUTPUT", KindCloseOutputs: "CLOSE_OUTPUTS",
	KindRelease: "RELEASE", KindDropRegions: "DROP_REGIONS", KindStopDataflow: "STOP_DATAFLOW",
	KindHandedOff:  "HANDED_OFF",
	KindNextEvents: "NEXT_EVENTS", KindRegisterReply: "REGISTER_REPLY", KindReleased: "RELEASED",
	KindRoutes: "ROUTES",
	KindEvents: "EVENTS",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed frame")

// Encoder appends one frame at a time to B. The zero value is ready; reuse
// it (Reset) to avoid allocating per frame.
type Encoder struct {
	B     []byte
	start int
}

// Reset forgets everything encoded so far but keeps the buffer.
func (e *Encoder) Reset() { e.B, e.start = e.B[:0], 0 }

// Begin starts a frame of the given kind after whatever B already holds.
func (e *Encoder) Begin(k Kind) {
	e.start = len(e.B)
	e.B = append(e.B, 0, 0, 0, 0, byte(k), 0, 0, 0)
}

// End completes the current frame, recording nfds attached descriptors,
// and returns it.
func (e *Encoder) End(nfds int) []byte {
	f := e.B[e.start:]
	binary.LittleEndian.PutUint32(f, uint32(len(f)))
	f[5] = byte(nfds)
	return f
}

// Len is the length of the frame being encoded so far.
func (e *Encoder) Len() int { return len(e.B) - e.start }

func (e *Encoder) U8(v uint8)   { e.B = append(e.B, v) }
func (e *Encoder) U16(v uint16) { e.B = binary.LittleEndian.AppendUint16(e.B, v) }
func (e *Encoder) U32(v uint32) { e.B = binary.LittleEndian.AppendUint32(e.B, v) }
func (e *Encoder) U64(v uint64) { e.B = binary.LittleEndian.AppendUint64(e.B, v) }
func (e *Encoder) I64(v int64)  { e.U64(uint64(v)) }
func (e *Encoder) F64(v float64) {
	e.U64(math.Float64bits(v))
}

func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}

// Str appends a u16-prefixed string; longer strings are truncated, which
// ids (validated to be short) never are.
func (e *Encoder) Str(s string) {
	if len(s) > math.MaxUint16 {
		s = s[:math.MaxUint16]
	}
	e.U16(uint16(len(s)))
	e.B = append(e.B, s...)
}

// StrBytes is Str for a byte slice.
func (e *Encoder) StrBytes(s []byte) {
	if len(s) > math.MaxUint16 {
		s = s[:math.MaxUint16]
	}
	e.U16(uint16(len(s)))
	e.B = append(e.B, s...)
}

// LStr appends a u32-prefixed string.
func (e *Encoder) LStr(s string) {
	e.U32(uint32(len(s)))
	e.B = append(e.B, s...)
}

// Raw appends bytes as they are.
func (e *Encoder) Raw(b []byte) { e.B = append(e.B, b...) }

// Pad8 appends zero bytes up to the next multiple of 8 from the frame start.
func (e *Encoder) Pad8() {
	for e.Len()%8 != 0 {
		e.B = append(e.B, 0)
	}
}

// Decoder reads one frame. Errors are sticky: after the first, every read
// returns zero values and Err reports it, so callers check once at the end.
type Decoder struct {
	f   []byte
	off int
	err error
}

// NewDecoder decodes the body of frame f (which includes its header).
func NewDecoder(f []byte) *Decoder {
	d := &Decoder{}
	d.Reset(f)
	return d
}

// Reset makes d decode the body of frame f.
func (d *Decoder) Reset(f []byte) {
	d.f, d.off, d.err = f, HeaderSize, nil
	if len(f) < HeaderSize {
		d.fail("frame shorter than its header")
	}
}

// Err is the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Done reports an error unless the whole frame was consumed.
func (d *Decoder) Done() error {
	if d.err == nil && d.off != len(d.f) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.f)-d.off))
	}
	return d.err
}

// Offset is the position of the next read, from the frame start.
func (d *Decoder) Offset() int { return d.off }

func (d *Decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at offset %d", ErrMalformed, msg, d.off)
	}
	d.off = len(d.f)
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.f)-d.off {
		d.fail(fmt.Sprintf("need %d bytes, have %d", n, len(d.f)-d.off))
		return nil
	}
	b := d.f[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *Decoder) U8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *Decoder) U16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *Decoder) U32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *Decoder) U64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *Decoder) I64() int64   { return int64(d.U64()) }
func (d *Decoder) F64() float64 { return math.Float64frombits(d.U64()) }

// Bool reads a u8 that must be 0 or 1.
func (d *Decoder) Bool() bool {
	v := d.U8()
	if v > 1 {
		d.fail(fmt.Sprintf("boolean %d", v))
	}
	return v == 1
}

// StrBytes reads a u16-prefixed string as a view into the frame.
func (d *Decoder) StrBytes() []byte { return d.take(int(d.U16())) }

// Str reads a u16-prefixed string.
func (d *Decoder) Str() string { return string(d.StrBytes()) }

// LStrBytes reads a u32-prefixed string as a view into the frame.
func (d *Decoder) LStrBytes() []byte {
	n := d.U32()
	if uint64(n) > uint64(len(d.f)) {
		d.fail(fmt.Sprintf("string of %d bytes", n))
		return nil
	}
	return d.take(int(n))
}

// LStr reads a u32-prefixed string.
func (d *Decoder) LStr() string { return string(d.LStrBytes()) }

// Count reads a u32 element count and checks that at least min bytes per
// element remain, so hostile counts cannot cause huge allocations.
func (d *Decoder) Count(min int) int {
	n := int(d.U32())
	if d.err == nil && n*min > len(d.f)-d.off {
		d.fail(fmt.Sprintf("%d elements cannot fit", n))
		return 0
	}
	return n
}

// Pad8 skips the zero padding up to the next multiple of 8 from the frame
// start.
func (d *Decoder) Pad8() {
	if n := (8 - d.off%8) % 8; n > 0 {
		d.take(n)
	}
}
