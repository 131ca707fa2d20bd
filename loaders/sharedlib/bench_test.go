package sharedlib

import (
	"context"
	"testing"

	"github.com/dora-go/dora/runtime"
)

// benchEvent dispatches one 8-byte INPUT event per iteration.
func benchEvent(b *testing.B, src, id string, portable bool) {
	if portable {
		old := useSyscallSret
		useSyscallSret = false
		b.Cleanup(func() { useSyscallSret = old })
	}
	op := loadLib(b, buildLib(b, "", src))
	ev := &runtime.Event{Type: runtime.EventInput, ID: id, Data: []byte("12345678")}
	ctx := context.Background()
	var out discard
	if _, err := op.OnEvent(ctx, ev, out); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := op.OnEvent(ctx, ev, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOnEventNoop: dispatch cost of an event to a C operator that does
// nothing (target < 1 µs, 0 allocs).
func BenchmarkOnEventNoop(b *testing.B) { benchEvent(b, "noop.c", "x", false) }

// BenchmarkOnEventOneOutput: the same plus one send_output call through
// the callback (echo.c copies id and data into malloc'd buffers, the loader
// frees them; target < 3 µs).
func BenchmarkOnEventOneOutput(b *testing.B) { benchEvent(b, "echo.c", "x", false) }

// The RegisterFunc path, for comparison (what arm64 uses).
func BenchmarkOnEventNoopPortable(b *testing.B)      { benchEvent(b, "noop.c", "x", true) }
func BenchmarkOnEventOneOutputPortable(b *testing.B) { benchEvent(b, "echo.c", "x", true) }
