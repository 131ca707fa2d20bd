package wire

import "fmt"

// Limits that keep a hostile frame from costing much to decode.
const (
	maxParameters = 1024
	maxArrayDepth = 32
	maxBuffers    = 16
)

// PutMetadata appends md.
func (e *Encoder) PutMetadata(md *Metadata) {
	e.U64(md.Timestamp)
	e.LStr(md.OpenTelemetryContext)
	e.U16(uint16(len(md.Parameters)))
	for k, p := range md.Parameters {
		e.Str(k)
		e.putParameter(&p)
	}
	if md.Type == nil {
		e.U8(0)
		return
	}
	e.U8(1)
	e.putArrayInfo(md.Type)
}

func (e *Encoder) putParameter(p *Parameter) {
	e.U8(uint8(p.Kind))
	switch p.Kind {
	case ParamBool:
		e.Bool(p.Bool)
	case ParamInt:
		e.I64(p.Int)
	case ParamFloat:
		e.F64(p.Float)
	case ParamString:
		e.LStr(p.String)
	case ParamIntList:
		e.U32(uint32(len(p.Ints)))
		for _, v := range p.Ints {
			e.I64(v)
		}
	case ParamFloatList:
		e.U32(uint32(len(p.Floats)))
		for _, v := range p.Floats {
			e.F64(v)
		}
	case ParamStringList:
		e.U32(uint32(len(p.Strings)))
		for _, v := range p.Strings {
			e.LStr(v)
		}
	}
}

func (e *Encoder) putArrayInfo(a *ArrayInfo) {
	e.Str(a.Format)
	e.I64(a.Length)
	e.I64(a.NullCount)
	e.I64(a.Offset)
	e.U8(uint8(len(a.Buffers)))
	for _, b := range a.Buffers {
		e.Bool(b.Absent)
		e.U64(b.Offset)
		e.U64(b.Len)
	}
	e.U8(uint8(len(a.Children)))
	for i := range a.Children {
		e.putArrayInfo(&a.Children[i])
	}
}

// Metadata decodes metadata into md, reusing md's Parameters map when it
// has one. Strings are copied out of the frame.
func (d *Decoder) Metadata(md *Metadata) {
	md.Timestamp = d.U64()
	otel := d.LStrBytes()
	if len(otel) == 0 {
		md.OpenTelemetryContext = ""
	} else {
		md.OpenTelemetryContext = string(otel)
	}
	n := int(d.U16())
	if n > maxParameters {
		d.fail(fmt.Sprintf("%d parameters", n))
		return
	}
	if n == 0 {
		md.Parameters = nil
	} else {
		md.Parameters = make(map[string]Parameter, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.Str()
			md.Parameters[k] = d.parameter()
		}
	}
	md.Type = nil
	if d.Bool() {
		md.Type = new(ArrayInfo)
		d.arrayInfo(md.Type, 0)
	}
}

// SkipMetadata checks and skips encoded metadata without allocating, and
// returns its encoded bytes.
func (d *Decoder) SkipMetadata() []byte {
	start := d.off
	d.U64()
	d.LStrBytes()
	n := int(d.U16())
	if n > maxParameters {
		d.fail(fmt.Sprintf("%d parameters", n))
		return nil
	}
	var p Parameter
	for i := 0; i < n && d.err == nil; i++ {
		d.StrBytes()
		d.skipParameter(&p)
	}
	if d.Bool() {
		d.skipArrayInfo(0)
	}
	if d.err != nil {
		return nil
	}
	return d.f[start:d.off:d.off]
}

func (d *Decoder) parameter() Parameter {
	p := Parameter{Kind: ParamKind(d.U8())}
	switch p.Kind {
	case ParamBool:
		p.Bool = d.Bool()
	case ParamInt:
		p.Int = d.I64()
	case ParamFloat:
		p.Float = d.F64()
	case ParamString:
		p.String = d.LStr()
	case ParamIntList:
		p.Ints = make([]int64, d.Count(8))
		for i := range p.Ints {
			p.Ints[i] = d.I64()
		}
	case ParamFloatList:
		p.Floats = make([]float64, d.Count(8))
		for i := range p.Floats {
			p.Floats[i] = d.F64()
		}
	case ParamStringList:
		p.Strings = make([]string, d.Count(4))
		for i := range p.Strings {
			p.Strings[i] = d.LStr()
		}
	default:
		d.fail(fmt.Sprintf("parameter kind %d", p.Kind))
	}
	return p
}

func (d *Decoder) skipParameter(p *Parameter) {
	switch k := ParamKind(d.U8()); k {
	case ParamBool:
		d.Bool()
	case ParamInt, ParamFloat:
		d.U64()
	case ParamString:
		d.LStrBytes()
	case ParamIntList, ParamFloatList:
		d.take(8 * d.Count(8))
	case ParamStringList:
		for n := d.Count(4); n > 0 && d.err == nil; n-- {
			d.LStrBytes()
		}
	default:
		d.fail(fmt.Sprintf("parameter kind %d", k))
	}
}

func (d *Decoder) arrayInfo(a *ArrayInfo, depth int) {
	if depth > maxArrayDepth {
		d.fail("arrays nested too deeply")
		return
	}
	a.Format = d.Str()
	a.Length, a.NullCount, a.Offset = d.I64(), d.I64(), d.I64()
	if nb := int(d.U8()); nb > maxBuffers {
		d.fail(fmt.Sprintf("%d buffers", nb))
	} else if nb > 0 {
		a.Buffers = make([]BufferSpan, nb)
		for i := range a.Buffers {
			a.Buffers[i] = BufferSpan{Absent: d.Bool(), Offset: d.U64(), Len: d.U64()}
		}
	}
	if nc := int(d.U8()); nc > 0 && d.err == nil {
		a.Children = make([]ArrayInfo, nc)
		for i := range a.Children {
			d.arrayInfo(&a.Children[i], depth+1)
		}
	}
}

func (d *Decoder) skipArrayInfo(depth int) {
	if depth > maxArrayDepth {
		d.fail("arrays nested too deeply")
		return
	}
	d.StrBytes()
	d.take(24)
	nb := int(d.U8())
	if nb > maxBuffers {
		d.fail(fmt.Sprintf("%d buffers", nb))
		return
	}
	for i := 0; i < nb; i++ {
		d.Bool()
		d.take(16)
	}
	for nc := int(d.U8()); nc > 0 && d.err == nil; nc-- {
		d.skipArrayInfo(depth + 1)
	}
}
