package wasm

import (
	"errors"
	"reflect"
	"testing"
)

func sampleMetadata() []Metadata {
	return []Metadata{
		{},
		{Timestamp: 1<<63 + 5},
		{Timestamp: 7, OpenTelemetryContext: "traceparent=00-abc"},
		{Timestamp: 9, Parameters: map[string]Parameter{
			"b":  {Kind: ParamBool, Bool: true},
			"i":  {Kind: ParamInt, Int: -42},
			"f":  {Kind: ParamFloat, Float: 3.5},
			"s":  {Kind: ParamString, String: "héllo"},
			"il": {Kind: ParamIntList, Ints: []int64{1, -2, 3}},
			"fl": {Kind: ParamFloatList, Floats: []float64{0.25}},
			"sl": {Kind: ParamStringList, Strings: []string{"a", "", "c"}},
		}},
		{Type: &ArrayInfo{
			Format: "+l", Length: 2, NullCount: 1, Offset: 0,
			Buffers:  []BufferSpan{{Offset: 0, Len: 1}, {Offset: 8, Len: 12}},
			Children: []ArrayInfo{{Format: "g", Length: 3, Buffers: []BufferSpan{{Absent: true}, {Offset: 24, Len: 24}}}},
		}},
	}
}

func TestMetadataRoundTrips(t *testing.T) {
	for i, md := range sampleMetadata() {
		b := AppendMetadata(nil, &md)
		if len(b) != MetadataSize(&md) {
			t.Errorf("%d: encoded %d bytes, MetadataSize says %d", i, len(b), MetadataSize(&md))
		}
		if MetadataTimestamp(b) != md.Timestamp {
			t.Errorf("%d: MetadataTimestamp = %d, want %d", i, MetadataTimestamp(b), md.Timestamp)
		}
		got, err := DecodeMetadata(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !reflect.DeepEqual(got, md) {
			t.Errorf("%d: round trip\n got %+v\nwant %+v", i, got, md)
		}
	}
}

func TestMetadataTimestampOnlyIsMinSize(t *testing.T) {
	md := Metadata{Timestamp: 1}
	if n := len(AppendMetadata(nil, &md)); n != MinMetadataSize {
		t.Fatalf("size %d, want %d", n, MinMetadataSize)
	}
}

func TestAppendMetadataDoesNotAllocateWithRoom(t *testing.T) {
	md := Metadata{Timestamp: 1, Type: &ArrayInfo{Format: "C", Length: 3, Buffers: []BufferSpan{{Absent: true}, {Len: 3}}}}
	buf := make([]byte, 0, MetadataSize(&md))
	if n := testing.AllocsPerRun(100, func() { buf = AppendMetadata(buf[:0], &md) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestDecodeMetadataRejectsMalformedBlocks(t *testing.T) {
	good := AppendMetadata(nil, &Metadata{Timestamp: 3})
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0),
		"has_type 2": func() []byte {
			b := append([]byte{}, good...)
			b[len(b)-1] = 2
			return b
		}(),
		"huge count": {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0},
	} {
		if _, err := DecodeMetadata(b); !errors.Is(err, ErrBadMetadata) {
			t.Errorf("%s: err = %v, want ErrBadMetadata", name, err)
		}
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	for _, md := range sampleMetadata() {
		f.Add(AppendMetadata(nil, &md))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := DecodeMetadata(b)
		if err != nil {
			return
		}
		enc := AppendMetadata(nil, &md)
		if len(enc) != MetadataSize(&md) {
			t.Fatalf("MetadataSize %d, encoded %d", MetadataSize(&md), len(enc))
		}
		again, err := DecodeMetadata(enc)
		if err != nil {
			t.Fatalf("re-encoding a decoded block fails: %v", err)
		}
		// NaN floats are not DeepEqual to themselves; compare encodings
		// of both, which are equal up to map order, by size.
		if len(AppendMetadata(nil, &again)) != len(enc) || again.Timestamp != md.Timestamp || !reflect.DeepEqual(again.Type, md.Type) {
			t.Fatalf("re-encoding changes the metadata")
		}
	})
}
