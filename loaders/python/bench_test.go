package python

import (
	"context"
	goruntime "runtime"
	"testing"

	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

type discard struct{}

func (discard) Send(runtime.Output) error { return nil }

func benchOperator(b *testing.B, file, id string) {
	benchSpec(b, specFor(b, "bench", file), id)
}

func benchSpec(b *testing.B, spec runtime.OperatorSpec, id string) {
	op := load(b, spec)
	ev := runtimetest.Input(id, []byte("12345678"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := op.OnEvent(ctx, ev, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoopEvent: one 8-byte INPUT to an operator that returns
// CONTINUE, on the operator's own thread (the default).
func BenchmarkNoopEvent(b *testing.B) { benchOperator(b, "noop.py", "tick") }

// BenchmarkEchoEvent: one 8-byte INPUT echoed with send_output(id, data).
func BenchmarkEchoEvent(b *testing.B) { benchOperator(b, "echo.py", "x") }

// BenchmarkNoopEventAnyThread: as NoopEvent, for an operator with
// any_thread = True (no thread hop).
func BenchmarkNoopEventAnyThread(b *testing.B) { benchOperator(b, "noop_any_thread.py", "tick") }

// BenchmarkEchoEventAnyThread: as EchoEvent with any_thread = True.
func BenchmarkEchoEventAnyThread(b *testing.B) { benchOperator(b, "echo_any_thread.py", "x") }

// BenchmarkNoopEventDedicatedThread: as NoopEvent, called the way the
// runtime calls operators (every call from one locked goroutine), so the
// operator's thread is the caller's: thread affinity without a hop.
func BenchmarkNoopEventDedicatedThread(b *testing.B) { benchDedicated(b, "noop.py", "tick") }

// BenchmarkEchoEventDedicatedThread: as EchoEvent, called as the runtime does.
func BenchmarkEchoEventDedicatedThread(b *testing.B) { benchDedicated(b, "echo.py", "x") }

func benchDedicated(b *testing.B, file, id string) {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	spec := specFor(b, "bench", file)
	spec.DedicatedThread = true
	benchSpec(b, spec, id)
}
