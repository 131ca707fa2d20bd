package arrowconv

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dora-go/dora/abi/wire"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzRead from the seed cases")

// The fuzz input encodes an ArrayInfo tree in pre-order. Per node:
//
//	format:   1 byte k; k < len(fuzzFormats) picks fuzzFormats[k], otherwise
//	          k-len(fuzzFormats) raw bytes follow
//	Length, NullCount, Offset: signed varints
//	buffers:  1 byte count, then per buffer 1 flag byte (bit 0: absent) and
//	          Offset, Len as unsigned varints
//	children: 1 byte count, then each child
//
// Missing bytes read as zero, so every input decodes.
var fuzzFormats = []string{
	"n", "b", "c", "C", "s", "S", "i", "I", "l", "L", "e", "f", "g", "z", "Z", "u", "U",
	"w:3", "tdD", "tdm", "tts", "ttm", "ttu", "ttn", "tss:", "tsm:UTC", "tsu:Europe/Paris", "tsn:+01:00",
	"tDs", "tDm", "tDu", "tDn", "tiM", "tiD", "tin", "d:9,2,32", "d:18,-3,64", "d:38,10", "d:76,4,256",
	"+l", "+L", "+w:2", "+s",
}

// fuzzMaxNodes bounds a decoded tree so a short input cannot describe a huge
// one (children counts are read even past the end of the input).
const fuzzMaxNodes = 256

type infoDecoder struct {
	b     []byte
	nodes int
}

func (d *infoDecoder) byte() byte {
	if len(d.b) == 0 {
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *infoDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *infoDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *infoDecoder) node(depth int) wire.ArrayInfo {
	d.nodes++
	var info wire.ArrayInfo
	if k := int(d.byte()); k < len(fuzzFormats) {
		info.Format = fuzzFormats[k]
	} else {
		n := min(k-len(fuzzFormats), len(d.b))
		info.Format = string(d.b[:n])
		d.b = d.b[n:]
	}
	info.Length, info.NullCount, info.Offset = d.varint(), d.varint(), d.varint()
	if n := int(d.byte()); n > 0 {
		info.Buffers = make([]wire.BufferSpan, n)
		for i := range info.Buffers {
			absent := d.byte()&1 != 0
			info.Buffers[i] = wire.BufferSpan{Absent: absent, Offset: d.uvarint(), Len: d.uvarint()}
		}
	}
	// Depth up to 40 lets the fuzzer reach the MaxDepth check.
	if n := int(d.byte()); n > 0 && depth < 40 {
		for range n {
			if d.nodes >= fuzzMaxNodes {
				break
			}
			info.Children = append(info.Children, d.node(depth+1))
		}
	}
	return info
}

func decodeInfo(b []byte) *wire.ArrayInfo {
	if len(b) == 0 {
		return nil // raw bytes
	}
	d := infoDecoder{b: b}
	info := d.node(1)
	return &info
}

func encodeInfo(info *wire.ArrayInfo) []byte {
	if info == nil {
		return nil
	}
	var b []byte
	var enc func(*wire.ArrayInfo)
	enc = func(info *wire.ArrayInfo) {
		k := -1
		for i, f := range fuzzFormats {
			if f == info.Format {
				k = i
			}
		}
		if k >= 0 {
			b = append(b, byte(k))
		} else {
			b = append(b, byte(len(fuzzFormats)+len(info.Format)))
			b = append(b, info.Format...)
		}
		b = binary.AppendVarint(b, info.Length)
		b = binary.AppendVarint(b, info.NullCount)
		b = binary.AppendVarint(b, info.Offset)
		b = append(b, byte(len(info.Buffers)))
		for _, s := range info.Buffers {
			flag := byte(0)
			if s.Absent {
				flag = 1
			}
			b = append(b, flag)
			b = binary.AppendUvarint(b, s.Offset)
			b = binary.AppendUvarint(b, s.Len)
		}
		b = append(b, byte(len(info.Children)))
		for i := range info.Children {
			enc(&info.Children[i])
		}
	}
	enc(info)
	return b
}

// touch reads up to limit elements of arr (and, through ValueStr, of its
// children), the way a consumer would.
func touch(arr arrow.Array, limit int) {
	n := min(arr.Len(), limit)
	for i := range n {
		_ = arr.IsNull(i)
		_ = arr.ValueStr(i)
	}
	_ = arr.NullN()
	if s, ok := arr.(*array.Struct); ok {
		for i := range s.NumField() {
			touch(s.Field(i), limit)
		}
	}
}

type fuzzSeed struct {
	name string
	data []byte
	info []byte
}

// fuzzSeeds are Write's output for every type case and a few slices, plus
// hostile layouts.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	mem := memory.NewGoAllocator()
	var seeds []fuzzSeed
	add := func(name string, arr arrow.Array) {
		data := make([]byte, Size(arr))
		info, err := Write(data, arr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seeds = append(seeds, fuzzSeed{name, data, encodeInfo(info)})
	}
	for _, tc := range typeCases() {
		if _, err := Format(tc.dt); err != nil {
			continue
		}
		arr := fromJSON(t, mem, tc.dt, tc.json)
		add(tc.name, arr)
		sl := array.NewSlice(arr, 3, 7)
		add(tc.name+"_slice", sl)
		sl.Release()
		arr.Release()
	}
	data := hostileData()
	hostile := map[string]wire.ArrayInfo{
		"hostile_list_offset": {Format: "+l", Length: 2, Offset: 1, Buffers: []wire.BufferSpan{absent, span(0, 20)},
			Children: []wire.ArrayInfo{{Format: "i", Length: 4, NullCount: 1, Buffers: []wire.BufferSpan{span(32, 1), span(40, 16)}}}},
		"hostile_depth":     nest(wire.ArrayInfo{Format: "n"}, MaxDepth+2),
		"hostile_utf8":      {Format: "u", Length: 3, Offset: 1, NullCount: -1, Buffers: []wire.BufferSpan{span(32, 1), span(0, 20), span(24, 6)}},
		"hostile_overflow":  {Format: "+w:2", Length: 1 << 62, Buffers: []wire.BufferSpan{absent}, Children: []wire.ArrayInfo{{Format: "n", Length: 1 << 62}}},
		"hostile_bad_span":  {Format: "g", Length: 2, Buffers: []wire.BufferSpan{absent, span(1<<63, 1<<63)}},
		"hostile_raw_fmt":   {Format: "tsn:\x00", Length: 1, Buffers: []wire.BufferSpan{absent, span(40, 8)}},
		"hostile_struct_nn": {Format: "+s", Length: 4, Buffers: []wire.BufferSpan{span(32, 1)}, Children: []wire.ArrayInfo{{Format: "b", Length: 4, Buffers: []wire.BufferSpan{span(32, 1), span(40, 1)}, NullCount: 1}}},
	}
	for name, info := range hostile {
		seeds = append(seeds, fuzzSeed{name, data, encodeInfo(&info)})
	}
	seeds = append(seeds, fuzzSeed{"raw", []byte("raw bytes"), nil})
	return seeds
}

// TestFuzzCorpus keeps the committed seed corpus in step with fuzzSeeds:
// run with -update-corpus to rewrite it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	seeds := fuzzSeeds(t)
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s.data, s.info)
			if err := os.WriteFile(filepath.Join(dir, "seed_"+s.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range seeds {
		if _, err := os.Stat(filepath.Join(dir, "seed_"+s.name)); err != nil {
			t.Errorf("seed %s missing from %s (go test -run TestFuzzCorpus -update-corpus): %v", s.name, dir, err)
		}
	}
}

// FuzzRead checks that Read never panics on arbitrary data and ArrayInfo,
// that what it accepts can be used, and that Write stores it again so that
// it reads back the same.
func FuzzRead(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.data, s.info)
	}
	f.Fuzz(func(t *testing.T, data, spec []byte) {
		info := decodeInfo(spec)
		// Once as given (any alignment), once from an 8-aligned copy as a
		// shared-memory region would be.
		// (Go allocates 8-byte aligned blocks for sizes of 8 and up.)
		adata := append(make([]byte, 0, max(len(data), 8)), data...)
		for _, d := range [][]byte{data, adata} {
			arr, err := Read(d, info)
			if err != nil {
				if arr != nil {
					t.Fatalf("Read returned an array and error %v", err)
				}
				continue
			}
			touch(arr, 64)
			_, _ = TypeOf(info)

			out := make([]byte, Size(arr))
			info2, err := Write(out, arr)
			if err != nil {
				t.Fatalf("Write of an array Read accepted: %v\ninfo %+v", err, info)
			}
			arr2, err := Read(out, info2)
			if err != nil {
				t.Fatalf("Read of Write's output: %v\ninfo %+v\ninfo2 %+v", err, info, info2)
			}
			if !arrow.TypeEqual(arr.DataType(), arr2.DataType()) || arr.Len() != arr2.Len() || arr.NullN() != arr2.NullN() {
				t.Fatalf("rewrite changed the array: %s len %d nulls %d -> %s len %d nulls %d",
					arr.DataType(), arr.Len(), arr.NullN(), arr2.DataType(), arr2.Len(), arr2.NullN())
			}
			for i := range min(arr.Len(), 64) {
				if a, b := arr.ValueStr(i), arr2.ValueStr(i); a != b {
					t.Fatalf("rewrite changed element %d: %q -> %q", i, a, b)
				}
			}
			arr2.Release()
			arr.Release()
		}
	})
}
