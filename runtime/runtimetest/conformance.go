// Package runtimetest holds what every operator loader is tested with: the
// conformance suite (Run) and a scripted mock loader for fault tests.
package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Fixture names an operator every loader ships, written in the loader's
// own language, for the conformance suite.
type Fixture string

const (
	// FixtureEcho behaves as follows, counting every INPUT event it sees:
	//   INPUT "fail"     -> returns an error whose text contains "requested failure"
	//   INPUT "stop"     -> returns STOP, sends nothing
	//   INPUT "stop_all" -> returns STOP_ALL, sends nothing
	//   INPUT "count"    -> sends output "count" whose data is the count of
	//                       INPUT events so far, in ASCII decimal
	//   INPUT other id X -> sends output X with the same data, CONTINUE
	//   INPUT_CLOSED, STOP, ERROR -> CONTINUE, sends nothing
	FixtureEcho Fixture = "echo"
	// FixtureInitError fails during initialisation with an error whose
	// text contains "init failed on purpose".
	FixtureInitError Fixture = "init-error"
	// FixtureMissingEntryPoint is a well-formed library/module/file that
	// lacks the on_event entry point.
	FixtureMissingEntryPoint Fixture = "missing-entry"
)

// Harness adapts one loader to the suite.
type Harness struct {
	Kind descriptor.SourceKind
	// NewLoader returns a fresh loader.
	NewLoader func(t *testing.T) runtime.Loader
	// Fixture builds (if needed, into t.TempDir()) the fixture operator and
	// returns its spec with Path set. It calls t.Skip with a reason when a
	// toolchain it needs is missing.
	Fixture func(t *testing.T, f Fixture) runtime.OperatorSpec
	// NotAModule writes a file of the loader's kind that is not a valid
	// library/module (text, truncated, ...) and returns its path.
	NotAModule func(t *testing.T) string
}

// Recorder is a runtime.Sender that keeps what it was sent.
type Recorder struct {
	mu   sync.Mutex
	Outs []runtime.Output
	// Err, when set, is returned by Send.
	Err error
}

// Send copies the output: the sender's buffer is only valid during the call.
func (r *Recorder) Send(out runtime.Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out.Data = bytes.Clone(out.Data)
	r.Outs = append(r.Outs, out)
	return r.Err
}

// Take returns and forgets what was recorded.
func (r *Recorder) Take() []runtime.Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	outs := r.Outs
	r.Outs = nil
	return outs
}

// Input makes an INPUT event.
func Input(id string, data []byte) *runtime.Event {
	return &runtime.Event{Type: runtime.EventInput, ID: id, Data: data, Metadata: wire.Metadata{Timestamp: uint64(time.Now().UnixNano())}}
}

// testCtx bounds each call so a hang fails the test; the bound is loose
// because a cold compile (a Go WASM guest under -race on a busy machine)
// can take tens of seconds.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Load loads a fixture and registers its Close with t.Cleanup.
func Load(t *testing.T, h Harness, f Fixture) runtime.Operator {
	t.Helper()
	spec := h.Fixture(t, f)
	op, err := h.NewLoader(t).Load(testCtx(t), spec)
	if err != nil {
		t.Fatalf("Load(%s): %v", f, err)
	}
	t.Cleanup(func() { _ = op.Close() })
	return op
}

// Event sends ev to op and fails the test on an unexpected error.
func Event(t *testing.T, op runtime.Operator, ev *runtime.Event) (runtime.Status, []runtime.Output) {
	t.Helper()
	var rec Recorder
	st, err := op.OnEvent(testCtx(t), ev, &rec)
	if err != nil {
		t.Fatalf("OnEvent(%s %q): %v", ev.Type, ev.ID, err)
	}
	return st, rec.Take()
}

// Run runs the conformance suite against one loader.
func Run(t *testing.T, h Harness) {
	t.Run("EchoesAnInput", func(t *testing.T) {
		op := Load(t, h, FixtureEcho)
		st, outs := Event(t, op, Input("greeting", []byte("hello")))
		if st != runtime.StatusContinue {
			t.Errorf("status = %v, want CONTINUE", st)
		}
		if len(outs) != 1 || outs[0].ID != "greeting" || string(outs[0].Data) != "hello" {
			t.Fatalf("outputs = %+v, want one output greeting=hello", outs)
		}
	})
	t.Run("EchoesEmptyAndLargeInputs", func(t *testing.T) {
		op := Load(t, h, FixtureEcho)
		for _, n := range []int{0, 1, 8, 4096, 4 << 20} {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i*7 + n)
			}
			_, outs := Event(t, op, Input("blob", data))
			if len(outs) != 1 || !bytes.Equal(outs[0].Data, data) {
				t.Fatalf("%d bytes: echo differs (got %d outputs)", n, len(outs))
			}
		}
	})
	t.Run("KeepsStatePerInstance", func(t *testing.T) {
		a, b := Load(t, h, FixtureEcho), Load(t, h, FixtureEcho)
		for i := 0; i < 100; i++ {
			Event(t, a, Input("x", []byte{byte(i)}))
		}
		Event(t, b, Input("x", nil))
		wantCount(t, a, 101)
		wantCount(t, b, 2)
	})
	t.Run("ReportsAnEventErrorAndKeepsRunning", func(t *testing.T) {
		op := Load(t, h, FixtureEcho)
		var rec Recorder
		_, err := op.OnEvent(testCtx(t), Input("fail", nil), &rec)
		if err == nil {
			t.Fatal("OnEvent(fail) returned no error")
		}
		var oe *runtime.OperatorError
		if !errors.As(err, &oe) || oe.Phase != runtime.PhaseEvent {
			t.Fatalf("error %v is not an *OperatorError in phase %s", err, runtime.PhaseEvent)
		}
		if !bytes.Contains([]byte(err.Error()), []byte("requested failure")) {
			t.Errorf("error %q does not carry the operator's message", err)
		}
		if oe.Operator == "" || oe.Node == "" {
			t.Errorf("error %q does not name node and operator", err)
		}
		_, outs := Event(t, op, Input("after", []byte("ok")))
		if len(outs) != 1 || string(outs[0].Data) != "ok" {
			t.Fatalf("operator does not work after an error: %+v", outs)
		}
	})
	t.Run("ReturnsStatuses", func(t *testing.T) {
		op := Load(t, h, FixtureEcho)
		for id, want := range map[string]runtime.Status{"stop": runtime.StatusStop, "stop_all": runtime.StatusStopAll, "other": runtime.StatusContinue} {
			if st, _ := Event(t, op, Input(id, nil)); st != want {
				t.Errorf("input %q: status %v, want %v", id, st, want)
			}
		}
	})
	t.Run("TakesStopAndInputClosed", func(t *testing.T) {
		op := Load(t, h, FixtureEcho)
		for _, ev := range []*runtime.Event{
			{Type: runtime.EventInputClosed, ID: "x"},
			{Type: runtime.EventError, Error: "upstream trouble"},
			{Type: runtime.EventStop},
		} {
			if st, outs := Event(t, op, ev); st != runtime.StatusContinue || len(outs) != 0 {
				t.Errorf("%s: status %v outputs %d, want CONTINUE and none", ev.Type, st, len(outs))
			}
		}
	})
	t.Run("ReportsSendErrors", func(t *testing.T) {
		op := Load(t, h, FixtureEcho)
		rec := Recorder{Err: errors.New("daemon gone")}
		if _, err := op.OnEvent(testCtx(t), Input("x", []byte("y")), &rec); err == nil {
			t.Error("a failing send went unreported")
		}
	})
	t.Run("ClosesTwice", func(t *testing.T) {
		spec := h.Fixture(t, FixtureEcho)
		op, err := h.NewLoader(t).Load(testCtx(t), spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
		if err := op.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
	t.Run("FailsInit", func(t *testing.T) {
		spec := h.Fixture(t, FixtureInitError)
		_, err := h.NewLoader(t).Load(testCtx(t), spec)
		var oe *runtime.OperatorError
		if !errors.As(err, &oe) || oe.Phase != runtime.PhaseInit {
			t.Fatalf("Load = %v, want an *OperatorError in phase %s", err, runtime.PhaseInit)
		}
		if !bytes.Contains([]byte(err.Error()), []byte("init failed on purpose")) {
			t.Errorf("error %q does not carry the operator's message", err)
		}
	})
	t.Run("NamesAMissingEntryPoint", func(t *testing.T) {
		spec := h.Fixture(t, FixtureMissingEntryPoint)
		_, err := h.NewLoader(t).Load(testCtx(t), spec)
		if !errors.Is(err, runtime.ErrMissingSymbol) {
			t.Fatalf("Load = %v, want ErrMissingSymbol", err)
		}
	})
	t.Run("RejectsAMissingFile", func(t *testing.T) {
		spec := h.Fixture(t, FixtureEcho)
		spec.Path = filepath.Join(t.TempDir(), "does-not-exist")
		_, err := h.NewLoader(t).Load(testCtx(t), spec)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("does-not-exist")) {
			t.Fatalf("Load = %v, want an error naming the missing file", err)
		}
	})
	t.Run("RejectsSomethingThatIsNotAModule", func(t *testing.T) {
		spec := h.Fixture(t, FixtureEcho)
		spec.Path = h.NotAModule(t)
		if _, err := h.NewLoader(t).Load(testCtx(t), spec); err == nil {
			t.Fatal("Load of a non-module succeeded")
		}
	})
	t.Run("HonoursACancelledLoad", func(t *testing.T) {
		spec := h.Fixture(t, FixtureEcho)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() {
			op, err := h.NewLoader(t).Load(ctx, spec)
			if err == nil {
				err = op.Close()
			}
			done <- err
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Load ignored a cancelled context for 10s")
		}
	})
	t.Run("HammerConcurrentOperators", func(t *testing.T) {
		const ops, events = 4, 200
		var wg sync.WaitGroup
		for i := 0; i < ops; i++ {
			op := Load(t, h, FixtureEcho)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var rec Recorder
				for j := 0; j < events; j++ {
					if _, err := op.OnEvent(context.Background(), Input("x", []byte(strconv.Itoa(j))), &rec); err != nil {
						t.Error(err)
						return
					}
				}
				if n := len(rec.Take()); n != events {
					t.Errorf("got %d outputs, want %d", n, events)
				}
			}()
		}
		wg.Wait()
	})
}

func wantCount(t *testing.T, op runtime.Operator, want int) {
	t.Helper()
	_, outs := Event(t, op, Input("count", nil))
	if len(outs) != 1 || outs[0].ID != "count" || string(outs[0].Data) != strconv.Itoa(want) {
		t.Fatalf("count outputs = %+v, want count=%d", outs, want)
	}
}

// WriteFile writes a fixture file into dir and returns its path.
func WriteFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
