package python

import (
	"runtime"
	"testing"

	"github.com/dora-go/dora/runtime/runtimetest"
)

// The benchmarks below take the per-event cost apart; doc.go quotes them.

// BenchmarkDesignEventOnThread: the Python call alone (purego calls,
// dora._host.Host.event, a no-op on_event), already on the worker thread
// with the GIL: no hand-off.
func BenchmarkDesignEventOnThread(b *testing.B) {
	o := load(b, specFor(b, "bench", "noop.py")).(*operator)
	ev := runtimetest.Input("tick", []byte("12345678"))
	b.ReportAllocs()
	b.ResetTimer()
	o.w.do(func() {
		for i := 0; i < b.N; i++ {
			if _, err := o.event(ev, o.w.ident); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDesignHandoff: an empty job to a worker thread and back (GIL
// taken and released there): the cost of the thread hop alone.
func BenchmarkDesignHandoff(b *testing.B) {
	o := load(b, specFor(b, "bench", "noop.py")).(*operator)
	f := func() {}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o.w.do(f)
	}
}

// BenchmarkDesignEnsureRelease: the event on the caller's thread with
// PyGILState_Ensure/Release and no pinned thread state, so that every event
// creates and deletes a PyThreadState (the rejected variant of any_thread).
func BenchmarkDesignEnsureRelease(b *testing.B) {
	o := load(b, specFor(b, "bench", "noop.py")).(*operator)
	a := o.ip.api
	ev := runtimetest.Input("tick", []byte("12345678"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.LockOSThread()
		if call0(a.fnGILStateThis) != 0 {
			runtime.UnlockOSThread()
			b.Skip("this thread has a pinned thread state already")
		}
		g := call0(a.fnGILStateEnsure)
		if _, err := o.event(ev, call0(a.fnThreadIdent)); err != nil {
			b.Fatal(err)
		}
		call1(a.fnGILStateRelease, g)
		runtime.UnlockOSThread()
	}
}
