package python

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send sends one event and returns the outputs, failing on an error.
func send(t *testing.T, op runtime.Operator, ev *runtime.Event) (runtime.Status, []runtime.Output) {
	t.Helper()
	var rec runtimetest.Recorder
	st, err := op.OnEvent(ctxT(t), ev, &rec)
	if err != nil {
		t.Fatalf("OnEvent(%s %q): %v", ev.Type, ev.ID, err)
	}
	return st, rec.Take()
}

func input(id string, data []byte, md wire.Metadata) *runtime.Event {
	return &runtime.Event{Type: runtime.EventInput, ID: id, Data: data, Metadata: md}
}

func describe(t *testing.T, op runtime.Operator, ev *runtime.Event) map[string]any {
	t.Helper()
	_, outs := send(t, op, ev)
	if len(outs) != 1 {
		t.Fatalf("got %d outputs, want 1", len(outs))
	}
	var m map[string]any
	if err := json.Unmarshal(outs[0].Data, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", outs[0].Data, err)
	}
	return m
}

func needPyarrow(t *testing.T, op runtime.Operator) {
	t.Helper()
	m := describe(t, op, input("describe", []byte{1}, wire.Metadata{}))
	if m["has_value"] != true {
		t.Skip("pyarrow is not installed in this python (pip install pyarrow numpy)")
	}
}

func TestEventFieldsReachPython(t *testing.T) {
	op := load(t, specFor(t, "probe", "probe.py"))
	md := wire.Metadata{
		Timestamp:            12345,
		OpenTelemetryContext: "00-trace-01",
		Parameters: map[string]wire.Parameter{
			"b":  {Kind: wire.ParamBool, Bool: true},
			"i":  {Kind: wire.ParamInt, Int: -3},
			"f":  {Kind: wire.ParamFloat, Float: 2.5},
			"s":  {Kind: wire.ParamString, String: "hé"},
			"il": {Kind: wire.ParamIntList, Ints: []int64{1, 2}},
			"fl": {Kind: wire.ParamFloatList, Floats: []float64{0.5}},
			"sl": {Kind: wire.ParamStringList, Strings: []string{"x", "y"}},
		},
	}
	got := describe(t, op, input("describe", []byte{1, 2, 255}, md))
	wantMD := map[string]any{
		"b": true, "i": -3.0, "f": 2.5, "s": "hé", "il": []any{1.0, 2.0}, "fl": []any{0.5}, "sl": []any{"x", "y"},
		"open_telemetry_context": "00-trace-01",
	}
	if got["type"] != "INPUT" || got["id"] != "describe" || !reflect.DeepEqual(got["data"], []any{1.0, 2.0, 255.0}) {
		t.Errorf("event = %v", got)
	}
	if !reflect.DeepEqual(got["metadata"], wantMD) {
		t.Errorf("metadata = %v, want %v", got["metadata"], wantMD)
	}
	if got["has_value"] == true {
		if got["value_type"] != "uint8" || !reflect.DeepEqual(got["value"], []any{1.0, 2.0, 255.0}) {
			t.Errorf("raw bytes value = %v %v, want a uint8 array", got["value_type"], got["value"])
		}
	}
	// Empty data, no metadata: the metadata dict is empty, not missing.
	got = describe(t, op, input("describe", nil, wire.Metadata{}))
	if !reflect.DeepEqual(got["data"], []any{}) || !reflect.DeepEqual(got["metadata"], map[string]any{}) {
		t.Errorf("empty event = %v", got)
	}
	for _, ev := range []*runtime.Event{
		{Type: runtime.EventInputClosed, ID: "camera"},
		{Type: runtime.EventStop},
		{Type: runtime.EventError, Error: "upstream trouble"},
	} {
		_, outs := send(t, op, ev)
		var m map[string]any
		_ = json.Unmarshal(outs[0].Data, &m)
		want := map[string]any{"type": ev.Type.String(), "id": nil, "error": nil}
		switch ev.Type {
		case runtime.EventInputClosed:
			want["id"] = "camera"
		case runtime.EventError:
			want["error"] = "upstream trouble"
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s event = %v, want %v", ev.Type, m, want)
		}
	}
}

func int64Layout(vals ...int64) ([]byte, *wire.ArrayInfo) {
	data := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(v))
	}
	return data, &wire.ArrayInfo{Format: "l", Length: int64(len(vals)), Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 0, Len: uint64(len(data))}}}
}

func TestArraysRoundTrip(t *testing.T) {
	op := load(t, specFor(t, "probe", "probe.py"))
	needPyarrow(t, op)

	// Go -> Python: a typed input reads as that array.
	data, info := int64Layout(5, -6, 7)
	got := describe(t, op, input("describe", data, wire.Metadata{Type: info}))
	if got["value_type"] != "int64" || !reflect.DeepEqual(got["value"], []any{5.0, -6.0, 7.0}) {
		t.Errorf("int64 input read as %v %v", got["value_type"], got["value"])
	}

	// Python -> Go: send_output of arrays, numpy, lists, bytes.
	_, outs := send(t, op, input("send_arrays", nil, wire.Metadata{}))
	byID := map[string]runtime.Output{}
	for _, o := range outs {
		byID[o.ID] = o
	}
	i64 := byID["int64"]
	wantData, wantInfo := int64Layout(1, 2, 3)
	if !bytes.Equal(i64.Data, wantData) || !reflect.DeepEqual(i64.Metadata.Type, wantInfo) {
		t.Errorf("int64 output: data %v type %+v, want %v %+v", i64.Data, i64.Metadata.Type, wantData, wantInfo)
	}
	wantParams := map[string]wire.Parameter{
		"flag":   {Kind: wire.ParamBool, Bool: true},
		"n":      {Kind: wire.ParamInt, Int: 7},
		"x":      {Kind: wire.ParamFloat, Float: 0.5},
		"s":      {Kind: wire.ParamString, String: "text"},
		"ints":   {Kind: wire.ParamIntList, Ints: []int64{1, 2}},
		"floats": {Kind: wire.ParamFloatList, Floats: []float64{1.5}},
		"strs":   {Kind: wire.ParamStringList, Strings: []string{"a", "b"}},
	}
	if !reflect.DeepEqual(i64.Metadata.Parameters, wantParams) || i64.Metadata.OpenTelemetryContext != "trace-1" {
		t.Errorf("metadata = %+v, want %+v and trace-1", i64.Metadata, wantParams)
	}
	if np := byID["numpy"].Metadata.Type; np == nil || np.Format != "f" || np.Length != 6 || len(byID["numpy"].Data) != 24 {
		t.Errorf("numpy output type %+v, %d bytes", np, len(byID["numpy"].Data))
	}
	if l := byID["list"].Metadata.Type; l == nil || l.Format != "l" || l.Length != 2 {
		t.Errorf("list output type %+v", l)
	}
	if raw := byID["bytes"]; raw.Metadata.Type != nil || string(raw.Data) != "raw" {
		t.Errorf("bytes output %+v", raw)
	}
	s := byID["strings"].Metadata.Type
	if s == nil || s.Format != "u" || s.Length != 3 || s.NullCount != 1 || len(s.Buffers) != 3 {
		t.Fatalf("strings output type %+v", s)
	}
	for _, b := range s.Buffers {
		if b.Absent || b.Offset%8 != 0 || b.Offset+b.Len > uint64(len(byID["strings"].Data)) {
			t.Errorf("strings buffer %+v is absent, unaligned or out of the data", b)
		}
	}

	// Each output fed back as an input reads as the same array and goes
	// out again with the same layout.
	want := map[string]any{
		"int64": []any{1.0, 2.0, 3.0}, "numpy": []any{0.0, 1.0, 2.0, 3.0, 4.0, 5.0}, "list": []any{10.0, 20.0},
		"strings": []any{"a", nil, "ccc"}, "nested": []any{[]any{1.0, 2.0}, nil, []any{3.0}},
		"bools": []any{true, nil, false}, "bytes": []any{114.0, 97.0, 119.0},
	}
	for id, w := range want {
		o := byID[id]
		got := describe(t, op, input("describe", o.Data, o.Metadata))
		if !reflect.DeepEqual(got["value"], w) {
			t.Errorf("%s read back as %v (%v), want %v", id, got["value"], got["value_type"], w)
		}
		_, again := send(t, op, input("echo_value", o.Data, o.Metadata))
		if len(again) != 1 || !reflect.DeepEqual(again[0].Metadata.Type, o.Metadata.Type) {
			t.Errorf("%s sent again with layout %+v, want %+v", id, again[0].Metadata.Type, o.Metadata.Type)
		}
	}
}

func TestKeptValueSurvivesBufferReuse(t *testing.T) {
	op := load(t, specFor(t, "probe", "probe.py"))
	needPyarrow(t, op)
	buf := []byte{1, 2, 3, 4}
	send(t, op, input("keep", buf, wire.Metadata{}))
	copy(buf, []byte{9, 9, 9, 9}) // the runtime hands its buffer back
	_, outs := send(t, op, input("check_kept", nil, wire.Metadata{}))
	if string(outs[0].Data) != "[1, 2, 3, 4]" {
		t.Errorf("kept value = %s, want [1, 2, 3, 4]", outs[0].Data)
	}
}

func TestPythonExceptionCarriesTraceback(t *testing.T) {
	op := load(t, specFor(t, "probe", "probe.py"))
	var rec runtimetest.Recorder
	st, err := op.OnEvent(ctxT(t), input("raise", nil, wire.Metadata{}), &rec)
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) || oe.Phase != runtime.PhaseEvent || !errors.Is(err, runtime.ErrPythonException) {
		t.Fatalf("OnEvent = %v, want an on_event *OperatorError wrapping ErrPythonException", err)
	}
	if st != runtime.StatusContinue {
		t.Errorf("status %v after an exception, want CONTINUE", st)
	}
	msg := err.Error()
	for _, want := range []string{`node "runtime-node"`, `operator "probe"`, "Traceback (most recent call last)", "probe.py", "in _fail", "ValueError: deliberate failure"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "_host.py") {
		t.Errorf("traceback shows the loader's own frames:\n%s", msg)
	}
	if _, outs := send(t, op, input("count", nil, wire.Metadata{})); string(outs[0].Data) != "2" {
		t.Errorf("operator state after the exception: count = %s, want 2", outs[0].Data)
	}
}

func TestReturnValues(t *testing.T) {
	var logs syncbuf.Buffer
	spec := specFor(t, "probe", "probe.py")
	spec.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	op := load(t, spec)
	var rec runtimetest.Recorder
	_, err := op.OnEvent(ctxT(t), input("return_str", nil, wire.Metadata{}), &rec)
	if err == nil || !strings.Contains(err.Error(), "returned 'ok' (str); expected a dora.DoraStatus") || !errors.Is(err, runtime.ErrPythonException) {
		t.Errorf("returning a str: %v", err)
	}
	for i := 0; i < 3; i++ {
		if st, _ := send(t, op, input("return_none", nil, wire.Metadata{})); st != runtime.StatusContinue {
			t.Errorf("returning None gave %v, want CONTINUE", st)
		}
	}
	if n := strings.Count(logs.String(), "returned None"); n != 1 {
		t.Errorf("warned %d times about None, want once:\n%s", n, logs.String())
	}
}

func TestLoadErrors(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	cases := []struct {
		name, body string
		phase      runtime.Phase
		sentinel   error
		want       []string
	}{
		{"syntax.py", "class Operator(:\n", runtime.PhaseLoad, runtime.ErrPythonException, []string{"SyntaxError", "syntax.py"}},
		{"garbage.py", "\x7fELF\x00\x01\x02\xff\xfe", runtime.PhaseLoad, runtime.ErrPythonException, []string{"garbage.py"}},
		{"missing_import.py", "import no_such_module_for_dora_tests\n", runtime.PhaseLoad, runtime.ErrPythonException, []string{"No module named 'no_such_module_for_dora_tests'"}},
		{"no_class.py", "def on_event(e, s):\n    pass\n", runtime.PhaseLoad, runtime.ErrMissingSymbol, []string{"defines no `Operator`"}},
		{"no_method.py", "class Operator:\n    pass\n", runtime.PhaseLoad, runtime.ErrMissingSymbol, []string{"has no method on_event"}},
		{"bad_init.py", "class Operator:\n    def __init__(self):\n        raise KeyError('cfg')\n    def on_event(self, e, s):\n        pass\n", runtime.PhaseInit, runtime.ErrPythonException, []string{"KeyError: 'cfg'", "Traceback"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := runtimetest.WriteFile(t, dir, c.name, []byte(c.body))
			spec := runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "op"}, Path: p}
			_, err := New().Load(ctxT(t), spec)
			var oe *runtime.OperatorError
			if !errors.As(err, &oe) || oe.Phase != c.phase || !errors.Is(err, c.sentinel) {
				t.Fatalf("Load = %v, want phase %s wrapping %v", err, c.phase, c.sentinel)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPrintGoesToSpecWriters(t *testing.T) {
	for _, file := range []string{"probe.py", "probe_any_thread.py"} {
		t.Run(file, func(t *testing.T) {
			var stdout, stderr syncbuf.Buffer
			spec := specFor(t, "probe", file)
			spec.Stdout, spec.Stderr = &stdout, &stderr
			op := load(t, spec)
			send(t, op, input("print", []byte("héllo from python"), wire.Metadata{}))
			if stdout.String() != "héllo from python\n" || stderr.String() != "to stderr\n" {
				t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

// TestGoOperatorRunsWhilePythonWorks: a Go operator keeps taking events
// while a Python operator sleeps (GIL released) or spins (GIL held), and a
// second Python operator keeps taking events while the first sleeps.
func TestGoOperatorRunsWhilePythonWorks(t *testing.T) {
	sleeper := load(t, specFor(t, "sleeper", "sleeper.py"))
	other := load(t, specFor(t, "echo", "echo.py"))
	goOp, err := (&runtimetest.MockLoader{}).Load(ctxT(t), runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "go"}, Path: "mock:echo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"sleep", "spin"} {
		t.Run(mode, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := sleeper.OnEvent(ctxT(t), input(mode, []byte("1.0"), wire.Metadata{}), &runtimetest.Recorder{})
				done <- err
			}()
			var goEvents, pyEvents atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			run := func(op runtime.Operator, n *atomic.Int64) {
				defer wg.Done()
				var rec runtimetest.Recorder
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := op.OnEvent(context.Background(), input("x", []byte("y"), wire.Metadata{}), &rec); err != nil {
						t.Error(err)
						return
					}
					rec.Take()
					n.Add(1)
				}
			}
			wg.Add(1)
			go run(goOp, &goEvents)
			if mode == "sleep" {
				wg.Add(1)
				go run(other, &pyEvents)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			close(stop)
			wg.Wait()
			t.Logf("while python %s: %d Go events, %d events of another python operator", mode, goEvents.Load(), pyEvents.Load())
			if goEvents.Load() < 1000 {
				t.Errorf("the Go operator took only %d events while python %s", goEvents.Load(), mode)
			}
			if mode == "sleep" && pyEvents.Load() < 20 {
				t.Errorf("another python operator took only %d events while the first slept", pyEvents.Load())
			}
		})
	}
}

func TestCancelInterruptsPython(t *testing.T) {
	for _, file := range []string{"probe.py", "probe_any_thread.py"} {
		t.Run(file, func(t *testing.T) {
			op := load(t, specFor(t, "probe", file))
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := op.OnEvent(ctx, input("spin", []byte("60"), wire.Metadata{}), &runtimetest.Recorder{})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, runtime.ErrPythonException) || !strings.Contains(err.Error(), "Cancelled") {
					t.Errorf("cancelled event: %v, want a Cancelled python exception", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a cancelled context did not interrupt a spinning on_event")
			}
			if _, outs := send(t, op, input("count", nil, wire.Metadata{})); string(outs[0].Data) != "2" {
				t.Errorf("after the cancellation: count %s, want 2", outs[0].Data)
			}
		})
	}
}

// TestOperatorKeepsItsThread: __init__ and every on_event run on the same
// OS thread, whichever goroutine calls OnEvent, so a sqlite3 connection
// made in __init__ works in on_event.
func TestOperatorKeepsItsThread(t *testing.T) {
	op := load(t, specFor(t, "affine", "thread_affine.py"))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				var rec runtimetest.Recorder
				// One event at a time, as the runtime does.
				affineMu.Lock()
				_, err := op.OnEvent(ctxT(t), input("x", nil, wire.Metadata{}), &rec)
				affineMu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if out := string(rec.Take()[0].Data); !strings.HasSuffix(out, " True") {
					t.Errorf("on_event ran on another thread than __init__: %s", out)
				}
			}
		}()
	}
	wg.Wait()
}

var affineMu sync.Mutex

func TestReload(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	v1 := "from dora import DoraStatus\nclass Operator:\n    def __init__(self):\n        self.n = 0\n    def on_event(self, ev, send):\n        self.n += 1\n        send('v1', str(self.n).encode())\n        return DoraStatus.CONTINUE\n"
	v2 := "from dora import DoraStatus\nclass Operator:\n    def __init__(self):\n        self.n = 0\n    def on_reload(self, previous):\n        self.n = previous.n\n    def on_event(self, ev, send):\n        self.n += 10\n        send('v2', str(self.n).encode())\n        return DoraStatus.CONTINUE\n"
	p := runtimetest.WriteFile(t, dir, "op.py", []byte(v1))
	op := load(t, runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "op"}, Path: p})
	send(t, op, input("x", nil, wire.Metadata{}))
	send(t, op, input("x", nil, wire.Metadata{}))
	runtimetest.WriteFile(t, dir, "op.py", []byte(v2))
	r := op.(runtime.Reloader)
	if err := r.Reload(ctxT(t), runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "op"}, Path: p}); err != nil {
		t.Fatal(err)
	}
	if _, outs := send(t, op, input("x", nil, wire.Metadata{})); outs[0].ID != "v2" || string(outs[0].Data) != "12" {
		t.Errorf("after reload: %s=%s, want v2=12", outs[0].ID, outs[0].Data)
	}
	runtimetest.WriteFile(t, dir, "op.py", []byte("class Operator(:\n"))
	err := r.Reload(ctxT(t), runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "op"}, Path: p})
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) || oe.Phase != runtime.PhaseReload || !strings.Contains(err.Error(), "SyntaxError") {
		t.Errorf("reload of a broken file: %v", err)
	}
	if _, outs := send(t, op, input("x", nil, wire.Metadata{})); outs[0].ID != "v2" || string(outs[0].Data) != "22" {
		t.Errorf("after a failed reload: %s=%s, want v2=22 (old code kept)", outs[0].ID, outs[0].Data)
	}
}

func TestCloseDropsTheInstance(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	body := "import os\nclass Operator:\n    def on_event(self, ev, send):\n        pass\n    def drop(self):\n        open(os.path.join(os.path.dirname(__file__), 'dropped'), 'w').close()\n    def __del__(self):\n        open(os.path.join(os.path.dirname(__file__), 'deleted'), 'w').close()\n"
	p := runtimetest.WriteFile(t, dir, "op.py", []byte(body))
	op, err := New().Load(ctxT(t), runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "op"}, Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"dropped", "deleted"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("Close did not run %s: %v", f, err)
		}
	}

	bad := runtimetest.WriteFile(t, dir, "bad.py", []byte("class Operator:\n    def on_event(self, ev, send):\n        pass\n    def drop(self):\n        raise OSError('camera stuck')\n"))
	op, err = New().Load(ctxT(t), runtime.OperatorSpec{NodeID: "n", Operator: &descriptor.Operator{ID: "op"}, Path: bad})
	if err != nil {
		t.Fatal(err)
	}
	err = op.Close()
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) || oe.Phase != runtime.PhaseClose || !strings.Contains(err.Error(), "camera stuck") {
		t.Errorf("Close with a failing drop: %v", err)
	}
	if err := op.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSendAfterCloseOrOutsideEventFails(t *testing.T) {
	op := load(t, specFor(t, "probe", "probe.py"))
	o := op.(*operator)
	if err := o.send(runtime.Output{ID: "x"}); !errors.Is(err, errNoEvent) {
		t.Errorf("send outside on_event: %v", err)
	}
}
