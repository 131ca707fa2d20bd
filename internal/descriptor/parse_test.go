package descriptor

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *Dataflow {
	t.Helper()
	d, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return d
}

func TestLoad_SeedExample(t *testing.T) {
	d := mustLoad(t, "seed_example.yml")
	abs, _ := filepath.Abs("testdata")
	want := &Dataflow{
		File:   filepath.Join("testdata", "seed_example.yml"),
		Dir:    abs,
		Deploy: Deploy{Local: true},
		Nodes: []*Node{
			{
				ID: "rust-node", Line: 3,
				Path:    "../../target/debug/rust-dataflow-example-node",
				Build:   "cargo build -p rust-dataflow-example-node",
				Inputs:  []Input{{ID: "tick", Source: InputSource{Timer: 10 * time.Millisecond}, QueueSize: 10, Line: 8}},
				Outputs: []string{"random"},
				Deploy:  Deploy{Local: true},
			},
			{
				ID: "runtime-node", Line: 11,
				Operators: []*Operator{{
					ID: "rust-operator", Line: 13,
					Build:  "cargo build -p rust-dataflow-example-operator",
					Source: OperatorSource{Kind: SourceSharedLibrary, Path: "../../target/debug/rust_dataflow_example_operator"},
					Inputs: []Input{
						{ID: "random", Source: InputSource{Node: "rust-node", Output: "random"}, QueueSize: 10, Line: 18},
						{ID: "tick", Source: InputSource{Timer: 100 * time.Millisecond}, QueueSize: 10, Line: 17},
					},
					Outputs: []string{"status"},
				}},
				Deploy: Deploy{Local: true},
			},
			{
				ID: "rust-sink", Line: 21,
				Path:  "../../target/debug/rust-dataflow-example-sink",
				Build: "cargo build -p rust-dataflow-example-sink",
				Inputs: []Input{{ID: "message", Line: 26, QueueSize: 10,
					Source: InputSource{Node: "runtime-node", Operator: "rust-operator", Output: "status"}}},
				Deploy: Deploy{Local: true},
			},
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %s\nwant %s", dump(d), dump(want))
	}
}

// TestLoad_BothFormsAreEqual proves the seed form (custom:, env list, args
// string) and the current form (path:, env mapping, args list) describe
// the same Dataflow.
func TestLoad_BothFormsAreEqual(t *testing.T) {
	seed, current := mustLoad(t, "seed_form.yml"), mustLoad(t, "current_form.yml")
	seed.File, current.File = "", ""
	clearLines(seed)
	clearLines(current)
	if !reflect.DeepEqual(seed, current) {
		t.Fatalf("forms differ:\nseed    %s\ncurrent %s", dump(seed), dump(current))
	}

	cam := seed.Node("camera")
	if want := []string{"--device", "/dev/video 0", "--fps=30"}; !reflect.DeepEqual(cam.Args, want) {
		t.Errorf("args = %q, want %q", cam.Args, want)
	}
	wantEnv := map[string]string{"CAMERA_WIDTH": "640", "CAMERA_FLIP": "true", "CAMERA_GAIN": "1.50", "CAMERA_NAME": "front"}
	if !reflect.DeepEqual(cam.Env, wantEnv) {
		t.Errorf("env = %v, want %v", cam.Env, wantEnv)
	}
	if tick := cam.Inputs[0]; tick.Source.Timer != time.Second/30 || tick.QueueSize != 1 {
		t.Errorf("tick = %+v, want a 1/30 s timer with queue_size 1", tick)
	}
	filter := seed.Node("detection").Operator("filter")
	wantSandbox := &Sandbox{Mounts: []string{"models:/models:ro"}, MemoryLimit: 64 << 20, EventTimeout: 100 * time.Millisecond}
	if !reflect.DeepEqual(filter.Sandbox, wantSandbox) {
		t.Errorf("sandbox = %+v, want %+v", filter.Sandbox, wantSandbox)
	}
	plot := seed.Node("plot")
	if len(plot.Operators) != 1 || plot.Operators[0].ID != DefaultOperatorID {
		t.Fatalf("plot operators = %+v, want one named %q", plot.Operators, DefaultOperatorID)
	}
	var ids []string
	for _, in := range plot.Operators[0].Inputs {
		ids = append(ids, in.ID)
	}
	if want := []string{"bbox", "image", "tick"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("inputs are %q, want them sorted: %q", ids, want)
	}
}

func TestLoad_DeployDefaults(t *testing.T) {
	d := mustLoad(t, "distributed.yml")
	want := map[string]Deploy{
		"rust-node":    {Machine: "A", WorkingDir: "/home/dora/dataflows/multiple-daemons", Local: true},
		"runtime-node": {Machine: "B", WorkingDir: "/Users/runner/work/dora/dora/examples/multiple-daemons", Local: false},
		"rust-sink":    {Machine: "A", WorkingDir: "/home/dora/dataflows/multiple-daemons", Local: false},
	}
	for id, w := range want {
		if got := d.Node(id).Deploy; got != w {
			t.Errorf("%s: deploy = %+v, want %+v", id, got, w)
		}
	}
	if want := (Deploy{Machine: "A", WorkingDir: "/home/dora/dataflows/multiple-daemons", Local: true}); d.Deploy != want {
		t.Errorf("dataflow deploy = %+v, want %+v", d.Deploy, want)
	}
}

func TestLoad_AnchorsAndMergeKeys(t *testing.T) {
	d := mustLoad(t, "anchors.yml")
	if got, want := d.Node("sink").Env, map[string]string{"PYTHONUNBUFFERED": "1", "LEVEL": "debug"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sink env = %v, want %v", got, want)
	}
}

func TestParse_InMemoryFile(t *testing.T) {
	d, err := Parse("", []byte("nodes:\n  - id: a\n    path: /bin/true\n"))
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(".")
	if d.File != "dataflow.yml" || d.Dir != abs {
		t.Errorf("File, Dir = %q, %q; want dataflow.yml, %q", d.File, d.Dir, abs)
	}
}

func TestLoad_MissingFileIsNotAValidationError(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "no-such-file.yml"))
	var verr *ValidationError
	if err == nil || errors.As(err, &verr) {
		t.Fatalf("err = %v, want a plain read error", err)
	}
}

func TestParse_Values(t *testing.T) {
	tests := []struct {
		name, yaml string
		check      func(*Dataflow) any
		want       any
	}{
		{"timer millis", "inputs: {t: dora/timer/millis/250}", timerOf, 250 * time.Millisecond},
		{"timer secs", "inputs: {t: dora/timer/secs/2}", timerOf, 2 * time.Second},
		{"timer hz", "inputs: {t: dora/timer/hz/100}", timerOf, 10 * time.Millisecond},
		{"queue size default", "inputs: {t: dora/timer/secs/1}", queueOf, DefaultQueueSize},
		{"queue size hex", "inputs: {t: {source: dora/timer/secs/1, queue_size: 0x20}}", queueOf, 32},
		{"args string with quotes", `args: a 'b c' "d \"e\"" f\ g`, argsOf, []string{"a", "b c", `d "e"`, "f g"}},
		{"args list of scalars", "args: [--port, 8080, true]", argsOf, []string{"--port", "8080", "true"}},
		{"args empty string", `args: ""`, argsOf, []string(nil)},
		{"env null mapping", "env:", envOf, map[string]string(nil)},
		{"env quoted number", `env: {A: "007", B: 0x1F, C: ~no}`, envOf, map[string]string{"A": "007", "B": "0x1F", "C": "~no"}},
		{"outputs keep order", "outputs: [z, a, m]", outputsOf, []string{"z", "a", "m"}},
		{"no inputs or outputs", "name: quiet", outputsOf, []string(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "nodes:\n  - id: n\n    path: /bin/n\n    " + tt.yaml + "\n"
			d, err := Parse("dataflow.yml", []byte(src))
			if err != nil {
				t.Fatalf("Parse:\n%s\n%v", src, err)
			}
			if got := tt.check(d); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func timerOf(d *Dataflow) any   { return d.Nodes[0].Inputs[0].Source.Timer }
func queueOf(d *Dataflow) any   { return d.Nodes[0].Inputs[0].QueueSize }
func argsOf(d *Dataflow) any    { return d.Nodes[0].Args }
func envOf(d *Dataflow) any     { return d.Nodes[0].Env }
func outputsOf(d *Dataflow) any { return d.Nodes[0].Outputs }

func TestParse_MemoryLimit(t *testing.T) {
	tests := map[string]uint64{
		"1000000": 1000000, `"1000000"`: 1000000, "512KiB": 512 << 10, "64MiB": 64 << 20,
		"1GiB": 1 << 30, "2MB": 2e6, `"10 mib"`: 10 << 20, "4k": 4000,
	}
	for in, want := range tests {
		src := "nodes:\n  - id: n\n    operator:\n      wasm: op.wasm\n      sandbox: {memory_limit: " + in + "}\n"
		d, err := Parse("dataflow.yml", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := d.Nodes[0].Operators[0].Sandbox.MemoryLimit; got != want {
			t.Errorf("memory_limit %s = %d, want %d", in, got, want)
		}
	}
}

func TestSplitShell(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"  a   b\tc\n", []string{"a", "b", "c"}, ""},
		{`'it''s'`, []string{"its"}, ""},
		{`"a b"c'd e'`, []string{"a bcd e"}, ""},
		{`"" x`, []string{"", "x"}, ""},
		{`"\$HOME \q"`, []string{`$HOME \q`}, ""},
		{`$HOME *.txt ~ #x`, []string{"$HOME", "*.txt", "~", "#x"}, ""},
		{"a\\\nb", []string{"ab"}, ""},
		{`'open`, nil, "a single quote is not closed"},
		{`"open`, nil, "a double quote is not closed"},
		{`end\`, nil, "ends with a lone backslash"},
	}
	for _, tt := range tests {
		got, err := splitShell(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("splitShell(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitShell(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"inputs", "outputs", "working-directory", "path"}
	tests := map[string]string{
		"ouputs":            "outputs",
		"Inputs":            "inputs",
		"working_directory": "working-directory",
		"pth":               "path",
		"banana":            "",
		"x":                 "",
	}
	for in, want := range tests {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func clearLines(d *Dataflow) {
	for _, n := range d.Nodes {
		n.Line = 0
		clearInputLines(n.Inputs)
		for _, op := range n.Operators {
			op.Line = 0
			clearInputLines(op.Inputs)
		}
	}
}

func clearInputLines(ins []Input) {
	for i := range ins {
		ins[i].Line = 0
	}
}

func dump(d *Dataflow) string {
	b, _ := json.MarshalIndent(d, "", "  ")
	return string(b)
}

func TestEventTimeoutNone(t *testing.T) {
	df, err := Parse("dataflow.yml", []byte(`
nodes:
  - id: rt
    operators:
      - id: fast
        wasm: fast.wasm
        sandbox:
          event_timeout: none
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := df.Node("rt").Operator("fast").Sandbox.EventTimeout; got != NoEventTimeout {
		t.Fatalf("EventTimeout = %v, want NoEventTimeout", got)
	}
}
