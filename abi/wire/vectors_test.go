package wire_test

// Shared test vectors: frames encoded by this package, stored as
// abi/testdata/vectors/NAME.bin with NAME.json holding what they decode to.
// The Python client (apis/python/dora/_protocol.py) decodes the same files
// and re-encodes them byte for byte (apis/python/tests/test_vectors.py), so
// the two implementations cannot drift apart silently.
//
// Regenerate after a deliberate protocol change with
//
//	go test ./abi/wire -run TestVectors -update

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dora-go/dora/abi/wire"
)

var update = flag.Bool("update", false, "rewrite abi/testdata/vectors from the Go encoder")

const vectorDir = "../testdata/vectors"

type vector struct {
	name, doc string
	encode    func(e *wire.Encoder) []byte
}

// putMetadata is Encoder.PutMetadata with parameters in sorted key order.
// PutMetadata writes them in map order, which varies from run to run; each
// parameter's bytes here still come from PutMetadata (a one-parameter
// encoding, spliced), so the vectors pin Go's encoding deterministically.
func putMetadata(e *wire.Encoder, md *wire.Metadata) {
	if len(md.Parameters) <= 1 {
		e.PutMetadata(md)
		return
	}
	keys := make([]string, 0, len(md.Parameters))
	for k := range md.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.U64(md.Timestamp)
	e.LStr(md.OpenTelemetryContext)
	e.U16(uint16(len(keys)))
	const prefix = 8 + 4 + 2 // timestamp, empty otel, parameter count
	for _, k := range keys {
		var one wire.Encoder
		one.PutMetadata(&wire.Metadata{Parameters: map[string]wire.Parameter{k: md.Parameters[k]}})
		e.Raw(one.B[prefix : len(one.B)-1]) // minus the has_type byte
	}
	var tail wire.Encoder
	tail.PutMetadata(&wire.Metadata{Type: md.Type})
	e.Raw(tail.B[prefix:])
}

func metadataBytes(md *wire.Metadata) []byte {
	var e wire.Encoder
	putMetadata(&e, md)
	return e.B
}

func sendOutput(id string, md *wire.Metadata, d *wire.Data, nfds int) func(*wire.Encoder) []byte {
	return func(e *wire.Encoder) []byte {
		e.Begin(wire.KindSendOutput)
		e.Str(id)
		putMetadata(e, md)
		e.PutData(d)
		return e.End(nfds)
	}
}

var float32Array = &wire.ArrayInfo{Format: "f", Length: 3, Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 0, Len: 12}}}

// nestedType is a struct of a utf8 column with nulls and a fixed-size list
// of float64, sliced (offset 1): absent and present buffers, children,
// non-zero null counts and offsets.
var nestedType = &wire.ArrayInfo{
	Format: "+s", Length: 2, NullCount: 1, Offset: 1,
	Buffers: []wire.BufferSpan{{Offset: 0, Len: 1}},
	Children: []wire.ArrayInfo{
		{Format: "u", Length: 3, NullCount: 1, Buffers: []wire.BufferSpan{{Offset: 8, Len: 1}, {Offset: 16, Len: 16}, {Offset: 32, Len: 5}}},
		{Format: "+w:2", Length: 3, Buffers: []wire.BufferSpan{{Absent: true}},
			Children: []wire.ArrayInfo{{Format: "g", Length: 6, Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 40, Len: 48}}}}},
	},
}

func vectors() []vector {
	allParams := &wire.Metadata{
		Timestamp:            1_733_000_000_123_456_789,
		OpenTelemetryContext: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Parameters: map[string]wire.Parameter{
			"flag":    {Kind: wire.ParamBool, Bool: true},
			"frame":   {Kind: wire.ParamInt, Int: 42},
			"gain":    {Kind: wire.ParamFloat, Float: 0.75},
			"label":   {Kind: wire.ParamString, String: "caméra ✓"},
			"shape":   {Kind: wire.ParamIntList, Ints: []int64{480, 640, 3}},
			"weights": {Kind: wire.ParamFloatList, Floats: []float64{0.5, -1.25, 3}},
			"names":   {Kind: wire.ParamStringList, Strings: []string{"x", "", "ζ"}},
		},
		Type: float32Array,
	}
	floats := make([]byte, 12)
	for i, f := range []float32{1.5, -2, 0.25} {
		bits := math.Float32bits(f)
		floats[4*i], floats[4*i+1], floats[4*i+2], floats[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
	}
	return []vector{
		{"register", "REGISTER: the first frame a node sends", func(e *wire.Encoder) []byte {
			return e.PutRegister(wire.Register{Version: wire.Version, DataflowID: "0193d8c6-5f2e-7a4b-9c1d-2e3f4a5b6c7d", NodeID: "camera"})
		}},
		{"register_reply_ok", "REGISTER_REPLY: the dataflow started", func(e *wire.Encoder) []byte {
			return e.PutRegisterReply("")
		}},
		{"register_reply_error", "REGISTER_REPLY: the dataflow failed before starting", func(e *wire.Encoder) []byte {
			return e.PutRegisterReply(`node "plot" exited with status 1 before the dataflow started`)
		}},
		{"send_output_raw_8", "SEND_OUTPUT of 8 raw bytes inline, no parameters (what send_output(id, 8 bytes) writes)",
			sendOutput("random", &wire.Metadata{Timestamp: 1_733_000_000_000_000_000}, &wire.Data{Where: wire.DataInline, Inline: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, 0)},
		{"send_output_padding", "SEND_OUTPUT inline: the data starts at the next multiple of 8 from the frame start",
			sendOutput("img", &wire.Metadata{Timestamp: 7, OpenTelemetryContext: "ctx"}, &wire.Data{Where: wire.DataInline, Inline: []byte("hello")}, 0)},
		{"send_output_all_parameters", "SEND_OUTPUT with every parameter kind, a trace context and a float32 array",
			sendOutput("bbox", allParams, &wire.Data{Where: wire.DataInline, Inline: floats}, 0)},
		{"send_output_extremes", "SEND_OUTPUT: extreme integers and floats, empty strings, empty typed lists, no data",
			sendOutput("x", &wire.Metadata{
				Timestamp: math.MaxUint64,
				Parameters: map[string]wire.Parameter{
					"a_min":        {Kind: wire.ParamInt, Int: math.MinInt64},
					"b_max":        {Kind: wire.ParamInt, Int: math.MaxInt64},
					"c_big":        {Kind: wire.ParamFloat, Float: 1e300},
					"d_tiny":       {Kind: wire.ParamFloat, Float: 5e-324},
					"e_empty":      {Kind: wire.ParamString, String: ""},
					"f_no_ints":    {Kind: wire.ParamIntList, Ints: []int64{}},
					"g_no_floats":  {Kind: wire.ParamFloatList, Floats: []float64{}},
					"h_no_strings": {Kind: wire.ParamStringList, Strings: []string{}},
					"i_false":      {Kind: wire.ParamBool, Bool: false},
				},
			}, &wire.Data{Where: wire.DataNone}, 0)},
		{"send_output_shm_first", "SEND_OUTPUT in shared memory, first use of the region: its memfd travels with the frame (nfds 1)",
			sendOutput("image", &wire.Metadata{Timestamp: 99, Type: nestedType},
				&wire.Data{Where: wire.DataShm, FDAttached: true, Region: 1, RegionSize: 1 << 20, Len: 921600}, 1)},
		{"send_output_shm_reused", "SEND_OUTPUT in a region the daemon already has",
			sendOutput("image", &wire.Metadata{Timestamp: 100}, &wire.Data{Where: wire.DataShm, Region: 1, RegionSize: 1 << 20, Len: 921600}, 0)},
		{"close_outputs", "CLOSE_OUTPUTS", func(e *wire.Encoder) []byte {
			return e.PutStrings(wire.KindCloseOutputs, []string{"image", "bbox"})
		}},
		{"release", "RELEASE of three daemon region keys", func(e *wire.Encoder) []byte {
			return e.PutRegions(wire.KindRelease, []uint64{1, 2, math.MaxUint64})
		}},
		{"drop_regions_empty", "DROP_REGIONS with no region", func(e *wire.Encoder) []byte {
			return e.PutRegions(wire.KindDropRegions, nil)
		}},
		{"released", "RELEASED: the sender may write region 7 again", func(e *wire.Encoder) []byte {
			return e.PutRegions(wire.KindReleased, []uint64{7})
		}},
		{"stop_dataflow", "STOP_DATAFLOW with a UTF-8 reason", func(e *wire.Encoder) []byte {
			return e.PutMessage(wire.KindStopDataflow, "operator asked to stop: ✓ done")
		}},
		{"next_events", "NEXT_EVENTS asking for 256 events", func(e *wire.Encoder) []byte {
			return e.PutNextEvents(256)
		}},
		{"events_empty", "EVENTS holding no event", func(e *wire.Encoder) []byte {
			e.BeginEvents()
			return e.EndEvents(0, 0)
		}},
		{"events_mixed", "EVENTS with every event type; one shared-memory input carries its region's fd (nfds 1)", func(e *wire.Encoder) []byte {
			e.BeginEvents()
			e.PutInputEvent("tick", metadataBytes(&wire.Metadata{Timestamp: 5, Parameters: map[string]wire.Parameter{"n": {Kind: wire.ParamInt, Int: 3}}}),
				&wire.Data{Where: wire.DataInline, Inline: []byte("abc")})
			e.PutInputEvent("image", metadataBytes(&wire.Metadata{Timestamp: 6, Type: float32Array}),
				&wire.Data{Where: wire.DataShm, FDAttached: true, Region: 3, RegionSize: 65536, Len: 12})
			e.PutInputEvent("image", metadataBytes(&wire.Metadata{Timestamp: 7}),
				&wire.Data{Where: wire.DataShm, Region: 3, RegionSize: 65536, Len: 4096})
			e.PutInputEvent("empty", metadataBytes(&wire.Metadata{Timestamp: 8}), &wire.Data{Where: wire.DataNone})
			e.PutIDEvent(wire.EventInputClosed, "tick")
			e.PutErrorEvent("input \"image\": something went wrong")
			e.PutUnmapEvent(3)
			e.PutStopEvent()
			return e.EndEvents(8, 1)
		}},
	}
}

// TestVectors checks that the Go encoder still writes every stored vector
// byte for byte, and that the Go decoder reads each as its JSON says.
func TestVectors(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range vectors() {
		t.Run(v.name, func(t *testing.T) {
			var e wire.Encoder
			frame := append([]byte(nil), v.encode(&e)...)
			got, err := describe(frame)
			if err != nil {
				t.Fatalf("the Go decoder rejects the Go encoding: %v", err)
			}
			doc := map[string]any{"name": v.name, "doc": v.doc}
			for k, val := range got {
				doc[k] = val
			}
			want, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			bin, js := filepath.Join(vectorDir, v.name+".bin"), filepath.Join(vectorDir, v.name+".json")
			seen[v.name+".bin"], seen[v.name+".json"] = true, true
			if *update {
				if err := os.MkdirAll(vectorDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(bin, frame, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(js, want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			stored, err := os.ReadFile(bin)
			if err != nil {
				t.Fatalf("%v (run with -update to create the vectors)", err)
			}
			if !bytes.Equal(stored, frame) {
				t.Errorf("the Go encoder no longer writes %s:\n got  %x\n want %x", bin, frame, stored)
			}
			decoded, err := describe(stored)
			if err != nil {
				t.Fatalf("decoding %s: %v", bin, err)
			}
			for k, val := range decoded {
				doc[k] = val
			}
			fromFile, _ := json.MarshalIndent(doc, "", "  ")
			storedJSON, err := os.ReadFile(js)
			if err != nil {
				t.Fatal(err)
			}
			if string(storedJSON) != string(fromFile)+"\n" {
				t.Errorf("%s decodes to\n%s\nbut %s says\n%s", bin, fromFile, js, storedJSON)
			}
		})
	}
	if *update {
		return
	}
	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("%s is not produced by any vector: remove it or add its vector", filepath.Join(vectorDir, e.Name()))
		}
	}
}

// TestVectorsDecodeWithMapOrderMetadata checks that the splicing in
// putMetadata changes only the order of parameters: PutMetadata's own
// output decodes to the same values.
func TestVectorsDecodeWithMapOrderMetadata(t *testing.T) {
	var a, b wire.Encoder
	md := &wire.Metadata{Timestamp: 1, Parameters: map[string]wire.Parameter{
		"x": {Kind: wire.ParamInt, Int: 1}, "y": {Kind: wire.ParamStringList, Strings: []string{"a"}}, "z": {Kind: wire.ParamBool, Bool: true},
	}, Type: nestedType}
	a.PutMetadata(md)
	putMetadata(&b, md)
	if len(a.B) != len(b.B) {
		t.Fatalf("lengths differ: %d and %d", len(a.B), len(b.B))
	}
	var ma, mb wire.Metadata
	if err := wire.DecodeMetadata(a.B, &ma); err != nil {
		t.Fatal(err)
	}
	if err := wire.DecodeMetadata(b.B, &mb); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(metadataJSON(&ma))
	jb, _ := json.Marshal(metadataJSON(&mb))
	if string(ja) != string(jb) {
		t.Errorf("PutMetadata decodes to %s, the sorted splice to %s", ja, jb)
	}
}

// describe decodes a frame with the Go decoder into the JSON shape of the
// vectors: kind, nfds and message.
func describe(f []byte) (map[string]any, error) {
	if len(f) < wire.HeaderSize {
		return nil, fmt.Errorf("short frame")
	}
	kind := wire.Kind(f[4])
	d := wire.NewDecoder(f)
	var msg map[string]any
	var err error
	switch kind {
	case wire.KindRegister:
		var r wire.Register
		if r, err = d.Register(); err == nil {
			msg = map[string]any{"version": r.Version, "dataflow_id": r.DataflowID, "node_id": r.NodeID}
		}
	case wire.KindSendOutput:
		var so wire.SendOutput
		if err = d.SendOutput(&so); err == nil {
			var md wire.Metadata
			if err = wire.DecodeMetadata(so.Metadata, &md); err == nil {
				msg = map[string]any{"output_id": string(so.OutputID), "metadata": metadataJSON(&md), "data": dataJSON(&so.Data)}
			}
		}
	case wire.KindCloseOutputs:
		var ids []string
		if ids, err = d.Strings(); err == nil {
			msg = map[string]any{"output_ids": ids}
		}
	case wire.KindRelease, wire.KindDropRegions, wire.KindReleased:
		var rs []uint64
		if rs, err = d.Regions(nil); err == nil {
			msg = map[string]any{"regions": append([]uint64{}, rs...)}
		}
	case wire.KindStopDataflow:
		var s string
		if s, err = d.Message(); err == nil {
			msg = map[string]any{"reason": s}
		}
	case wire.KindNextEvents:
		var n uint32
		if n, err = d.NextEvents(); err == nil {
			msg = map[string]any{"max": n}
		}
	case wire.KindRegisterReply:
		ok, s := d.Bool(), d.LStr()
		if err = d.Done(); err == nil {
			msg = map[string]any{"ok": ok, "error": s}
		}
	case wire.KindEvents:
		n := d.EventCount()
		evs := []any{}
		for i := 0; i < n && err == nil; i++ {
			var ev wire.Event
			if err = d.Event(&ev); err != nil {
				break
			}
			evs = append(evs, eventJSON(&ev))
		}
		if err == nil {
			err = d.Done()
		}
		msg = map[string]any{"events": evs}
	default:
		err = fmt.Errorf("kind %s", kind)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"kind": kind.String(), "nfds": f[5], "frame_len": len(f), "message": msg}, nil
}

func eventJSON(ev *wire.Event) map[string]any {
	switch ev.Type {
	case wire.EventInput:
		var md wire.Metadata
		if err := wire.DecodeMetadata(ev.Metadata, &md); err != nil {
			return map[string]any{"error": err.Error()}
		}
		return map[string]any{"type": "INPUT", "id": string(ev.ID), "metadata": metadataJSON(&md), "data": dataJSON(&ev.Data)}
	case wire.EventInputClosed:
		return map[string]any{"type": "INPUT_CLOSED", "id": string(ev.ID)}
	case wire.EventStop:
		return map[string]any{"type": "STOP"}
	case wire.EventError:
		return map[string]any{"type": "ERROR", "message": string(ev.Message)}
	case wire.EventUnmap:
		return map[string]any{"type": "UNMAP", "region": ev.Region}
	}
	return map[string]any{"type": fmt.Sprint(ev.Type)}
}

var paramKinds = map[wire.ParamKind]string{
	wire.ParamBool: "bool", wire.ParamInt: "int", wire.ParamFloat: "float", wire.ParamString: "string",
	wire.ParamIntList: "int_list", wire.ParamFloatList: "float_list", wire.ParamStringList: "string_list",
}

// metadataJSON lists parameters sorted by key: the Go decoder keeps them in
// a map, and the vectors store them in that order on the wire.
func metadataJSON(md *wire.Metadata) map[string]any {
	keys := make([]string, 0, len(md.Parameters))
	for k := range md.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	params := []any{}
	for _, k := range keys {
		p := md.Parameters[k]
		var v any
		switch p.Kind {
		case wire.ParamBool:
			v = p.Bool
		case wire.ParamInt:
			v = p.Int
		case wire.ParamFloat:
			v = p.Float
		case wire.ParamString:
			v = p.String
		case wire.ParamIntList:
			v = append([]int64{}, p.Ints...)
		case wire.ParamFloatList:
			v = append([]float64{}, p.Floats...)
		case wire.ParamStringList:
			v = append([]string{}, p.Strings...)
		}
		params = append(params, map[string]any{"key": k, "kind": paramKinds[p.Kind], "value": v})
	}
	var typ any
	if md.Type != nil {
		typ = arrayJSON(md.Type)
	}
	return map[string]any{"timestamp": md.Timestamp, "open_telemetry_context": md.OpenTelemetryContext, "parameters": params, "type": typ}
}

func arrayJSON(a *wire.ArrayInfo) map[string]any {
	bufs := []any{}
	for _, b := range a.Buffers {
		if b.Absent {
			bufs = append(bufs, nil)
		} else {
			bufs = append(bufs, map[string]any{"offset": b.Offset, "len": b.Len})
		}
	}
	kids := []any{}
	for i := range a.Children {
		kids = append(kids, arrayJSON(&a.Children[i]))
	}
	return map[string]any{"format": a.Format, "length": a.Length, "null_count": a.NullCount, "offset": a.Offset, "buffers": bufs, "children": kids}
}

func dataJSON(d *wire.Data) map[string]any {
	switch d.Where {
	case wire.DataNone:
		return map[string]any{"where": "none"}
	case wire.DataInline:
		return map[string]any{"where": "inline", "hex": hex.EncodeToString(d.Inline)}
	case wire.DataShm:
		return map[string]any{"where": "shm", "fd_attached": d.FDAttached, "region": d.Region, "region_size": d.RegionSize, "len": d.Len}
	}
	return map[string]any{"where": strings.ToLower(fmt.Sprint(d.Where))}
}
