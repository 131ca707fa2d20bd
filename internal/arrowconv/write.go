package arrowconv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/dora-go/dora/abi/wire"
)

// Size returns the number of bytes Write needs for arr: every buffer Write
// stores, each rounded up to a multiple of 8. It returns 0 when Write would
// reject arr (nil, unsupported type, malformed buffers); Write reports why.
func Size(arr arrow.Array) int {
	if arr == nil {
		return 0
	}
	w := writer{dry: true}
	if _, err := w.node(arr.Data(), 1); err != nil {
		return 0
	}
	return w.pos
}

// Write copies arr's buffers into dst, which must hold at least Size(arr)
// bytes, and returns their layout. Offsets in the result are relative to
// dst[0]. Sliced arrays are normalised (see the package documentation): the
// result always has Offset 0 and only the covered bytes are copied. Padding
// between buffers is zeroed; bytes of dst past Size(arr) are left alone.
func Write(dst []byte, arr arrow.Array) (*wire.ArrayInfo, error) {
	if arr == nil {
		return nil, errors.New("arrowconv: nil array")
	}
	m := writer{dry: true}
	if _, err := m.node(arr.Data(), 1); err != nil {
		return nil, err
	}
	if len(dst) < m.pos {
		return nil, fmt.Errorf("arrowconv: destination has %d bytes, %s array needs %d", len(dst), arr.DataType(), m.pos)
	}
	w := writer{dst: dst}
	info, err := w.node(arr.Data(), 1)
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// writer walks an array's data in Write's buffer order. With dry set it only
// measures (and checks) and builds no ArrayInfo; otherwise it copies into
// dst. Both runs take the same path, so Size and Write cannot disagree.
type writer struct {
	dst []byte
	pos int // next free offset, a multiple of 8
	dry bool
}

// put reserves n bytes at the next aligned offset and returns their span and
// (when not dry) the destination bytes, with the padding after them zeroed.
func (w *writer) put(n int) (wire.BufferSpan, []byte, error) {
	start := w.pos
	end, ok := addOK(start, n)
	if !ok || end > maxInt-7 {
		return wire.BufferSpan{}, nil, errors.New("arrowconv: array too large")
	}
	w.pos = align8(end)
	span := wire.BufferSpan{Offset: uint64(start), Len: uint64(n)}
	if w.dry {
		return span, nil, nil
	}
	if w.pos > len(w.dst) {
		return wire.BufferSpan{}, nil, fmt.Errorf("arrowconv: destination has %d bytes, needs at least %d", len(w.dst), w.pos)
	}
	clear(w.dst[end:w.pos])
	return span, w.dst[start:end], nil
}

func (w *writer) node(d arrow.ArrayData, depth int) (wire.ArrayInfo, error) {
	var info wire.ArrayInfo
	dt := d.DataType()
	if depth > MaxDepth {
		return info, fmt.Errorf("arrowconv: %w %s: nested deeper than %d levels", ErrUnsupported, dt, MaxDepth)
	}
	f, err := format(dt)
	if err != nil {
		return info, fmt.Errorf("arrowconv: %w", err)
	}
	lay, ok := layoutOf(dt)
	if !ok {
		return info, fmt.Errorf("arrowconv: %w %s", ErrUnsupported, dt)
	}
	off, n := d.Offset(), d.Len()
	if off < 0 || n < 0 {
		return info, fmt.Errorf("arrowconv: %s array has offset %d, length %d", dt, off, n)
	}
	end, ok := addOK(off, n)
	if !ok {
		return info, fmt.Errorf("arrowconv: %s array offset %d + length %d overflows", dt, off, n)
	}
	bufs := d.Buffers()
	buf := func(i int) []byte {
		if i < len(bufs) && bufs[i] != nil {
			return bufs[i].Bytes()
		}
		return nil
	}
	short := func(what string, have, need int) error {
		return fmt.Errorf("arrowconv: %s array: %s buffer has %d bytes, offset %d + length %d needs %d", dt, what, have, off, n, need)
	}
	if !w.dry {
		info = wire.ArrayInfo{Format: f, Length: int64(n), Buffers: make([]wire.BufferSpan, 0, lay.buffers())}
	}
	add := func(s wire.BufferSpan) {
		if !w.dry {
			info.Buffers = append(info.Buffers, s)
		}
	}

	// Validity: only stored when this range has nulls.
	if lay.kind == kindNull {
		info.NullCount = int64(n)
	} else {
		nulls := 0
		v := buf(0)
		if v != nil {
			if len(v) < bitmapBytes(end) {
				return info, short("validity", len(v), bitmapBytes(end))
			}
			nulls = n - bitutil.CountSetBits(v, off, n)
		}
		info.NullCount = int64(nulls)
		if nulls == 0 {
			add(wire.BufferSpan{Absent: true})
		} else if err := w.bitmap(v, off, n, add); err != nil {
			return info, err
		}
	}

	switch lay.kind {
	case kindBool:
		v := buf(1)
		if len(v) < bitmapBytes(end) {
			return info, short("value bitmap", len(v), bitmapBytes(end))
		}
		if err := w.bitmap(v, off, n, add); err != nil {
			return info, err
		}
	case kindFixed:
		v := buf(1)
		lo, ok1 := mulOK(off, lay.width)
		hi, ok2 := mulOK(end, lay.width)
		if !ok1 || !ok2 || len(v) < hi {
			return info, short("values", len(v), hi)
		}
		span, dst, err := w.put(hi - lo)
		if err != nil {
			return info, err
		}
		copy(dst, v[lo:hi])
		add(span)
	case kindBinary, kindLargeBinary:
		first, last, err := w.offsets(dt, buf(1), lay.offsetWidth(), off, n, len(buf(2)), add)
		if err != nil {
			return info, err
		}
		span, dst, err := w.put(last - first)
		if err != nil {
			return info, err
		}
		copy(dst, buf(2)[first:last])
		add(span)
	case kindList, kindLargeList:
		if len(d.Children()) != 1 {
			return info, fmt.Errorf("arrowconv: %s array has %d children, want 1", dt, len(d.Children()))
		}
		child := d.Children()[0]
		first, last, err := w.offsets(dt, buf(1), lay.offsetWidth(), off, n, child.Len(), add)
		if err != nil {
			return info, err
		}
		if err := w.children(&info, []arrow.ArrayData{child}, first, last, depth); err != nil {
			return info, err
		}
	case kindFixedList:
		if len(d.Children()) != 1 {
			return info, fmt.Errorf("arrowconv: %s array has %d children, want 1", dt, len(d.Children()))
		}
		lo, ok1 := mulOK(off, lay.width)
		hi, ok2 := mulOK(end, lay.width)
		if !ok1 || !ok2 {
			return info, fmt.Errorf("arrowconv: %s array offset %d + length %d overflows", dt, off, n)
		}
		if err := w.children(&info, d.Children(), lo, hi, depth); err != nil {
			return info, err
		}
	case kindStruct:
		if err := w.children(&info, d.Children(), off, end, depth); err != nil {
			return info, err
		}
	}
	return info, nil
}

// bitmap stores bits [off, off+n) of src re-based to bit 0.
func (w *writer) bitmap(src []byte, off, n int, add func(wire.BufferSpan)) error {
	span, dst, err := w.put(bitmapBytes(n))
	if err != nil {
		return err
	}
	if !w.dry {
		clear(dst) // CopyBitmap may keep bits past n in the last byte
		bitutil.CopyBitmap(src, off, n, dst, 0)
	}
	add(span)
	return nil
}

// offsets stores entries [off, off+n] of a string/binary or list offsets
// buffer, re-based so the first is 0, and returns the first and last source
// offsets: the range of data bytes or child elements the array uses.
func (w *writer) offsets(dt arrow.DataType, src []byte, width, off, n, limit int, add func(wire.BufferSpan)) (int, int, error) {
	count, ok := addOK(off+n, 1) // off+n was checked by node
	size, ok2 := mulOK(n+1, width)
	need, ok3 := mulOK(count, width)
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("arrowconv: %s array: offset %d + length %d overflows", dt, off, n)
	}
	span, dst, err := w.put(size)
	if err != nil {
		return 0, 0, err
	}
	add(span)
	if n == 0 { // no offsets needed in the source; store a single 0
		if !w.dry {
			clear(dst)
		}
		return 0, 0, nil
	}
	if len(src) < need {
		return 0, 0, fmt.Errorf("arrowconv: %s array: offsets buffer has %d bytes, offset %d + length %d needs %d", dt, len(src), off, n, need)
	}
	at := func(i int) int64 {
		if width == 4 {
			return int64(int32(binary.NativeEndian.Uint32(src[i*4:])))
		}
		return int64(binary.NativeEndian.Uint64(src[i*8:]))
	}
	first, last := at(off), at(off+n)
	if first < 0 || first > last || last > int64(limit) {
		return 0, 0, fmt.Errorf("arrowconv: %s array: offsets [%d, %d] are outside 0..%d", dt, first, last, limit)
	}
	if w.dry {
		return int(first), int(last), nil
	}
	for i := 0; i <= n; i++ {
		v := at(off+i) - first
		if v < 0 || v > last-first {
			return 0, 0, fmt.Errorf("arrowconv: %s array: offsets[%d] = %d is outside [%d, %d]", dt, off+i, v+first, first, last)
		}
		if width == 4 {
			binary.NativeEndian.PutUint32(dst[i*4:], uint32(v))
		} else {
			binary.NativeEndian.PutUint64(dst[i*8:], uint64(v))
		}
	}
	return int(first), int(last), nil
}

// children writes elements [lo, hi) of each child.
func (w *writer) children(info *wire.ArrayInfo, children []arrow.ArrayData, lo, hi, depth int) error {
	if !w.dry {
		info.Children = make([]wire.ArrayInfo, len(children))
	}
	for i, c := range children {
		if hi > c.Len() {
			return fmt.Errorf("arrowconv: %s child %d has %d elements, parent needs %d", c.DataType(), i, c.Len(), hi)
		}
		s := array.NewSliceData(c, int64(lo), int64(hi))
		ci, err := w.node(s, depth+1)
		s.Release()
		if err != nil {
			return err
		}
		if !w.dry {
			info.Children[i] = ci
		}
	}
	return nil
}
