package sharedlib

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/dora-go/dora/runtime"
)

var (
	errClosed      = errors.New("operator is closed")
	errABIMismatch = errors.New("the function did not return its result through the hidden result pointer: was it built against another operator_types.h?")
)

// operator is a loaded shared-library operator.
type operator struct {
	info opInfo

	// mu serialises OnEvent, Reload and Close: Close waits for an event in
	// progress, and the library is never unloaded under a running call.
	mu     sync.Mutex
	inst   *instance
	closed bool

	// scratch is this operator's per-event block in C memory (see
	// cScratch); strBuf is a C buffer the event's strings are copied into,
	// whose address also serves as the non-NULL ptr of empty buffers.
	scratch *cScratch
	strBuf  unsafe.Pointer
	strCap  uintptr

	env    *sendEnv
	pinner goruntime.Pinner
	pinned bool
	// args is dora_on_event's argument list: passing a slice that exists
	// already keeps SyscallN's variadic parameter from allocating. It
	// holds C addresses only.
	args [4]uintptr
}

const initialStrCap = 256

func newOperator(info opInfo, inst *instance) (*operator, error) {
	s := (*cScratch)(cCalloc(unsafe.Sizeof(cScratch{})))
	buf := cMalloc(initialStrCap)
	if s == nil || buf == nil {
		cFree(uintptr(unsafe.Pointer(s)))
		cFree(uintptr(buf))
		return nil, errors.New("malloc failed")
	}
	o := &operator{info: info, inst: inst, scratch: s, strBuf: buf, strCap: initialStrCap, env: newEnv()}
	s.send.sendOutput = cClosure{env: o.env.handle, call: libc.sendOutputCB, release: libc.noopCB, retain: libc.noopCB}
	return o, nil
}

// release frees the operator's C memory and its env handle.
func (o *operator) release() {
	dropEnv(o.env)
	cFree(uintptr(unsafe.Pointer(o.scratch)))
	cFree(uintptr(o.strBuf))
	o.scratch, o.strBuf, o.strCap = nil, nil, 0
}

// initInstance calls dora_init_operator of inst and keeps its context.
func (o *operator) initInstance(inst *instance, phase runtime.Phase) error {
	var r cInitResult
	if inst.fast {
		res := (*cInitResult)(unsafe.Pointer(&o.scratch.res))
		*res = cInitResult{}
		r1, _, _ := purego.SyscallN(inst.init, uintptr(unsafe.Pointer(res)))
		if r1 != uintptr(unsafe.Pointer(res)) {
			flushStdout()
			return o.info.fail(phase, fmt.Errorf("%s: %w", symInit, errABIMismatch))
		}
		r = *res
	} else {
		r = inst.initFn()
	}
	flushStdout()
	if r.result.err.ptr != 0 {
		msg := takeCString(r.result.err)
		return o.info.fail(phase, fmt.Errorf("%s: %w: %s", symInit, runtime.ErrOperatorError, msg))
	}
	inst.ctx = r.ctx
	return nil
}

// dropInstance calls dora_drop_operator of inst, then dlcloses it.
func (o *operator) dropInstance(inst *instance, phase runtime.Phase) error {
	var r cResult
	var errs []error
	if inst.fast {
		res := (*cResult)(unsafe.Pointer(&o.scratch.res))
		*res = cResult{}
		r1, _, _ := purego.SyscallN(inst.drop, uintptr(unsafe.Pointer(res)), inst.ctx)
		if r1 != uintptr(unsafe.Pointer(res)) {
			errs = append(errs, fmt.Errorf("%s: %w", symDrop, errABIMismatch))
		} else {
			r = *res
		}
	} else {
		r = inst.dropFn(inst.ctx)
	}
	flushStdout()
	if r.err.ptr != 0 {
		msg := takeCString(r.err)
		errs = append(errs, fmt.Errorf("%s: %w: %s", symDrop, runtime.ErrOperatorError, msg))
	}
	if err := inst.unload(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return o.info.fail(phase, errors.Join(errs...))
	}
	return nil
}

// OnEvent implements runtime.Operator. The C call cannot be interrupted:
// ctx is only checked before it.
func (o *operator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (runtime.Status, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return runtime.StatusContinue, o.info.fail(runtime.PhaseEvent, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return runtime.StatusContinue, o.info.fail(runtime.PhaseEvent, err)
	}
	if err := o.fillEvent(ev); err != nil {
		return runtime.StatusContinue, o.info.fail(runtime.PhaseEvent, err)
	}
	o.env.begin(out)
	res, callErr := o.callOnEvent()
	sendErr, sendErrText := o.env.end()
	// No Go pointer stays in C memory past the call.
	o.scratch.in.data = cVec{}
	if o.pinned {
		o.pinner.Unpin()
		o.pinned = false
	}
	flushStdout()
	if callErr != nil {
		return runtime.StatusContinue, o.info.fail(runtime.PhaseEvent, callErr)
	}

	var err error
	switch {
	case res.result.err.ptr != 0:
		msg := takeCString(res.result.err)
		if sendErr != nil && msg == sendErrText {
			// The operator passed send_output's error on: keep the Go
			// error chain (errors.Is on the Sender's error works).
			err = fmt.Errorf("send_output: %w", sendErr)
		} else {
			err = fmt.Errorf("%w: %s", runtime.ErrOperatorError, msg)
		}
	case sendErr != nil:
		err = fmt.Errorf("send_output failed and the operator ignored it: %w", sendErr)
	}
	st := runtime.Status(res.status)
	switch st {
	case runtime.StatusContinue, runtime.StatusStop, runtime.StatusStopAll:
	default:
		err = errors.Join(err, fmt.Errorf("%s returned an invalid DoraStatus_t %d", symOnEvent, res.status))
		st = runtime.StatusContinue
	}
	if err != nil {
		return st, o.info.fail(runtime.PhaseEvent, err)
	}
	return st, nil
}

// fillEvent writes ev into the scratch RawEvent_t. Strings are copied into
// strBuf (C memory, NUL-terminated); Go input data is pinned and passed in
// place for the duration of the call.
func (o *operator) fillEvent(ev *runtime.Event) error {
	s := o.scratch
	need := uintptr(len(ev.ID)+len(ev.Metadata.OpenTelemetryContext)+len(ev.Error)) + 3
	if need > o.strCap {
		if err := o.growStrBuf(need); err != nil {
			return err
		}
	}
	var off uintptr
	s.ev = cRawEvent{}
	switch ev.Type {
	case runtime.EventInput:
		id := o.putString(&off, ev.ID)
		otel := o.putString(&off, ev.Metadata.OpenTelemetryContext)
		data := cVec{ptr: uintptr(o.strBuf)}
		if n := len(ev.Data); n > 0 {
			p := unsafe.SliceData(ev.Data)
			o.pinner.Pin(p)
			o.pinned = true
			data = cVec{ptr: uintptr(unsafe.Pointer(p)), len: uintptr(n), cap: uintptr(n)}
		}
		s.in = cInput{id: id, data: data, meta: cMetadata{otel: otel}}
		s.ev.input = uintptr(unsafe.Pointer(&s.in))
	case runtime.EventInputClosed:
		s.ev.inputClosed = o.putString(&off, ev.ID)
	case runtime.EventStop:
		s.ev.stop = true
	case runtime.EventError:
		s.ev.err = o.putString(&off, ev.Error)
	default:
		return fmt.Errorf("unknown event type %v", ev.Type)
	}
	return nil
}

// putString copies str to strBuf at *off, NUL-terminated, and returns its
// Vec (never a NULL ptr).
func (o *operator) putString(off *uintptr, str string) cVec {
	p := unsafe.Add(o.strBuf, *off)
	b := unsafe.Slice((*byte)(p), len(str)+1)
	copy(b, str)
	b[len(str)] = 0
	*off += uintptr(len(str)) + 1
	return cVec{ptr: uintptr(p), len: uintptr(len(str)), cap: uintptr(len(str))}
}

func (o *operator) growStrBuf(need uintptr) error {
	n := max(need, 2*o.strCap)
	p := cMalloc(n)
	if p == nil {
		return fmt.Errorf("malloc(%d) failed", n)
	}
	cFree(uintptr(o.strBuf))
	o.strBuf, o.strCap = p, n
	return nil
}

// callOnEvent calls dora_on_event(&ev, &send, ctx).
func (o *operator) callOnEvent() (cOnEventResult, error) {
	s, inst := o.scratch, o.inst
	ev, send := uintptr(unsafe.Pointer(&s.ev)), uintptr(unsafe.Pointer(&s.send))
	if !inst.fast {
		return inst.eventFn(ev, send, inst.ctx), nil
	}
	res := &s.res
	*res = cOnEventResult{}
	o.args = [4]uintptr{uintptr(unsafe.Pointer(res)), ev, send, inst.ctx}
	r1, _, _ := purego.SyscallN(inst.event, o.args[:]...)
	if r1 != uintptr(unsafe.Pointer(res)) {
		return cOnEventResult{}, fmt.Errorf("%s: %w", symOnEvent, errABIMismatch)
	}
	return *res, nil
}

// Close implements runtime.Operator: dora_drop_operator, then dlclose. It
// must be the last call: the runtime calls it once the operator's event
// loop has drained, and it waits for an OnEvent still in progress. Threads
// the operator started must be gone by then (see operator_api.h). Later
// calls return nil.
func (o *operator) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	err := o.dropInstance(o.inst, runtime.PhaseClose)
	o.inst = nil
	o.release()
	FlushC()
	return err
}

// Reload implements runtime.Reloader: it loads a private copy of the
// library at spec.Path (so dlopen cannot hand back the loaded one), calls
// its dora_init_operator, then drops and unloads the old instance. No state
// survives: the new instance starts from dora_init_operator, with fresh
// static variables. On error the old instance keeps running.
func (o *operator) Reload(ctx context.Context, spec runtime.OperatorSpec) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return o.info.fail(runtime.PhaseReload, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return o.info.fail(runtime.PhaseReload, err)
	}
	file, dir, err := copyForReload(spec.Path)
	if err != nil {
		return o.info.fail(runtime.PhaseReload, err)
	}
	inst, err := dlopenInstance(o.info, file, filepath.Base(file), runtime.PhaseReload)
	os.RemoveAll(dir) // the mapping outlives the file
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = inst.unload()
		return o.info.fail(runtime.PhaseReload, err)
	}
	if err := o.initInstance(inst, runtime.PhaseReload); err != nil {
		_ = inst.unload()
		return err
	}
	old := o.inst
	o.inst = inst
	if err := o.dropInstance(old, runtime.PhaseReload); err != nil {
		// The new code runs; only the old instance's farewell failed.
		o.info.logger.Warn("dropping the replaced operator instance failed", "err", err)
	}
	o.info.logger.Info("shared-library operator reloaded", "path", spec.Path)
	return nil
}
