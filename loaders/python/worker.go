package python

import (
	"errors"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// worker is one operator's Python thread: a goroutine locked to its OS
// thread for the operator's whole life, with its own PyThreadState. The
// operator's Python code (import, __init__, every on_event unless the
// operator opts into any_thread, drop) runs there, so thread-affine
// libraries (sqlite3 connections, GUI toolkits, OpenCV windows, CUDA
// device selection, thread-locals) behave as in dora-rs, where each
// operator has its own thread. The thread holds the GIL only while it runs
// a job; in between, other Python operators and threads the operator
// started get it. Go code of other operators never waits for it: they run
// on other threads, and a thread inside a C call gives its P back to the
// scheduler.
//
// A job costs two thread wake-ups (there and back): about 11 µs on the
// 2-vCPU test machine when it is quiet, more when other processes compete
// for the CPUs. doc.go has the measurements and the alternatives tried.
type worker struct {
	ip *interp
	// ident is PyThread_get_thread_ident() of the thread, for
	// PyThreadState_SetAsyncExc.
	ident uintptr
	// scratch is C memory for vectorcall argument arrays; it is used by
	// whichever thread runs the operator's current call.
	scratch uintptr

	mu     sync.Mutex // one job in flight
	jobs   chan func()
	done   chan struct{}
	exited chan struct{}

	// inline workers run jobs on the thread that made them (see
	// newInlineWorker): tid is that thread, gil and ts its Python state.
	inline bool
	tid    int
	gil    uintptr
	ts     uintptr
}

const scratchSlots = 8

func newWorker(ip *interp) *worker {
	w := &worker{ip: ip, jobs: make(chan func()), done: make(chan struct{}, 1), exited: make(chan struct{})}
	ready := make(chan struct{})
	go w.loop(ready)
	<-ready
	return w
}

func (w *worker) loop(ready chan<- struct{}) {
	// Never unlocked: when the goroutine returns, the OS thread ends with
	// it, and with it any thread-local state C extensions left behind.
	runtime.LockOSThread()
	a := w.ip.api
	g := call0(a.fnGILStateEnsure)
	w.ident = call0(a.fnThreadIdent)
	w.scratch = a.rawMalloc(scratchSlots * 8)
	ts := call0(a.fnSaveThread)
	close(ready)
	for f := range w.jobs {
		call1(a.fnRestoreThread, ts)
		f()
		ts = call0(a.fnSaveThread)
		w.done <- struct{}{}
	}
	call1(a.fnRestoreThread, ts)
	call1(a.fnRawFree, w.scratch)
	call1(a.fnGILStateRelease, g) // deletes the thread state
	close(w.exited)
}

// newInlineWorker makes the calling OS thread the operator's Python
// thread, for callers that promise to make every call of the operator from
// this goroutine, locked to this thread (runtime.OperatorSpec
// .DedicatedThread): the operator keeps its thread affinity and no job
// costs a thread hop.
func newInlineWorker(ip *interp) *worker {
	a := ip.api
	w := &worker{ip: ip, inline: true, tid: unix.Gettid()}
	w.gil = call0(a.fnGILStateEnsure)
	w.ident = call0(a.fnThreadIdent)
	w.scratch = a.rawMalloc(scratchSlots * 8)
	w.ts = call0(a.fnSaveThread)
	return w
}

// errWrongThread is a broken DedicatedThread promise: running Python with
// another thread's state would corrupt the interpreter.
var errWrongThread = errors.New("called from another thread than the one the operator was loaded on, although the runtime promised a dedicated thread")

// run runs f on the worker's thread with the GIL held and waits for it.
// When cancel is closed first, onCancel is called once and the wait goes
// on: f may be using memory the caller owns.
func (w *worker) run(f func(), cancel <-chan struct{}, onCancel func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inline {
		if unix.Gettid() != w.tid {
			return errWrongThread
		}
		if cancel != nil {
			stop := afterClose(cancel, onCancel)
			defer stop()
		}
		a := w.ip.api
		call1(a.fnRestoreThread, w.ts)
		f()
		w.ts = call0(a.fnSaveThread)
		return nil
	}
	w.jobs <- f
	select {
	case <-w.done:
	case <-cancel:
		onCancel()
		<-w.done
	}
	return nil
}

// afterClose calls f in a goroutine if c closes before stop is called.
func afterClose(c <-chan struct{}, f func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-c:
			f()
		case <-done:
		}
	}()
	return func() { close(done) }
}

// do runs f on the worker's thread with the GIL held and waits for it.
func (w *worker) do(f func()) error { return w.run(f, nil, nil) }

// stop ends the worker and its thread (an inline worker's Python state).
func (w *worker) stop() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inline {
		if unix.Gettid() != w.tid {
			return errWrongThread
		}
		a := w.ip.api
		call1(a.fnRestoreThread, w.ts)
		call1(a.fnRawFree, w.scratch)
		call1(a.fnGILStateRelease, w.gil) // deletes the thread state
		return nil
	}
	close(w.jobs)
	<-w.exited
	return nil
}

// pinThread gives the calling OS thread a PyThreadState that outlives the
// call, for operators that run on their caller's thread (any_thread):
// creating and deleting a thread state per event costs about 10 µs (3.11
// maps each one's frame stack with mmap). The caller has locked the
// goroutine to its thread and does not hold the GIL.
//
// The state stays until the thread ends. Go ends threads only when a
// locked goroutine returns (a closed operator's worker, say); the state of
// such a thread stays in the interpreter's list, a few kilobytes each.
func (ip *interp) pinThread() {
	a := ip.api
	if call0(a.fnGILStateThis) != 0 {
		return
	}
	call0(a.fnGILStateEnsure) // never released: the state stays
	call0(a.fnSaveThread)
}
