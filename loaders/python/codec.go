package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/dora-go/dora/abi/wire"
)

// The metadata blob exchanged with dora._wire (apis/python/dora/_wire.py,
// where the layout is documented). It is private to one process and one
// build: the loader always runs the dora package it embeds.

const blobVersion = 1

// encodeMeta returns nil when there is nothing to say (no parameters, no
// trace context, raw bytes): the Python side then passes None.
func encodeMeta(md *wire.Metadata) []byte {
	if len(md.Parameters) == 0 && md.OpenTelemetryContext == "" && md.Type == nil {
		return nil
	}
	b := make([]byte, 0, 64)
	b = append(b, blobVersion)
	b = putStr(b, md.OpenTelemetryContext)
	keys := make([]string, 0, len(md.Parameters))
	for k := range md.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		p := md.Parameters[k]
		b = putStr(b, k)
		b = append(b, byte(p.Kind))
		switch p.Kind {
		case wire.ParamBool:
			if p.Bool {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case wire.ParamInt:
			b = binary.LittleEndian.AppendUint64(b, uint64(p.Int))
		case wire.ParamFloat:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Float))
		case wire.ParamString:
			b = putStr(b, p.String)
		case wire.ParamIntList:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Ints)))
			for _, v := range p.Ints {
				b = binary.LittleEndian.AppendUint64(b, uint64(v))
			}
		case wire.ParamFloatList:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Floats)))
			for _, v := range p.Floats {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
			}
		case wire.ParamStringList:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Strings)))
			for _, v := range p.Strings {
				b = putStr(b, v)
			}
		default:
			// Unknown kinds travel as an empty string rather than
			// corrupting the blob.
			b[len(b)-1] = byte(wire.ParamString)
			b = putStr(b, "")
		}
	}
	if md.Type == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	return putArray(b, md.Type)
}

func putStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func putArray(b []byte, a *wire.ArrayInfo) []byte {
	b = putStr(b, a.Format)
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Length))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.NullCount))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Offset))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(a.Buffers)))
	for _, s := range a.Buffers {
		b = binary.LittleEndian.AppendUint64(b, s.Offset)
		b = binary.LittleEndian.AppendUint64(b, s.Len)
		if s.Absent {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(a.Children)))
	for i := range a.Children {
		b = putArray(b, &a.Children[i])
	}
	return b
}

var errBlob = errors.New("malformed metadata blob from dora._wire")

type blobReader struct {
	b   []byte
	err error
}

func (r *blobReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errBlob
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *blobReader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *blobReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *blobReader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *blobReader) str() string { return string(r.take(int(r.u32()))) }

// count reads a list length and rejects ones the rest of the blob cannot
// hold (each element takes at least min bytes).
func (r *blobReader) count(min int) int {
	n := int(r.u32())
	if r.err == nil && n*min > len(r.b) {
		r.err = errBlob
		return 0
	}
	return n
}

// decodeMeta fills md from a blob made by dora._wire.encode; md's Timestamp
// is left alone.
func decodeMeta(blob []byte, md *wire.Metadata) error {
	r := &blobReader{b: blob}
	if v := r.u8(); r.err == nil && v != blobVersion {
		return fmt.Errorf("%w: version %d, want %d", errBlob, v, blobVersion)
	}
	md.OpenTelemetryContext = r.str()
	n := r.count(6)
	if n > 0 {
		md.Parameters = make(map[string]wire.Parameter, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		p := wire.Parameter{Kind: wire.ParamKind(r.u8())}
		switch p.Kind {
		case wire.ParamBool:
			p.Bool = r.u8() != 0
		case wire.ParamInt:
			p.Int = int64(r.u64())
		case wire.ParamFloat:
			p.Float = math.Float64frombits(r.u64())
		case wire.ParamString:
			p.String = r.str()
		case wire.ParamIntList:
			p.Ints = make([]int64, r.count(8))
			for j := range p.Ints {
				p.Ints[j] = int64(r.u64())
			}
		case wire.ParamFloatList:
			p.Floats = make([]float64, r.count(8))
			for j := range p.Floats {
				p.Floats[j] = math.Float64frombits(r.u64())
			}
		case wire.ParamStringList:
			p.Strings = make([]string, r.count(4))
			for j := range p.Strings {
				p.Strings[j] = r.str()
			}
		default:
			return fmt.Errorf("%w: parameter %q has kind %d", errBlob, k, p.Kind)
		}
		md.Parameters[k] = p
	}
	switch r.u8() {
	case 0:
	case 1:
		md.Type = &wire.ArrayInfo{}
		getArray(r, md.Type, 0)
	default:
		r.err = fmt.Errorf("%w: bad array flag", errBlob)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errBlob, len(r.b))
	}
	return r.err
}

func getArray(r *blobReader, a *wire.ArrayInfo, depth int) {
	if depth > 64 {
		r.err = fmt.Errorf("%w: arrays nested more than 64 deep", errBlob)
		return
	}
	a.Format = r.str()
	a.Length = int64(r.u64())
	a.NullCount = int64(r.u64())
	a.Offset = int64(r.u64())
	if n := r.count(17); n > 0 {
		a.Buffers = make([]wire.BufferSpan, n)
		for i := range a.Buffers {
			a.Buffers[i] = wire.BufferSpan{Offset: r.u64(), Len: r.u64(), Absent: r.u8() != 0}
		}
	}
	if n := r.count(29); n > 0 {
		a.Children = make([]wire.ArrayInfo, n)
		for i := range a.Children {
			getArray(r, &a.Children[i], depth+1)
		}
	}
}
