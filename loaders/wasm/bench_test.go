package wasm

import (
	"context"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/runtime"
)

// Run with:
//
//	go test -run XXX -bench . -benchmem -count 5 ./loaders/wasm/

type discard struct{}

func (discard) Send(runtime.Output) error { return nil }

func benchGuests(b *testing.B) map[string]func(testing.TB) string {
	return map[string]func(testing.TB) string{
		"go": func(tb testing.TB) string { return goGuest(tb, "echo") },
		"c":  func(tb testing.TB) string { return cGuest(tb) },
	}
}

func benchEvent(b *testing.B, guest func(testing.TB) string, id string, size int) {
	op := load(b, newLoader(b, Config{}), specFor(guest(b), "bench", nil))
	ev := &runtime.Event{Type: runtime.EventInput, ID: id, Data: make([]byte, size),
		Metadata: wire.Metadata{Timestamp: uint64(time.Now().UnixNano())}}
	ctx := context.Background()
	var out runtime.Sender = discard{}
	if _, err := op.OnEvent(ctx, ev, out); err != nil { // sizes the guest's buffer
		b.Fatal(err)
	}
	if size > 0 {
		b.SetBytes(int64(size))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := op.OnEvent(ctx, ev, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoopEvent is the per-event cost of the ABI: an 8-byte input
// written into guest memory and one dora_on_event call that does nothing.
func BenchmarkNoopEvent(b *testing.B) {
	for _, lang := range []string{"go", "c"} {
		b.Run(lang, func(b *testing.B) { benchEvent(b, benchGuests(b)[lang], "noop", 8) })
	}
}

// BenchmarkEchoEvent adds one send_output of the 8 bytes back to the host.
func BenchmarkEchoEvent(b *testing.B) {
	for _, lang := range []string{"go", "c"} {
		b.Run(lang, func(b *testing.B) { benchEvent(b, benchGuests(b)[lang], "echo", 8) })
	}
}

// BenchmarkInputBytes measures bytes/s into guest memory: the host copies
// the input into the guest's buffer, and the guest ignores it.
func BenchmarkInputBytes(b *testing.B) {
	for _, lang := range []string{"go", "c"} {
		for _, size := range []struct {
			name string
			n    int
		}{{"4KiB", 4 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"4MiB", 4 << 20}} {
			b.Run(lang+"/"+size.name, func(b *testing.B) { benchEvent(b, benchGuests(b)[lang], "noop", size.n) })
		}
	}
}

// BenchmarkUntimedEvent is BenchmarkNoopEvent and BenchmarkEchoEvent for
// an operator without an event time limit (EventTimeout < 0): no
// interruption checks, no goroutine per call.
func BenchmarkUntimedEvent(b *testing.B) {
	for _, lang := range []string{"go", "c"} {
		for _, id := range []string{"noop", "echo"} {
			b.Run(lang+"/"+id, func(b *testing.B) {
				guest := benchGuests(b)[lang]
				op := load(b, newLoader(b, Config{EventTimeout: -1}), specFor(guest(b), "bench", nil))
				ev := &runtime.Event{Type: runtime.EventInput, ID: id, Data: make([]byte, 8),
					Metadata: wire.Metadata{Timestamp: uint64(time.Now().UnixNano())}}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var out runtime.Sender = discard{}
				b.SetBytes(8)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := op.OnEvent(ctx, ev, out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
