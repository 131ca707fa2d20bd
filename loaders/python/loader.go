package python

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	goruntime "runtime"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Loader runs Python operators in the CPython this process embeds.
type Loader struct {
	// Python is a python executable or libpython path; empty means
	// $DORA_PYTHON, then python3 in PATH. The first Load of a process
	// decides: all python operators of a process share one interpreter.
	Python string
	// Logger receives loader-level messages; nil means slog.Default().
	Logger *slog.Logger
}

// New returns a Loader with the default settings.
func New() *Loader { return &Loader{} }

var (
	_ runtime.Loader   = (*Loader)(nil)
	_ runtime.Prober   = (*Loader)(nil)
	_ runtime.Operator = (*operator)(nil)
	_ runtime.Reloader = (*operator)(nil)
)

func (l *Loader) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// Probe says whether python operators can run here: a CPython >= 3.8 with
// a shared libpython that dlopens and exports what the loader needs. The
// error (wrapping ErrUnavailable) says what is missing and how to fix it.
func (l *Loader) Probe() error {
	procMu.Lock()
	ip, done, perr := procIP, procDone, procErr
	procMu.Unlock()
	if done {
		if ip != nil {
			return ip.accepts(context.Background(), l.Python)
		}
		return perr // the interpreter failed to start in this process
	}
	inst, err := Discover(context.Background(), l.Python)
	if err != nil {
		return err
	}
	if _, err := openCAPI(inst.Library); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, inst, err)
	}
	return nil
}

// Return codes of dora._host.Host methods (see _host.py).
const (
	rcException = 3
	rcNone      = 4
	rcImport    = 5
	rcMissing   = 6
)

// Host.__init__ route bits: which of the operator's streams go to Go writers.
const (
	routeStdout = 1
	routeStderr = 2
)

// operator is one loaded Python operator. Its Python objects are only
// touched on its worker's thread.
type operator struct {
	ip     *interp
	w      *worker
	spec   runtime.OperatorSpec
	log    *slog.Logger
	handle int64

	host    uintptr // dora._host.Host instance
	eventFn uintptr // bound method host.event
	ids     map[string]uintptr

	// anyThread: the Operator class set any_thread = True, so on_event
	// runs on the caller's thread instead of the worker's.
	anyThread bool

	// The event in flight, for the worker.
	cur    *runtime.Event
	curSt  runtime.Status
	curErr error
	evJob  func()
	// callIdent is the Python thread ident of the thread running one of
	// this operator's Python calls, 0 when none runs. interrupt reads it
	// with the GIL held.
	callIdent atomic.Uintptr

	sendMu sync.Mutex
	sender runtime.Sender // set during OnEvent only

	warnedNone  atomic.Bool
	interrupted atomic.Bool
	closeOnce   sync.Once
}

var (
	operators  sync.Map // handle (int64) -> *operator
	nextHandle atomic.Int64
)

func (o *operator) fail(phase runtime.Phase, err error) error {
	return &runtime.OperatorError{Node: o.spec.NodeID, Operator: o.spec.Operator.ID, Loader: descriptor.SourcePython, Phase: phase, Err: err}
}

// Load imports spec.Path under a module name of its own, instantiates its
// Operator class on a new worker thread and returns when __init__ is done.
func (l *Loader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	if spec.Operator == nil {
		spec.Operator = &descriptor.Operator{ID: "operator", Source: descriptor.OperatorSource{Kind: descriptor.SourcePython, Path: spec.Path}}
	}
	o := &operator{spec: spec, log: spec.Logger}
	if o.log == nil {
		o.log = l.logger().With("node", spec.NodeID, "operator", spec.Operator.ID)
	}
	if err := ctx.Err(); err != nil {
		return nil, o.fail(runtime.PhaseLoad, err)
	}
	st, err := os.Stat(spec.Path)
	if err != nil {
		return nil, o.fail(runtime.PhaseLoad, fmt.Errorf("python operator file: %w", err))
	}
	if !st.Mode().IsRegular() {
		return nil, o.fail(runtime.PhaseLoad, fmt.Errorf("python operator file %s is not a regular file", spec.Path))
	}
	ip, err := startInterp(ctx, l.Python, l.logger())
	if err != nil {
		return nil, o.fail(runtime.PhaseLoad, err)
	}
	o.ip = ip
	o.handle = nextHandle.Add(1)
	o.ids = map[string]uintptr{}
	o.evJob = o.runEvent
	operators.Store(o.handle, o)
	if spec.DedicatedThread {
		return o.loadInline(ctx)
	}
	o.w = newWorker(ip)

	done := make(chan error, 1)
	go o.w.do(func() {
		o.callIdent.Store(o.w.ident)
		err := o.load()
		o.callIdent.Store(0)
		if o.interrupted.Swap(false) {
			call2(ip.api.fnSetAsyncExc, o.w.ident, 0)
		}
		done <- err
	})
	select {
	case err := <-done:
		if err != nil {
			o.release()
			return nil, err
		}
		return o, nil
	case <-ctx.Done():
		// interrupt waits for the GIL, which a long C call in the import
		// may hold: Load must not wait for it.
		go o.interrupt()
		go func() {
			// The import or __init__ goes on until Python notices the
			// interruption; then the operator is dropped.
			if err := <-done; err == nil {
				_ = o.Close()
			} else {
				o.release()
			}
		}()
		return nil, o.fail(runtime.PhaseLoad, ctx.Err())
	}
}

// loadInline loads on the caller's thread, which the runtime dedicates to
// this operator: every later call comes from it, so the caller's thread is
// the operator's Python thread and events cost no thread hop.
func (o *operator) loadInline(ctx context.Context) (runtime.Operator, error) {
	o.w = newInlineWorker(o.ip)
	var err error
	runErr := o.w.run(func() {
		o.callIdent.Store(o.w.ident)
		err = o.load()
		o.callIdent.Store(0)
		if o.interrupted.Swap(false) {
			call2(o.ip.api.fnSetAsyncExc, o.w.ident, 0)
		}
	}, ctx.Done(), o.interrupt)
	if err == nil {
		err = runErr
	}
	if err == nil && ctx.Err() != nil {
		err = o.fail(runtime.PhaseLoad, ctx.Err())
		_ = o.Close()
		return nil, err
	}
	if err != nil {
		o.release()
		return nil, err
	}
	return o, nil
}

// load runs on the worker thread.
func (o *operator) load() error {
	a := o.ip.api
	routes := 0
	if o.spec.Stdout != nil {
		routes |= routeStdout
	}
	if o.spec.Stderr != nil {
		routes |= routeStderr
	}
	args := []uintptr{a.long(o.handle), a.str(o.spec.Path), a.str(o.spec.NodeID), a.str(o.spec.Operator.ID), a.long(int64(routes))}
	o.host = a.callArgs(o.ip.hostNew, o.w.scratch, args...)
	for _, x := range args {
		a.decref(x)
	}
	if o.host == 0 {
		return o.fail(runtime.PhaseLoad, fmt.Errorf("dora._host.Host: %s", a.fetchError()))
	}
	o.eventFn = a.getattr(o.host, "event")
	if o.eventFn == 0 {
		return o.fail(runtime.PhaseLoad, fmt.Errorf("dora._host.Host.event: %s", a.fetchError()))
	}
	rc, text := o.callMethod("load")
	if err := o.loadError(rc, text, runtime.PhaseInit); err != nil {
		return err
	}
	o.readMode()
	return nil
}

// readMode reads the operator's threading choice (Host._any_thread) after
// a load or reload. Worker thread only.
func (o *operator) readMode() {
	a := o.ip.api
	v := a.getattr(o.host, "_any_thread")
	if v == 0 {
		a.fetchError()
		return
	}
	o.anyThread = int64(call1(a.fnLongAsLongLong, v)) == 1
	a.decref(v)
}

// loadError maps a Host.load/reload code to an error; initPhase is the
// phase of an exception in Operator() or on_reload.
func (o *operator) loadError(rc int64, text string, initPhase runtime.Phase) error {
	loadPhase := runtime.PhaseLoad
	if initPhase == runtime.PhaseReload {
		loadPhase = runtime.PhaseReload
	}
	switch rc {
	case 0:
		return nil
	case rcImport:
		return o.fail(loadPhase, fmt.Errorf("%w: importing %s:\n%s", runtime.ErrPythonException, o.spec.Path, text))
	case rcMissing:
		return o.fail(loadPhase, fmt.Errorf("%w: %s", runtime.ErrMissingSymbol, text))
	case rcException:
		return o.fail(initPhase, fmt.Errorf("%w in Operator():\n%s", runtime.ErrPythonException, text))
	}
	return o.fail(loadPhase, fmt.Errorf("dora._host: unexpected result %d: %s", rc, text))
}

// callMethod calls a no-argument Host method that returns a code, and
// fetches Host.error when the code says so. Worker thread only.
func (o *operator) callMethod(name string, args ...uintptr) (int64, string) {
	a := o.ip.api
	fn := a.getattr(o.host, name)
	if fn == 0 {
		return -1, a.fetchError()
	}
	r := a.callArgs(fn, o.w.scratch, args...)
	a.decref(fn)
	return o.result(r)
}

// result turns a Host method's return value into (code, error text).
func (o *operator) result(r uintptr) (int64, string) {
	a := o.ip.api
	if r == 0 {
		return -1, a.fetchError()
	}
	rc := int64(call1(a.fnLongAsLongLong, r))
	a.decref(r)
	if rc == rcException || rc == rcImport || rc == rcMissing {
		return rc, o.hostError()
	}
	return rc, ""
}

func (o *operator) hostError() string {
	a := o.ip.api
	e := a.getattr(o.host, "error")
	if e == 0 {
		return a.fetchError()
	}
	s, _ := a.goString(e)
	a.decref(e)
	return s
}

// OnEvent runs on_event on the operator's own thread (or, for any_thread
// operators, on the caller's) and waits for it. When ctx is done first,
// Python is interrupted (see interrupt) and OnEvent still waits for it to
// return: it may be reading ev.Data.
func (o *operator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (runtime.Status, error) {
	if err := ctx.Err(); err != nil {
		return runtime.StatusContinue, o.fail(runtime.PhaseEvent, err)
	}
	o.sendMu.Lock()
	o.sender = out
	o.sendMu.Unlock()
	var st runtime.Status
	var err error
	if o.anyThread {
		st, err = o.eventHere(ctx, ev)
	} else {
		o.cur = ev
		if err = o.w.run(o.evJob, ctx.Done(), o.interrupt); err != nil {
			st, err = runtime.StatusContinue, o.fail(runtime.PhaseEvent, err)
		} else {
			st, err = o.curSt, o.curErr
		}
		o.cur, o.curErr = nil, nil
	}
	o.sendMu.Lock()
	o.sender = nil
	o.sendMu.Unlock()
	return st, err
}

// runEvent runs on the worker thread.
func (o *operator) runEvent() { o.curSt, o.curErr = o.event(o.cur, o.w.ident) }

// eventHere runs the event on the calling goroutine's OS thread, which
// keeps a thread state for good (pinThread).
func (o *operator) eventHere(ctx context.Context, ev *runtime.Event) (runtime.Status, error) {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, o.interrupt)
		defer stop()
	}
	a := o.ip.api
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	o.ip.pinThread()
	g := call0(a.fnGILStateEnsure)
	st, err := o.event(ev, call0(a.fnThreadIdent))
	call1(a.fnGILStateRelease, g)
	return st, err
}

// event calls Host.event; ident is the calling thread's Python ident. The
// caller holds the GIL.
func (o *operator) event(ev *runtime.Event, ident uintptr) (runtime.Status, error) {
	a := o.ip.api
	if ev.Type < runtime.EventInput || ev.Type > runtime.EventError {
		return runtime.StatusContinue, o.fail(runtime.PhaseEvent, fmt.Errorf("unknown event type %d", ev.Type))
	}
	kind := o.ip.kinds[ev.Type]
	id, ownID := a.none, false
	if ev.Type == runtime.EventInput || ev.Type == runtime.EventInputClosed {
		id, ownID = o.idObject(ev.ID)
	}
	mv := a.none
	if len(ev.Data) > 0 {
		// A read-only view of the runtime's buffer, released by
		// dora._host before the call returns.
		mv = call3(a.fnMemoryView, uintptr(unsafe.Pointer(unsafe.SliceData(ev.Data))), uintptr(len(ev.Data)), pyBufRead)
	}
	blob := a.none
	if ev.Type == runtime.EventInput {
		if b := encodeMeta(&ev.Metadata); b != nil {
			blob = a.bytes(b)
		}
	}
	errText := a.none
	if ev.Type == runtime.EventError {
		errText = a.str(ev.Error)
	}
	o.callIdent.Store(ident)
	r := a.callArgs(o.eventFn, o.w.scratch, kind, id, mv, blob, errText)
	o.callIdent.Store(0)
	if o.interrupted.Swap(false) {
		// A cancellation that arrived after on_event returned must not
		// fire in the next Python call of this thread.
		call2(a.fnSetAsyncExc, ident, 0)
	}
	if mv != a.none {
		a.decref(mv)
	}
	if blob != a.none {
		a.decref(blob)
	}
	if errText != a.none {
		a.decref(errText)
	}
	if ownID {
		a.decref(id)
	}
	goruntime.KeepAlive(ev)
	rc, text := o.result(r)
	switch {
	case rc >= 0 && rc <= 2:
		return runtime.Status(rc), nil
	case rc == rcNone:
		if o.warnedNone.CompareAndSwap(false, true) {
			o.log.Warn("Operator.on_event returned None; treating it as DoraStatus.CONTINUE (return a DoraStatus; this warning is shown once)")
		}
		return runtime.StatusContinue, nil
	case rc == rcException:
		return runtime.StatusContinue, o.fail(runtime.PhaseEvent, fmt.Errorf("%w in on_event:\n%s", runtime.ErrPythonException, text))
	}
	return runtime.StatusContinue, o.fail(runtime.PhaseEvent, fmt.Errorf("%w: dora._host.Host.event failed: %s", runtime.ErrPythonException, text))
}

// maxCachedIDs bounds the cache of input id strings.
const maxCachedIDs = 256

// idObject returns a Python str for an input id, cached per operator (the
// ids of an operator's inputs are a small fixed set); owned says the caller
// must drop the reference.
func (o *operator) idObject(id string) (s uintptr, owned bool) {
	if s, ok := o.ids[id]; ok {
		return s, false
	}
	s = o.ip.api.str(id)
	if len(o.ids) < maxCachedIDs {
		o.ids[id] = s
		return s, false
	}
	return s, true
}

// interrupt raises dora._host.Cancelled in the operator's thread if one of
// its Python calls is running. The check and the raise happen with the GIL
// held, so they cannot race with the call's end.
func (o *operator) interrupt() {
	o.ip.onMain(func() {
		if id := o.callIdent.Load(); id != 0 {
			o.interrupted.Store(true)
			call2(o.ip.api.fnSetAsyncExc, id, o.ip.cancelled)
		}
	})
}

// Reload re-imports spec.Path and swaps in a new Operator instance; see
// dora._host.Host.reload for what happens to the old instance's state.
func (o *operator) Reload(ctx context.Context, spec runtime.OperatorSpec) error {
	if err := ctx.Err(); err != nil {
		return o.fail(runtime.PhaseReload, err)
	}
	path := spec.Path
	if path == "" {
		path = o.spec.Path
	}
	if _, err := os.Stat(path); err != nil {
		return o.fail(runtime.PhaseReload, fmt.Errorf("python operator file: %w", err))
	}
	var err error
	if runErr := o.w.do(func() {
		a := o.ip.api
		p := a.str(path)
		rc, text := o.callMethod("reload", p)
		a.decref(p)
		if err = o.loadError(rc, text, runtime.PhaseReload); err == nil {
			o.readMode()
		}
	}); runErr != nil {
		return o.fail(runtime.PhaseReload, runErr)
	}
	if err == nil {
		o.spec.Path = path
	}
	return err
}

// Close drops the Operator instance (calling its drop() method if it has
// one; __del__ runs when the last reference goes), forgets its module and
// ends the worker thread. Calls after the first return nil.
func (o *operator) Close() error {
	var err error
	o.closeOnce.Do(func() {
		if runErr := o.w.do(func() {
			rc, text := o.callMethod("close")
			if rc == rcException {
				err = o.fail(runtime.PhaseClose, fmt.Errorf("%w in drop():\n%s", runtime.ErrPythonException, text))
			} else if rc != 0 {
				err = o.fail(runtime.PhaseClose, fmt.Errorf("dora._host.Host.close: %s", text))
			}
		}); runErr != nil {
			err = o.fail(runtime.PhaseClose, runErr)
			return
		}
		o.release()
	})
	return err
}

// release frees the operator's Python objects and ends its worker.
func (o *operator) release() {
	if o.w == nil {
		return
	}
	// Errors here are a broken DedicatedThread promise, already reported
	// by the call that found it; the objects then stay until exit.
	_ = o.w.do(func() {
		a := o.ip.api
		for _, s := range o.ids {
			a.decref(s)
		}
		o.ids = nil
		a.decref(o.eventFn)
		a.decref(o.host)
		o.eventFn, o.host = 0, 0
	})
	_ = o.w.stop()
	operators.Delete(o.handle)
}

// nativeSend implements dora._host._native_send(handle, output_id, payload,
// blob) -> None or error text (METH_FASTCALL). It runs on the thread that
// called send_output, with the GIL, which it releases around Sender.Send.
func nativeSend(self, args, nargs uintptr) uintptr {
	a := capiInUse.Load()
	if nargs != 4 {
		return a.str("_native_send takes 4 arguments")
	}
	argv := unsafe.Slice((*uintptr)(cmem(args)), 4)
	op, ok := operators.Load(int64(call1(a.fnLongAsLongLong, argv[0])))
	if !ok {
		return a.str("the operator is closed")
	}
	o := op.(*operator)
	id, ok := a.goString(argv[1])
	if !ok {
		return a.str("output id is not a str")
	}
	out := runtime.Output{ID: id}
	if argv[3] != a.none {
		blob, ok := a.bytesView(argv[3])
		if !ok {
			return a.str("metadata blob is not bytes")
		}
		if err := decodeMeta(blob, &out.Metadata); err != nil {
			return a.str(err.Error())
		}
	}
	var view pyBuffer
	if r := call3(a.fnGetBuffer, argv[2], uintptr(unsafe.Pointer(&view)), pyBufSimple); int32(r) != 0 {
		return a.str("data: " + a.fetchError())
	}
	if view.Len > 0 {
		out.Data = unsafe.Slice((*byte)(cmem(view.Buf)), view.Len)
	}
	ts := call0(a.fnSaveThread)
	err := o.send(out)
	call1(a.fnRestoreThread, ts)
	call1(a.fnBufferRelease, uintptr(unsafe.Pointer(&view)))
	if err != nil {
		return a.str(err.Error())
	}
	return a.newNone()
}

var errNoEvent = errors.New("send_output called outside on_event (from a thread the operator started?): outputs can only be sent while on_event runs")

func (o *operator) send(out runtime.Output) error {
	o.sendMu.Lock()
	defer o.sendMu.Unlock()
	if o.sender == nil {
		return errNoEvent
	}
	return o.sender.Send(out)
}

// nativeWrite implements dora._host._native_write(handle, fd, data) -> None
// or error text: print() output of an operator whose spec has Stdout or
// Stderr writers.
func nativeWrite(self, args, nargs uintptr) uintptr {
	a := capiInUse.Load()
	if nargs != 3 {
		return a.str("_native_write takes 3 arguments")
	}
	argv := unsafe.Slice((*uintptr)(cmem(args)), 3)
	op, ok := operators.Load(int64(call1(a.fnLongAsLongLong, argv[0])))
	if !ok {
		return a.str("the operator is closed")
	}
	o := op.(*operator)
	var w io.Writer = o.spec.Stdout
	if call1(a.fnLongAsLongLong, argv[1]) == 2 {
		w = o.spec.Stderr
	}
	data, ok := a.bytesView(argv[2])
	if !ok || w == nil {
		return a.str("nothing to write to")
	}
	ts := call0(a.fnSaveThread)
	_, err := w.Write(data)
	call1(a.fnRestoreThread, ts)
	if err != nil {
		return a.str(err.Error())
	}
	return a.newNone()
}
