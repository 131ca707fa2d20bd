// Package osthread runs functions one at a time on one OS thread, for
// code that must always run on the same thread: thread-bound operators,
// and forking children whose parent-death signal follows the thread that
// forked them.
package osthread

import "runtime"

// Thread runs the functions given to Run, in order, on one OS thread.
type Thread struct{ calls chan func() }

// Start starts a goroutine locked to its OS thread. It is never unlocked:
// when Stop ends the goroutine, the thread ends with it.
func Start() *Thread {
	t := &Thread{calls: make(chan func())}
	go func() {
		runtime.LockOSThread()
		for f := range t.calls {
			f()
		}
	}()
	return t
}

// Run runs f on the thread and returns once f has.
func (t *Thread) Run(f func()) {
	done := make(chan struct{})
	t.calls <- func() {
		defer close(done)
		f()
	}
	<-done
}

// Stop ends the thread. Run must not be called after it.
func (t *Thread) Stop() { close(t.calls) }
