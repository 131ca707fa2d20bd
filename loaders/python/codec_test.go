package python

import (
	"reflect"
	"testing"

	"github.com/dora-go/dora/abi/wire"
)

func TestMetaBlobRoundTrip(t *testing.T) {
	cases := map[string]wire.Metadata{
		"params and otel": {
			OpenTelemetryContext: "00-abc-01",
			Parameters: map[string]wire.Parameter{
				"b":  {Kind: wire.ParamBool, Bool: true},
				"i":  {Kind: wire.ParamInt, Int: -1 << 62},
				"f":  {Kind: wire.ParamFloat, Float: -0.25},
				"s":  {Kind: wire.ParamString, String: "é"},
				"il": {Kind: wire.ParamIntList, Ints: []int64{1, -2}},
				"fl": {Kind: wire.ParamFloatList, Floats: []float64{1e300}},
				"sl": {Kind: wire.ParamStringList, Strings: []string{"", "x"}},
			},
		},
		"nested type": {Type: &wire.ArrayInfo{
			Format: "+l", Length: 2, NullCount: 1, Offset: 1,
			Buffers:  []wire.BufferSpan{{Offset: 0, Len: 1}, {Offset: 8, Len: 12}},
			Children: []wire.ArrayInfo{{Format: "i", Length: 3, Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 24, Len: 12}}}},
		}},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			var got wire.Metadata
			if err := decodeMeta(encodeMeta(&md), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, md) {
				t.Errorf("got %+v\nwant %+v", got, md)
			}
		})
	}
	if b := encodeMeta(&wire.Metadata{Timestamp: 5}); b != nil {
		t.Errorf("empty metadata encodes to %v, want nil (None)", b)
	}
}

func TestMetaBlobRejectsGarbage(t *testing.T) {
	full := encodeMeta(&wire.Metadata{OpenTelemetryContext: "x", Parameters: map[string]wire.Parameter{"k": {Kind: wire.ParamString, String: "v"}}, Type: &wire.ArrayInfo{Format: "C", Length: 1}})
	for n := 0; n < len(full); n++ {
		var md wire.Metadata
		if err := decodeMeta(full[:n], &md); err == nil {
			t.Errorf("a blob cut at %d of %d bytes decoded", n, len(full))
		}
	}
	var md wire.Metadata
	if err := decodeMeta(append(full, 0), &md); err == nil {
		t.Error("trailing bytes were accepted")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(&wire.Metadata{OpenTelemetryContext: "t", Parameters: map[string]wire.Parameter{"a": {Kind: wire.ParamIntList, Ints: []int64{1}}}}))
	f.Add(encodeMeta(&wire.Metadata{Type: &wire.ArrayInfo{Format: "+s", Children: []wire.ArrayInfo{{Format: "l"}}}}))
	f.Add([]byte{1, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var md wire.Metadata
		if decodeMeta(b, &md) != nil {
			return
		}
		blob := encodeMeta(&md)
		if blob == nil {
			return // nothing to say: Python gets None
		}
		var again wire.Metadata
		if err := decodeMeta(blob, &again); err != nil {
			t.Fatalf("re-encoding a decoded blob: %v", err)
		}
	})
}
