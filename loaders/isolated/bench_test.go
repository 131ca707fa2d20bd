package isolated

import (
	"context"
	"testing"

	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// BenchmarkIsolatedEvent is the per-event cost of an isolated operator:
// a no-op (the round trip alone) and an echo (plus one output and its
// SEND_RESULT), with 8 B inline and 4 MiB through the shared regions.
//
//	go test -run '^$' -bench IsolatedEvent -benchmem ./loaders/isolated/
func BenchmarkIsolatedEvent(b *testing.B) {
	for _, bc := range []struct {
		name string
		spec func() runtime.OperatorSpec
		size int
	}{
		{"noop/8B", noopSpec, 8},
		{"noop/4MiB", noopSpec, 4 << 20},
		{"echo/8B", echoSpec, 8},
		{"echo/4MiB", echoSpec, 4 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			op := load(b, newTestLoader(b), bc.spec())
			runEvents(b, op, bc.size)
		})
	}
}

func noopSpec() runtime.OperatorSpec {
	s := mockSpec("noop", "noop")
	s.Operator.Source.Kind = kindNoop
	return s
}

func echoSpec() runtime.OperatorSpec { return mockSpec("echo", "mock:echo") }

type nopSender struct{}

func (nopSender) Send(runtime.Output) error { return nil }

func runEvents(b *testing.B, op runtime.Operator, size int) {
	ev := runtimetest.Input("x", make([]byte, size))
	ctx := context.Background()
	// The first event sets the regions up.
	if _, err := op.OnEvent(ctx, ev, nopSender{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := op.OnEvent(ctx, ev, nopSender{}); err != nil {
			b.Fatal(err)
		}
	}
}
