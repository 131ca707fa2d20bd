package wasm

import (
	"encoding/binary"
	"math"

	wasmabi "github.com/dora-go/dora/abi/wasm"
	"github.com/dora-go/dora/abi/wire"
)

// The host writes every input's metadata into guest memory in the block
// format of abi/wasm (ABI.md, "Metadata"). abi/wasm encodes its own
// Metadata type (the guest cannot import abi/wire); these functions write
// the same bytes straight from a wire.Metadata so that the hot path does
// not convert, and TestWireMetadataMatchesABICodec keeps the two in step.

func wireMetadataSize(md *wire.Metadata) int {
	n := wasmabi.MinMetadataSize + len(md.OpenTelemetryContext)
	for k, p := range md.Parameters {
		n += 4 + len(k) + 1 + wireParamSize(&p)
	}
	if md.Type != nil {
		n += wireTypeSize(md.Type)
	}
	return n
}

func wireParamSize(p *wire.Parameter) int {
	switch p.Kind {
	case wire.ParamBool:
		return 1
	case wire.ParamInt, wire.ParamFloat:
		return 8
	case wire.ParamString:
		return 4 + len(p.String)
	case wire.ParamIntList:
		return 4 + 8*len(p.Ints)
	case wire.ParamFloatList:
		return 4 + 8*len(p.Floats)
	case wire.ParamStringList:
		n := 4
		for _, s := range p.Strings {
			n += 4 + len(s)
		}
		return n
	}
	return 0
}

func wireTypeSize(t *wire.ArrayInfo) int {
	n := 4 + len(t.Format) + 3*8 + 4 + len(t.Buffers)*17 + 4
	for i := range t.Children {
		n += wireTypeSize(&t.Children[i])
	}
	return n
}

func appendWireMetadata(dst []byte, md *wire.Metadata) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, md.Timestamp)
	dst = appendStr(dst, md.OpenTelemetryContext)
	dst = le.AppendUint32(dst, uint32(len(md.Parameters)))
	for k, p := range md.Parameters {
		dst = appendStr(dst, k)
		dst = appendWireParam(dst, &p)
	}
	if md.Type == nil {
		return append(dst, 0)
	}
	return appendWireType(append(dst, 1), md.Type)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendWireParam(dst []byte, p *wire.Parameter) []byte {
	le := binary.LittleEndian
	dst = append(dst, byte(p.Kind))
	switch p.Kind {
	case wire.ParamBool:
		b := byte(0)
		if p.Bool {
			b = 1
		}
		dst = append(dst, b)
	case wire.ParamInt:
		dst = le.AppendUint64(dst, uint64(p.Int))
	case wire.ParamFloat:
		dst = le.AppendUint64(dst, math.Float64bits(p.Float))
	case wire.ParamString:
		dst = appendStr(dst, p.String)
	case wire.ParamIntList:
		dst = le.AppendUint32(dst, uint32(len(p.Ints)))
		for _, v := range p.Ints {
			dst = le.AppendUint64(dst, uint64(v))
		}
	case wire.ParamFloatList:
		dst = le.AppendUint32(dst, uint32(len(p.Floats)))
		for _, v := range p.Floats {
			dst = le.AppendUint64(dst, math.Float64bits(v))
		}
	case wire.ParamStringList:
		dst = le.AppendUint32(dst, uint32(len(p.Strings)))
		for _, s := range p.Strings {
			dst = appendStr(dst, s)
		}
	}
	return dst
}

func appendWireType(dst []byte, t *wire.ArrayInfo) []byte {
	le := binary.LittleEndian
	dst = appendStr(dst, t.Format)
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
		dst = appendWireType(dst, &t.Children[i])
	}
	return dst
}

// decodeWireMetadata decodes a guest's output metadata (send_output_meta).
func decodeWireMetadata(b []byte) (wire.Metadata, error) {
	md, err := wasmabi.DecodeMetadata(b)
	if err != nil {
		return wire.Metadata{}, err
	}
	out := wire.Metadata{Timestamp: md.Timestamp, OpenTelemetryContext: md.OpenTelemetryContext}
	if md.Parameters != nil {
		out.Parameters = make(map[string]wire.Parameter, len(md.Parameters))
		for k, p := range md.Parameters {
			out.Parameters[k] = wire.Parameter{Kind: wire.ParamKind(p.Kind), Bool: p.Bool, Int: p.Int, Float: p.Float,
				String: p.String, Ints: p.Ints, Floats: p.Floats, Strings: p.Strings}
		}
	}
	if md.Type != nil {
		t := toWireType(md.Type)
		out.Type = &t
	}
	return out, nil
}

func toWireType(t *wasmabi.ArrayInfo) wire.ArrayInfo {
	w := wire.ArrayInfo{Format: t.Format, Length: t.Length, NullCount: t.NullCount, Offset: t.Offset}
	if t.Buffers != nil {
		w.Buffers = make([]wire.BufferSpan, len(t.Buffers))
		for i, b := range t.Buffers {
			w.Buffers[i] = wire.BufferSpan{Offset: b.Offset, Len: b.Len, Absent: b.Absent}
		}
	}
	if t.Children != nil {
		w.Children = make([]wire.ArrayInfo, len(t.Children))
		for i := range t.Children {
			w.Children[i] = toWireType(&t.Children[i])
		}
	}
	return w
}
