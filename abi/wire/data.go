package wire

import "fmt"

// Where says how a message's data travels.
type Where uint8

const (
	DataNone   Where = 0
	DataInline Where = 1
	DataShm    Where = 2
)

// Data is the payload of SEND_OUTPUT and INPUT.
type Data struct {
	Where Where
	// Inline is the payload of DataInline, a view into the frame.
	Inline []byte
	// For DataShm: the region (sender id or daemon key, by direction), its
	// size, the payload length, and whether the frame carries its fd.
	FDAttached bool
	Region     uint64
	RegionSize uint64
	Len        uint64
}

// Size is the payload length.
func (d *Data) Size() uint64 {
	if d.Where == DataShm {
		return d.Len
	}
	return uint64(len(d.Inline))
}

// PutData appends d.
func (e *Encoder) PutData(d *Data) {
	e.U8(uint8(d.Where))
	switch d.Where {
	case DataInline:
		e.U32(uint32(len(d.Inline)))
		e.Pad8()
		e.Raw(d.Inline)
	case DataShm:
		e.PutShm(d.FDAttached, d.Region, d.RegionSize, d.Len)
	}
}

// PutShm appends the body of shm data (after its Where byte).
func (e *Encoder) PutShm(fdAttached bool, region, size, n uint64) {
	e.Bool(fdAttached)
	e.U64(region)
	e.U64(size)
	e.U64(n)
}

// PutInlineHeader appends the header of n bytes of inline data, with its
// padding, so the caller can append the bytes themselves.
func (e *Encoder) PutInlineHeader(n int) {
	e.U8(uint8(DataInline))
	e.U32(uint32(n))
	e.Pad8()
}

// Data decodes data into d.
func (d *Decoder) Data(out *Data) {
	*out = Data{Where: Where(d.U8())}
	switch out.Where {
	case DataNone:
	case DataInline:
		n := d.U32()
		d.Pad8()
		out.Inline = d.take(int(n))
	case DataShm:
		out.FDAttached = d.Bool()
		out.Region, out.RegionSize, out.Len = d.U64(), d.U64(), d.U64()
		if out.Len > out.RegionSize {
			d.fail(fmt.Sprintf("shm payload of %d bytes in a region of %d", out.Len, out.RegionSize))
		}
	default:
		d.fail(fmt.Sprintf("data location %d", out.Where))
	}
}
