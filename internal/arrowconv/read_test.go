package arrowconv

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/dora-go/dora/abi/wire"
)

func span(off, n uint64) wire.BufferSpan { return wire.BufferSpan{Offset: off, Len: n} }

var absent = wire.BufferSpan{Absent: true}

// hostileData is 64 bytes: an int32 offsets buffer [0, 1, 3, 3, 6] at 0,
// "abcdef" at 24, a validity byte 0b1011 at 32 and int32 values 1..4 at 40.
func hostileData() []byte {
	d := make([]byte, 64)
	for i, v := range []uint32{0, 1, 3, 3, 6} {
		binary.NativeEndian.PutUint32(d[i*4:], v)
	}
	copy(d[24:], "abcdef")
	d[32] = 0b1011
	for i := range 4 {
		binary.NativeEndian.PutUint32(d[40+i*4:], uint32(i+1))
	}
	return d
}

// nest wraps leaf in n lists with one element each.
func nest(leaf wire.ArrayInfo, n int) wire.ArrayInfo {
	info := leaf
	for range n {
		info = wire.ArrayInfo{Format: "+l", Length: 0, Buffers: []wire.BufferSpan{absent, span(56, 4)}, Children: []wire.ArrayInfo{info}}
	}
	return info
}

func TestReadAcceptsValid(t *testing.T) {
	data := hostileData()
	tests := map[string]wire.ArrayInfo{
		"int32 with nulls": {Format: "i", Length: 4, NullCount: 1, Buffers: []wire.BufferSpan{span(32, 1), span(40, 16)}},
		"unknown nulls":    {Format: "i", Length: 4, NullCount: -1, Buffers: []wire.BufferSpan{span(32, 1), span(40, 16)}},
		"utf8":             {Format: "u", Length: 4, Buffers: []wire.BufferSpan{absent, span(0, 20), span(24, 6)}},
		"utf8 offset":      {Format: "u", Length: 2, Offset: 2, Buffers: []wire.BufferSpan{absent, span(0, 20), span(24, 6)}},
		"list of int32": {Format: "+l", Length: 2, Offset: 1, Buffers: []wire.BufferSpan{absent, span(0, 20)},
			Children: []wire.ArrayInfo{{Format: "i", Length: 4, NullCount: 1, Buffers: []wire.BufferSpan{span(32, 1), span(40, 16)}}}},
		"zero length no buffers": {Format: "g", Buffers: []wire.BufferSpan{absent, absent}},
		"null with count":        {Format: "n", Length: 1 << 40, NullCount: 1 << 40},
		"depth 32":               nest(wire.ArrayInfo{Format: "n"}, MaxDepth-1),
		"overlapping spans":      {Format: "C", Length: 8, Buffers: []wire.BufferSpan{span(32, 1), span(32, 8)}, NullCount: 5},
	}
	for name, info := range tests {
		t.Run(name, func(t *testing.T) {
			arr, err := Read(data, &info)
			if err != nil {
				t.Fatal(err)
			}
			defer arr.Release()
			touch(arr, 64)
		})
	}
}

func TestReadRejectsHostile(t *testing.T) {
	data := hostileData()
	i32 := func(mut func(*wire.ArrayInfo)) wire.ArrayInfo {
		info := wire.ArrayInfo{Format: "i", Length: 4, NullCount: 1, Buffers: []wire.BufferSpan{span(32, 1), span(40, 16)}}
		mut(&info)
		return info
	}
	utf8 := func(mut func(*wire.ArrayInfo), offsets ...uint32) (wire.ArrayInfo, []byte) {
		d := hostileData()
		for i, v := range offsets {
			binary.NativeEndian.PutUint32(d[i*4:], v)
		}
		info := wire.ArrayInfo{Format: "u", Length: 4, Buffers: []wire.BufferSpan{absent, span(0, 20), span(24, 6)}}
		mut(&info)
		return info, d
	}
	list := func(mut func(*wire.ArrayInfo)) wire.ArrayInfo {
		info := wire.ArrayInfo{Format: "+l", Length: 4, Buffers: []wire.BufferSpan{absent, span(0, 20)},
			Children: []wire.ArrayInfo{{Format: "C", Length: 6, Buffers: []wire.BufferSpan{absent, span(24, 6)}}}}
		mut(&info)
		return info
	}
	keep := func(*wire.ArrayInfo) {}

	type tc struct {
		info wire.ArrayInfo
		data []byte // nil: hostileData
		says string
	}
	tests := map[string]tc{
		"span past end":          {info: i32(func(i *wire.ArrayInfo) { i.Buffers[1] = span(56, 16) }), says: "outside the data"},
		"span offset past end":   {info: i32(func(i *wire.ArrayInfo) { i.Buffers[1] = span(1<<40, 0) }), says: "outside the data"},
		"span length overflow":   {info: i32(func(i *wire.ArrayInfo) { i.Buffers[1] = span(8, math.MaxUint64) }), says: "outside the data"},
		"span offset overflow":   {info: i32(func(i *wire.ArrayInfo) { i.Buffers[1] = span(math.MaxUint64-7, 16) }), says: "outside the data"},
		"misaligned span":        {info: i32(func(i *wire.ArrayInfo) { i.Buffers[1] = span(36, 16) }), says: "multiple of 8"},
		"absent with span":       {info: i32(func(i *wire.ArrayInfo) { i.Buffers[0] = wire.BufferSpan{Absent: true, Len: 1} }), says: "absent but"},
		"too few buffers":        {info: i32(func(i *wire.ArrayInfo) { i.Buffers = i.Buffers[:1] }), says: "needs 2 buffers, got 1"},
		"no buffers":             {info: i32(func(i *wire.ArrayInfo) { i.Buffers = nil }), says: "needs 2 buffers, got 0"},
		"too many buffers":       {info: i32(func(i *wire.ArrayInfo) { i.Buffers = append(i.Buffers, absent) }), says: "needs 2 buffers, got 3"},
		"negative length":        {info: i32(func(i *wire.ArrayInfo) { i.Length = -1 }), says: "negative length"},
		"negative offset":        {info: i32(func(i *wire.ArrayInfo) { i.Offset = -8 }), says: "negative"},
		"null count below -1":    {info: i32(func(i *wire.ArrayInfo) { i.NullCount = -2 }), says: "null count"},
		"null count > length":    {info: i32(func(i *wire.ArrayInfo) { i.NullCount = 5 }), says: "null count"},
		"huge length":            {info: i32(func(i *wire.ArrayInfo) { i.Length = 1 << 40; i.NullCount = 0; i.Buffers[0] = absent }), says: "values buffer has 16 bytes"},
		"length overflows bytes": {info: i32(func(i *wire.ArrayInfo) { i.Length = 1 << 62; i.NullCount = 0; i.Buffers[0] = absent }), says: "overflows"},
		"max length":             {info: i32(func(i *wire.ArrayInfo) { i.Length = math.MaxInt64; i.NullCount = 0; i.Buffers[0] = absent }), says: "overflows"},
		"offset plus length":     {info: i32(func(i *wire.ArrayInfo) { i.Offset = math.MaxInt64; i.Length = 1 }), says: "overflows"},
		"offset past values":     {info: i32(func(i *wire.ArrayInfo) { i.Offset = 1; i.NullCount = -1 }), says: "needs 20"},
		"wrong null count":       {info: i32(func(i *wire.ArrayInfo) { i.NullCount = 0 }), says: "bitmap has 1 nulls"},
		"nulls without bitmap":   {info: i32(func(i *wire.ArrayInfo) { i.Buffers[0] = absent }), says: "without a validity bitmap"},
		"short bitmap":           {info: i32(func(i *wire.ArrayInfo) { i.Length = 9; i.Buffers[1] = span(0, 36) }), says: "validity bitmap has 1 bytes"},
		"empty format":           {info: i32(func(i *wire.ArrayInfo) { i.Format = "" }), says: "empty format"},
		"unknown format":         {info: i32(func(i *wire.ArrayInfo) { i.Format = "?" }), says: "unsupported"},
		"leaf with children":     {info: i32(func(i *wire.ArrayInfo) { i.Children = []wire.ArrayInfo{{Format: "n"}} }), says: "takes no children"},
		"bool values short":      {info: wire.ArrayInfo{Format: "b", Length: 9, Buffers: []wire.BufferSpan{absent, span(32, 1)}}, says: "value bitmap buffer has 1 bytes"},
		"fixed binary too wide":  {info: wire.ArrayInfo{Format: "w:2147483647", Length: 1, Buffers: []wire.BufferSpan{absent, span(0, 64)}}, says: "needs 2147483647"},
		"fixed list overflow":    {info: wire.ArrayInfo{Format: "+w:2147483647", Length: 1 << 40, Buffers: []wire.BufferSpan{absent}, Children: []wire.ArrayInfo{{Format: "n"}}}, says: "overflows"},
		"fixed list child empty": {info: wire.ArrayInfo{Format: "+w:2147483647", Length: 1, Buffers: []wire.BufferSpan{absent}, Children: []wire.ArrayInfo{{Format: "n"}}}, says: "Children[0] has 0 elements"},
		"fixed list child short": {info: wire.ArrayInfo{Format: "+w:2", Length: 4, Buffers: []wire.BufferSpan{absent}, Children: []wire.ArrayInfo{{Format: "n", Length: 7}}}, says: "needs 8"},
		"struct child short": {info: wire.ArrayInfo{Format: "+s", Length: 4, Buffers: []wire.BufferSpan{absent},
			Children: []wire.ArrayInfo{{Format: "n", Length: 4}, {Format: "n", Length: 3}}}, says: "Children[1] has 3 elements"},
		"null bad count":      {info: wire.ArrayInfo{Format: "n", Length: 4, NullCount: 2}, says: "null count 2"},
		"null with buffer":    {info: wire.ArrayInfo{Format: "n", Length: 4, Buffers: []wire.BufferSpan{absent}}, says: "needs 0 buffers"},
		"list no child":       {info: list(func(i *wire.ArrayInfo) { i.Children = nil }), says: "exactly 1 child"},
		"list two children":   {info: list(func(i *wire.ArrayInfo) { i.Children = append(i.Children, i.Children[0]) }), says: "exactly 1 child"},
		"list past child":     {info: list(func(i *wire.ArrayInfo) { i.Children[0].Length = 5 }), says: "past the 5 child elements"},
		"list offsets short":  {info: list(func(i *wire.ArrayInfo) { i.Buffers[1] = span(0, 16) }), says: "offsets buffer has 16 bytes, needs 20"},
		"bad child reported":  {info: list(func(i *wire.ArrayInfo) { i.Children[0].Buffers[1] = span(24, 5) }), says: "ArrayInfo.Children[0]: invalid layout: Buffers[1]: values buffer has 5 bytes, needs 6"},
		"depth bomb":          {info: nest(wire.ArrayInfo{Format: "n"}, MaxDepth), says: "deeper than 32"},
		"deep depth bomb":     {info: nest(wire.ArrayInfo{Format: "n"}, 10000), says: "deeper than 32"},
		"large utf8 offset":   {info: wire.ArrayInfo{Format: "U", Length: 1, Buffers: []wire.BufferSpan{absent, span(0, 16), span(24, 6)}}, data: func() []byte { d := hostileData(); binary.NativeEndian.PutUint64(d[8:], 1<<62); return d }(), says: "past the 6 data bytes"},
		"large utf8 negative": {info: wire.ArrayInfo{Format: "U", Length: 1, Buffers: []wire.BufferSpan{absent, span(0, 16), span(24, 6)}}, data: func() []byte { d := hostileData(); binary.NativeEndian.PutUint64(d[0:], 1<<63); return d }(), says: "negative"},
	}
	add := func(name string, info wire.ArrayInfo, d []byte, says string) {
		tests[name] = tc{info: info, data: d, says: says}
	}
	{
		info, d := utf8(keep, 0, 3, 1, 3, 6)
		add("utf8 decreasing", info, d, "offsets[2] = 1 is less than offsets[1] = 3")
		info, d = utf8(keep, 0xFFFFFFFF)
		add("utf8 negative first", info, d, "offsets[0] = -1 is negative")
		info, d = utf8(keep, 0, 1, 3, 3, 7)
		add("utf8 past data", info, d, "past the 6 data bytes")
		info, d = utf8(func(i *wire.ArrayInfo) { i.Buffers[1] = span(0, 16) })
		add("utf8 offsets short", info, d, "offsets buffer has 16 bytes, needs 20")
		info, d = utf8(func(i *wire.ArrayInfo) { i.Offset = 1 })
		add("utf8 offset past offsets", info, d, "needs 24")
		info, d = utf8(func(i *wire.ArrayInfo) { i.Buffers[2] = absent })
		add("utf8 no data", info, d, "past the 0 data bytes")
	}

	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := tc.data
			if d == nil {
				d = data
			}
			arr, err := Read(d, &tc.info)
			if err == nil {
				arr.Release()
				t.Fatalf("Read succeeded, want error mentioning %q", tc.says)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Errorf("error %q wraps neither ErrInvalid nor ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not mention %q", err, tc.says)
			}
		})
	}
}
