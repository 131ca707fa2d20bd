package arrowconv

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dora-go/dora/abi/wire"
)

// fieldsOf returns struct fields named the way Read names them (f0, f1, ...,
// all nullable), so a round trip gives back an identical type.
func fieldsOf(types ...arrow.DataType) []arrow.Field {
	fs := make([]arrow.Field, len(types))
	for i, t := range types {
		fs[i] = arrow.Field{Name: structFieldName(i), Type: t, Nullable: true}
	}
	return fs
}

type typeCase struct {
	name string
	dt   arrow.DataType
	json string // at least 10 elements, so slices cross bitmap bytes
}

func typeCases() []typeCase {
	ints := `[1, null, 3, 4, 5, null, 7, 8, 9, 10, 11, null]`
	floats := `[1.5, null, -3.25, 4, 5, null, 7, 8.5, 9, 10, 11, 0]`
	strs := `["a", null, "", "dora", "🦀", null, "g", "hh", "iii", "", "k", "l"]`
	b64 := `["AQI=", null, "", "AA==", "/w==", null, "Zm9v", "", "YQ==", "Yg==", "Yw==", "ZA=="]`
	pt := arrow.StructOf(fieldsOf(arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String)...)
	return []typeCase{
		{"null", arrow.Null, `[null, null, null, null, null, null, null, null, null, null, null]`},
		{"bool", arrow.FixedWidthTypes.Boolean, `[true, false, null, true, true, false, null, false, true, true, false, true]`},
		{"int8", arrow.PrimitiveTypes.Int8, ints},
		{"uint8", arrow.PrimitiveTypes.Uint8, ints},
		{"int16", arrow.PrimitiveTypes.Int16, ints},
		{"uint16", arrow.PrimitiveTypes.Uint16, ints},
		{"int32", arrow.PrimitiveTypes.Int32, ints},
		{"uint32", arrow.PrimitiveTypes.Uint32, ints},
		{"int64", arrow.PrimitiveTypes.Int64, ints},
		{"uint64", arrow.PrimitiveTypes.Uint64, ints},
		{"float16", arrow.FixedWidthTypes.Float16, floats},
		{"float32", arrow.PrimitiveTypes.Float32, floats},
		{"float64", arrow.PrimitiveTypes.Float64, floats},
		{"binary", arrow.BinaryTypes.Binary, b64},
		{"large_binary", arrow.BinaryTypes.LargeBinary, b64},
		{"utf8", arrow.BinaryTypes.String, strs},
		{"large_utf8", arrow.BinaryTypes.LargeString, strs},
		{"fixed_size_binary", &arrow.FixedSizeBinaryType{ByteWidth: 3}, `["AQID", null, "AAAA", "////", "Zm9v", null, "YmFy", "YmF6", "cXV4", "AQID", "AQID", "AQID"]`},
		{"date32", arrow.FixedWidthTypes.Date32, ints},
		{"date64", arrow.FixedWidthTypes.Date64, `[86400000, null, 0, 172800000, 86400000, null, 0, 0, 0, 0, 0, 86400000]`},
		{"time32s", arrow.FixedWidthTypes.Time32s, ints},
		{"time32ms", arrow.FixedWidthTypes.Time32ms, ints},
		{"time64us", arrow.FixedWidthTypes.Time64us, ints},
		{"time64ns", arrow.FixedWidthTypes.Time64ns, ints},
		{"timestamp_s_utc", &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, ints},
		{"timestamp_ms", &arrow.TimestampType{Unit: arrow.Millisecond}, ints},
		{"timestamp_us_tz", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}, ints},
		{"timestamp_ns_offset", &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "+02:00"}, ints},
		{"duration_s", arrow.FixedWidthTypes.Duration_s, ints},
		{"duration_ms", arrow.FixedWidthTypes.Duration_ms, ints},
		{"duration_us", arrow.FixedWidthTypes.Duration_us, ints},
		{"duration_ns", arrow.FixedWidthTypes.Duration_ns, ints},
		{"interval_months", arrow.FixedWidthTypes.MonthInterval, `[{"months": 1}, null, {"months": -2}, {"months": 0}, {"months": 5}, null, {"months": 7}, {"months": 8}, {"months": 9}, {"months": 10}, {"months": 11}]`},
		{"interval_day_time", arrow.FixedWidthTypes.DayTimeInterval, `[{"days": 1, "milliseconds": 2}, null, {"days": -1, "milliseconds": 0}, {"days": 0, "milliseconds": 0}, {"days": 3, "milliseconds": 4}, null, {"days": 5, "milliseconds": 6}, {"days": 7, "milliseconds": 8}, {"days": 9, "milliseconds": 10}, {"days": 11, "milliseconds": 12}, {"days": 13, "milliseconds": 14}]`},
		{"interval_month_day_nano", arrow.FixedWidthTypes.MonthDayNanoInterval, `[{"months": 1, "days": 2, "nanoseconds": 3}, null, {"months": 0, "days": 0, "nanoseconds": 0}, {"months": 4, "days": 5, "nanoseconds": 6}, {"months": 7, "days": 8, "nanoseconds": 9}, null, {"months": 1, "days": 1, "nanoseconds": 1}, {"months": 2, "days": 2, "nanoseconds": 2}, {"months": 3, "days": 3, "nanoseconds": 3}, {"months": 4, "days": 4, "nanoseconds": 4}, {"months": 5, "days": 5, "nanoseconds": 5}]`},
		{"decimal32", &arrow.Decimal32Type{Precision: 9, Scale: 2}, `["1.25", null, "-3.50", "0", "12345.67", null, "1", "2", "3", "4", "5"]`},
		{"decimal64", &arrow.Decimal64Type{Precision: 18, Scale: 3}, `["1.250", null, "-3.500", "0", "12345.678", null, "1", "2", "3", "4", "5"]`},
		{"decimal128", &arrow.Decimal128Type{Precision: 38, Scale: 10}, `["1.25", null, "-3.5", "0", "123456789012345678.0123456789", null, "1", "2", "3", "4", "5"]`},
		{"decimal128_negative_scale", &arrow.Decimal128Type{Precision: 10, Scale: -2}, `["100", null, "-300", "0", "1200", null, "100", "200", "300", "400", "500"]`},
		{"decimal256", &arrow.Decimal256Type{Precision: 76, Scale: 4}, `["1.25", null, "-3.5", "0", "1234567890123456789012345678901234567890.0001", null, "1", "2", "3", "4", "5"]`},
		{"list_int32", arrow.ListOf(arrow.PrimitiveTypes.Int32), `[[1, 2], null, [], [3, null, 5], [6], null, [7, 8, 9], [], [10], [11, 12], [13], [14]]`},
		{"large_list_utf8", arrow.LargeListOf(arrow.BinaryTypes.String), `[["a", "b"], null, [], ["c", null], ["d"], null, ["e"], [], ["f"], ["g", "h"], ["i"], ["j"]]`},
		{"fixed_size_list_float32", arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float32), `[[1, 2, 3], null, [4, null, 6], [7, 8, 9], [0, 0, 0], null, [1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [5, 5, 5]]`},
		{"struct", arrow.StructOf(fieldsOf(arrow.PrimitiveTypes.Int64, arrow.FixedWidthTypes.Boolean, arrow.BinaryTypes.String)...), `[{"f0": 1, "f1": true, "f2": "a"}, null, {"f0": null, "f1": false, "f2": null}, {"f0": 4, "f1": null, "f2": "d"}, {"f0": 5, "f1": true, "f2": ""}, null, {"f0": 7, "f1": true, "f2": "g"}, {"f0": 8, "f1": false, "f2": "h"}, {"f0": 9, "f1": true, "f2": "i"}, {"f0": 10, "f1": false, "f2": "j"}, {"f0": 11, "f1": true, "f2": "k"}]`},
		{"empty_struct_fields", arrow.StructOf(), `[{}, null, {}, {}, {}, {}, {}, {}, {}, {}, {}]`},
		{"list_struct", arrow.ListOf(pt), `[[{"f0": 1, "f1": "a"}, {"f0": 2, "f1": null}], null, [], [null, {"f0": 3, "f1": "c"}], [{"f0": 4, "f1": "d"}], null, [{"f0": 5, "f1": "e"}], [], [{"f0": 6, "f1": "f"}], [{"f0": 7, "f1": "g"}], [{"f0": 8, "f1": "h"}]]`},
		{"struct_list_struct", arrow.StructOf(fieldsOf(arrow.ListOf(pt), arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Uint8))...), `[{"f0": [{"f0": 1, "f1": "a"}], "f1": [1, 2]}, null, {"f0": null, "f1": null}, {"f0": [], "f1": [3, 4]}, {"f0": [null], "f1": [5, null]}, {"f0": [{"f0": 2, "f1": "b"}, {"f0": 3, "f1": "c"}], "f1": [6, 7]}, null, {"f0": [], "f1": [8, 9]}, {"f0": [], "f1": [10, 11]}, {"f0": [], "f1": [12, 13]}, {"f0": [], "f1": [14, 15]}]`},
		{"list_list_large_list", arrow.ListOf(arrow.ListOf(arrow.LargeListOf(arrow.PrimitiveTypes.Int16))), `[[[[1], [2, 3]], []], null, [], [null, [null, []]], [[[4]]], [[[5]]], [[[6]]], [[[7]]], [[[8]]], [[[9]]], [[[10]]]]`},
	}
}

func fromJSON(t testing.TB, mem memory.Allocator, dt arrow.DataType, js string) arrow.Array {
	t.Helper()
	arr, _, err := array.FromJSON(mem, dt, strings.NewReader(js))
	if err != nil {
		t.Fatalf("FromJSON(%s): %v", dt, err)
	}
	return arr
}

// roundTrip writes arr, checks the layout invariants, reads it back and
// checks it equals arr and shares memory with the written data.
func roundTrip(t *testing.T, arr arrow.Array) (arrow.Array, *wire.ArrayInfo, []byte) {
	t.Helper()
	size := Size(arr)
	// Fill with garbage to prove Write does not depend on dst being zeroed.
	data := make([]byte, size+16)
	for i := range data {
		data[i] = 0xA5
	}
	data = data[:size]
	info, err := Write(data, arr)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	checkLayout(t, info, size, 1)
	got, err := Read(data, info)
	if err != nil {
		t.Fatalf("Read: %v\ninfo: %+v", err, info)
	}
	t.Cleanup(got.Release)
	if !arrow.TypeEqual(got.DataType(), arr.DataType()) {
		t.Fatalf("type: got %s, want %s", got.DataType(), arr.DataType())
	}
	if !array.Equal(got, arr) {
		t.Fatalf("values differ:\ngot  %v\nwant %v", got, arr)
	}
	if got.NullN() != arr.NullN() || got.Len() != arr.Len() {
		t.Fatalf("len/nulls: got %d/%d, want %d/%d", got.Len(), got.NullN(), arr.Len(), arr.NullN())
	}
	checkShares(t, got.Data(), data)
	return got, info, data
}

// checkLayout checks Write's promises: offset 0, spans 8-aligned and inside
// size, a validity bitmap only when there are nulls.
func checkLayout(t *testing.T, info *wire.ArrayInfo, size, depth int) {
	t.Helper()
	if info.Offset != 0 {
		t.Errorf("depth %d: Offset %d, want 0", depth, info.Offset)
	}
	for i, s := range info.Buffers {
		if s.Absent {
			continue
		}
		if s.Offset%8 != 0 || s.Offset+s.Len > uint64(size) {
			t.Errorf("depth %d: Buffers[%d] = %+v, size %d", depth, i, s, size)
		}
	}
	if info.Format != "n" && len(info.Buffers) > 0 && info.Buffers[0].Absent != (info.NullCount == 0) {
		t.Errorf("depth %d: validity absent=%v with null count %d", depth, info.Buffers[0].Absent, info.NullCount)
	}
	for i := range info.Children {
		checkLayout(t, &info.Children[i], size, depth+1)
	}
}

// checkShares checks that every non-empty buffer of d (and its children)
// points into data.
func checkShares(t *testing.T, d arrow.ArrayData, data []byte) {
	t.Helper()
	for i, b := range d.Buffers() {
		if b == nil || b.Len() == 0 {
			continue
		}
		if !within(b.Bytes(), data) {
			t.Errorf("%s buffer %d does not point into the message data", d.DataType(), i)
		}
	}
	for _, c := range d.Children() {
		checkShares(t, c, data)
	}
}

// within reports whether b is a sub-slice of data, comparing element
// addresses rather than contents.
func within(b, data []byte) bool {
	for k := range data {
		if &data[k] == &b[0] {
			return len(b) <= len(data)-k
		}
	}
	return false
}

func TestRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tc := range typeCases() {
		t.Run(tc.name, func(t *testing.T) {
			arr := fromJSON(t, mem, tc.dt, tc.json)
			defer arr.Release()
			n := int64(arr.Len())
			slices := []struct {
				name   string
				lo, hi int64
			}{
				{"whole", 0, n},
				{"offset1", 1, n},
				{"offset3_len5", 3, 8},
				{"offset8", 8, n},
				{"offset9_len1", 9, 10},
				{"tail_empty", n, n},
				{"mid_empty", 5, 5},
			}
			for _, s := range slices {
				t.Run(s.name, func(t *testing.T) {
					sl := array.NewSlice(arr, s.lo, s.hi)
					defer sl.Release()
					roundTrip(t, sl)
				})
			}
			t.Run("empty", func(t *testing.T) {
				e := fromJSON(t, mem, tc.dt, `[]`)
				defer e.Release()
				roundTrip(t, e)
			})
			t.Run("format", func(t *testing.T) {
				f, err := Format(tc.dt)
				if err != nil {
					t.Fatal(err)
				}
				if dt, err := ParseFormat(f); err == nil {
					if !arrow.TypeEqual(dt, tc.dt) {
						t.Fatalf("ParseFormat(%q) = %s, want %s", f, dt, tc.dt)
					}
				} else if f[0] != '+' {
					t.Fatalf("ParseFormat(%q): %v", f, err)
				}
			})
		})
	}
}

// A slice's data is re-based: Write copies only the covered bytes.
func TestWriteSliceCopiesOnlyTheSlice(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	b := array.NewFloat64Builder(mem)
	defer b.Release()
	for i := range 1 << 16 {
		b.Append(float64(i))
	}
	arr := b.NewArray()
	defer arr.Release()
	sl := array.NewSlice(arr, 1000, 1003)
	defer sl.Release()
	if got := Size(sl); got != 24 {
		t.Fatalf("Size of a 3-element float64 slice = %d, want 24", got)
	}
	got, _, _ := roundTrip(t, sl)
	if v := got.(*array.Float64).Value(0); v != 1000 {
		t.Fatalf("first value %v, want 1000", v)
	}

	// Strings: offsets are rewritten to start at 0 and only the covered
	// characters are copied.
	s := fromJSON(t, mem, arrow.BinaryTypes.String, `["aaaaaaaa", "bb", "ccc", "dddddddd"]`)
	defer s.Release()
	ss := array.NewSlice(s, 1, 3)
	defer ss.Release()
	_, info, data := roundTrip(t, ss)
	if d := info.Buffers[2]; string(data[d.Offset:d.Offset+d.Len]) != "bbccc" {
		t.Fatalf("data buffer %q, want %q", data[d.Offset:d.Offset+d.Len], "bbccc")
	}
}

func TestSizeIsSumOfAlignedBuffers(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tests := []struct {
		dt   arrow.DataType
		json string
		want int
	}{
		{arrow.PrimitiveTypes.Uint8, `[1, 2, 3]`, 8},                   // values 3 -> 8
		{arrow.PrimitiveTypes.Uint8, `[1, null, 3]`, 16},               // bitmap 1 -> 8, values 3 -> 8
		{arrow.PrimitiveTypes.Float64, `[1, 2]`, 16},                   // values 16
		{arrow.BinaryTypes.String, `["abc", "de"]`, 16},                // offsets 12 -> 16, data 5 -> 8 ... below
		{arrow.Null, `[null, null]`, 0},                                // no buffers
		{arrow.StructOf(), `[{}, {}]`, 0},                              // no buffers
		{arrow.ListOf(arrow.PrimitiveTypes.Int8), `[[1], [2, 3]]`, 24}, // offsets 12 -> 16, child 3 -> 8
	}
	tests[3].want = 24
	for _, tc := range tests {
		arr := fromJSON(t, mem, tc.dt, tc.json)
		if got := Size(arr); got != tc.want {
			t.Errorf("Size(%s %s) = %d, want %d", tc.dt, tc.json, got, tc.want)
		}
		arr.Release()
	}
}

// Read shares memory with data: the values of a uint8 array are data itself.
func TestReadIsZeroCopy(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	raw := ReadRaw(data)
	defer raw.Release()
	if v := raw.(*array.Uint8).Uint8Values(); &v[0] != &data[0] || len(v) != len(data) {
		t.Fatal("ReadRaw copied the data")
	}
	viaNil, err := Read(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer viaNil.Release()
	if v := viaNil.(*array.Uint8).Uint8Values(); &v[0] != &data[0] || viaNil.NullN() != 0 {
		t.Fatal("Read(data, nil) is not raw bytes over data")
	}

	// Writing into data after Read is visible through the array.
	info := &wire.ArrayInfo{Format: "C", Length: 9, Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 0, Len: 9}}}
	arr, err := Read(data, info)
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Release()
	data[4] = 42
	if got := arr.(*array.Uint8).Value(4); got != 42 {
		t.Fatalf("array does not alias data: value %d after writing 42", got)
	}
	// Capacity is capped: appending to a buffer cannot overwrite the next.
	if b := arr.Data().Buffers()[1].Bytes(); cap(b) != len(b) {
		t.Fatalf("buffer capacity %d > length %d", cap(b), len(b))
	}
}

func TestReadAllocationsDoNotScale(t *testing.T) {
	for _, n := range []int{4 << 10, 4 << 20} {
		data := make([]byte, n)
		info := &wire.ArrayInfo{Format: "C", Length: int64(n), Buffers: []wire.BufferSpan{{Absent: true}, {Len: uint64(n)}}}
		allocs := testing.AllocsPerRun(20, func() {
			arr, err := Read(data, info)
			if err != nil {
				t.Fatal(err)
			}
			arr.Release()
		})
		if allocs > 16 {
			t.Errorf("Read of %d bytes: %.0f allocations", n, allocs)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const calls = 100
		for range calls {
			arr, _ := Read(data, info)
			arr.Release()
		}
		runtime.ReadMemStats(&after)
		bytes := (after.TotalAlloc - before.TotalAlloc) / calls
		if bytes > 2048 {
			t.Errorf("Read of %d bytes allocates %d bytes per call", n, bytes)
		}
	}
}

// Struct field names and nullability are not carried: Read renames fields.
func TestStructFieldNamesAreNotCarried(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := arrow.StructOf(
		arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float32},
		arrow.Field{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	arr := fromJSON(t, mem, dt, `[{"x": 1, "label": "a"}, {"x": 2, "label": null}]`)
	defer arr.Release()
	data := make([]byte, Size(arr))
	info, err := Write(data, arr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(data, info)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	want := "struct<f0: float32 nullable, f1: utf8 nullable>"
	if s := got.DataType().String(); s != want {
		t.Fatalf("type %s, want %s", s, want)
	}
	for i := range 2 {
		if !array.Equal(got.(*array.Struct).Field(i), arr.(*array.Struct).Field(i)) {
			t.Fatalf("field %d differs", i)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	if _, err := Write(nil, nil); err == nil {
		t.Error("Write(nil array) succeeded")
	}
	if Size(nil) != 0 {
		t.Error("Size(nil) != 0")
	}

	arr := fromJSON(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
	defer arr.Release()
	if _, err := Write(make([]byte, Size(arr)-1), arr); err == nil || !strings.Contains(err.Error(), "needs 24") {
		t.Errorf("short destination: %v", err)
	}

	// Unsupported types name the type.
	dict := fromJSON(t, mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}, `["a", "b", "a"]`)
	defer dict.Release()
	if Size(dict) != 0 {
		t.Error("Size(dictionary) != 0")
	}
	_, err := Write(make([]byte, 64), dict)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("dictionary: %v", err)
	}

	m := fromJSON(t, mem, arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), `[[{"key": "a", "value": 1}]]`)
	defer m.Release()
	if _, err := Write(make([]byte, 64), m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "map") {
		t.Errorf("map: %v", err)
	}

	// A list nested deeper than MaxDepth cannot be written (Read would refuse it).
	var dt arrow.DataType = arrow.PrimitiveTypes.Int8
	for range MaxDepth {
		dt = arrow.ListOf(dt)
	}
	deep := fromJSON(t, mem, dt, `[]`)
	defer deep.Release()
	if _, err := Write(make([]byte, 1024), deep); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Errorf("depth %d: %v", MaxDepth+1, err)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		dt   arrow.DataType
		want string
	}{
		{arrow.Null, "n"},
		{arrow.PrimitiveTypes.Uint64, "L"},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, "tsn:"},
		{&arrow.TimestampType{Unit: arrow.Second, TimeZone: "America/New_York"}, "tss:America/New_York"},
		{arrow.FixedWidthTypes.Duration_us, "tDu"},
		{&arrow.Decimal128Type{Precision: 10, Scale: 2}, "d:10,2"},
		{&arrow.Decimal256Type{Precision: 40, Scale: -3}, "d:40,-3,256"},
		{&arrow.Decimal32Type{Precision: 5, Scale: 1}, "d:5,1,32"},
		{&arrow.FixedSizeBinaryType{ByteWidth: 16}, "w:16"},
		{arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Int8), "+w:4"},
		{arrow.ListOf(arrow.Null), "+l"},
		{arrow.LargeListOf(arrow.Null), "+L"},
		{arrow.StructOf(), "+s"},
	}
	for _, tc := range tests {
		got, err := Format(tc.dt)
		if err != nil || got != tc.want {
			t.Errorf("Format(%s) = %q, %v; want %q", tc.dt, got, err, tc.want)
		}
	}
	bad := []arrow.DataType{
		nil,
		arrow.BinaryTypes.StringView,
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String},
		arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int8),
		arrow.SparseUnionOf(nil, nil),
		&arrow.Decimal128Type{Precision: 39, Scale: 0},
		&arrow.Decimal32Type{Precision: 5, Scale: 10},
		&arrow.Time32Type{Unit: arrow.Nanosecond},
		&arrow.TimestampType{Unit: arrow.Second, TimeZone: strings.Repeat("x", MaxFormatLen)},
	}
	for _, dt := range bad {
		if f, err := Format(dt); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Format(%v) = %q, %v; want ErrUnsupported", dt, f, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	good := map[string]arrow.DataType{
		"b":         arrow.FixedWidthTypes.Boolean,
		"e":         arrow.FixedWidthTypes.Float16,
		"tss:":      &arrow.TimestampType{Unit: arrow.Second},
		"tsu:UTC":   &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		"d:38,10":   &arrow.Decimal128Type{Precision: 38, Scale: 10},
		"d:9,-9,32": &arrow.Decimal32Type{Precision: 9, Scale: -9},
		"d:18,2,64": &arrow.Decimal64Type{Precision: 18, Scale: 2},
		"w:1":       &arrow.FixedSizeBinaryType{ByteWidth: 1},
		"tin":       arrow.FixedWidthTypes.MonthDayNanoInterval,
	}
	for f, want := range good {
		got, err := ParseFormat(f)
		if err != nil || !arrow.TypeEqual(got, want) {
			t.Errorf("ParseFormat(%q) = %v, %v; want %s", f, got, err, want)
		}
	}
	tests := []struct {
		format string
		is     error  // nil: only an error is expected
		says   string // substring of the message
	}{
		{"", ErrInvalid, "empty"},
		{"x", ErrUnsupported, `"x"`},
		{"vu", ErrUnsupported, "string_view"},
		{"+m", ErrUnsupported, "map"},
		{"+ud:0,1", ErrUnsupported, "union"},
		{"+r", ErrUnsupported, "run_end_encoded"},
		{"w:0", ErrInvalid, "width"},
		{"w:-1", ErrInvalid, "width"},
		{"w:+1", ErrInvalid, "width"},
		{"w:99999999999", ErrInvalid, "width"},
		{"+w:0", ErrInvalid, "list size"},
		{"d:39,0", ErrInvalid, "precision"},
		{"d:0,0", ErrInvalid, "precision"},
		{"d:10,39", ErrInvalid, "scale"},
		{"d:10,2,48", ErrInvalid, "bit width"},
		{"d:10", ErrInvalid, "d:precision"},
		{"d:a,b", ErrInvalid, "precision"},
		{"tsx:", ErrUnsupported, "tsx"},
		{"tss", ErrUnsupported, "tss"},
		{"+l", nil, "TypeOf"},
		{"+s", nil, "TypeOf"},
		{"+w:3", nil, "TypeOf"},
		{strings.Repeat("x", MaxFormatLen+1), ErrInvalid, "limit"},
	}
	for _, tc := range tests {
		dt, err := ParseFormat(tc.format)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseFormat(%.20q) = %v, %v; want error %v mentioning %q", tc.format, dt, err, tc.is, tc.says)
		}
	}
}

func TestTypeOf(t *testing.T) {
	info := &wire.ArrayInfo{Format: "+l", Children: []wire.ArrayInfo{{Format: "+s", Children: []wire.ArrayInfo{{Format: "g"}, {Format: "+w:2", Children: []wire.ArrayInfo{{Format: "u"}}}}}}}
	dt, err := TypeOf(info)
	if err != nil {
		t.Fatal(err)
	}
	if want := "list<item: struct<f0: float64 nullable, f1: fixed_size_list<item: utf8, nullable>[2] nullable>, nullable>"; dt.String() != want {
		t.Fatalf("TypeOf = %s, want %s", dt, want)
	}
	if dt, _ := TypeOf(nil); dt.ID() != arrow.UINT8 {
		t.Fatalf("TypeOf(nil) = %s", dt)
	}
	_, err = TypeOf(&wire.ArrayInfo{Format: "+s", Children: []wire.ArrayInfo{{Format: "i"}, {Format: "+l"}}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ArrayInfo.Children[1]") {
		t.Fatalf("list without child: %v", err)
	}
}

// ExampleWrite shows the sender and receiver sides.
func ExampleWrite() {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{0.5, 1.5, 2.5}, nil)
	arr := b.NewArray()
	defer arr.Release()

	shm := make([]byte, Size(arr)) // in dora: a shared-memory region
	info, err := Write(shm, arr)
	if err != nil {
		panic(err)
	}
	got, err := Read(shm, info) // in the receiving process
	if err != nil {
		panic(err)
	}
	defer got.Release()
	fmt.Println(info.Format, info.Length, got)
	// Output: g 3 [0.5 1.5 2.5]
}

// Write checks the arrays it is given rather than trusting their buffers:
// arrow-go lets some inconsistent arrays be built.
func TestWriteRejectsInconsistentArrays(t *testing.T) {
	short := memory.NewBufferBytes([]byte{0xFF})
	boolData := array.NewData(arrow.FixedWidthTypes.Boolean, 16, []*memory.Buffer{nil, short}, nil, 0, 0)
	defer boolData.Release()
	b := array.MakeFromData(boolData)
	defer b.Release()

	child := array.NewData(arrow.Null, 2, []*memory.Buffer{nil}, nil, 2, 0)
	defer child.Release()
	structData := array.NewData(arrow.StructOf(fieldsOf(arrow.Null)...), 4, []*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0)
	defer structData.Release()
	s := array.MakeFromData(structData)
	defer s.Release()

	for _, tc := range []struct {
		arr  arrow.Array
		says string
	}{
		{b, "value bitmap buffer has 1 bytes"},
		{s, "child 0 has 2 elements, parent needs 4"},
	} {
		if n := Size(tc.arr); n != 0 {
			t.Errorf("Size(%s) = %d, want 0", tc.arr.DataType(), n)
		}
		if _, err := Write(make([]byte, 64), tc.arr); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Write(%s): %v, want error mentioning %q", tc.arr.DataType(), err, tc.says)
		}
	}
}

// Many receivers read the same shared-memory message at once.
func TestHammer_ReadSharedData(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tc := typeCases()
	var arrs []arrow.Array
	for _, c := range tc {
		arrs = append(arrs, fromJSON(t, mem, c.dt, c.json))
	}
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	type msg struct {
		data []byte
		info *wire.ArrayInfo
	}
	msgs := make([]msg, len(arrs))
	for i, a := range arrs {
		data := make([]byte, Size(a))
		info, err := Write(data, a)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = msg{data, info}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 * len(msgs) {
				m := msgs[(i+g)%len(msgs)]
				arr, err := Read(m.data, m.info)
				if err != nil {
					t.Error(err)
					return
				}
				touch(arr, 64)
				if !array.Equal(arr, arrs[(i+g)%len(msgs)]) {
					t.Errorf("%s differs", arr.DataType())
				}
				arr.Release()
			}
		})
	}
	wg.Wait()
}
