package sharedlib

import (
	"errors"
	"fmt"
	"sync"

	"github.com/dora-go/dora/runtime"
)

// sendEnv is what an operator's env_ptr designates: the Sender of the
// dora_on_event call in progress, if any. C only ever sees its handle, an
// integer key into envs, never a Go pointer.
type sendEnv struct {
	handle uintptr

	mu sync.Mutex
	// sender is non-nil only while a dora_on_event call of the operator is
	// in progress. Sends are serialised under mu, so C threads of one
	// operator may call send_output concurrently.
	sender runtime.Sender
	// sendErr is the first send failure of the current call, and errText
	// the message handed back to C for it, so OnEvent can recognise it when
	// the operator returns it and keep the Go error chain.
	sendErr error
	errText string
	// ids interns output ids so that steady-state sends do not allocate.
	ids map[string]string
}

var (
	envsMu   sync.RWMutex
	envs     = map[uintptr]*sendEnv{}
	nextEnv  uintptr
	errNoEnv = errors.New("send_output called with an unknown env_ptr (operator closed?)")
	// errOutsideCall: the operator called send_output while none of its
	// dora_on_event calls was in progress (from a thread it started).
	errOutsideCall = errors.New("send_output called outside of dora_on_event")
)

// newEnv registers a fresh env. Handles start at 1 (env_ptr is non-null in
// dora-rs) and are never reused, so a stale handle finds nothing.
func newEnv() *sendEnv {
	envsMu.Lock()
	defer envsMu.Unlock()
	nextEnv++
	e := &sendEnv{handle: nextEnv, ids: map[string]string{}}
	envs[e.handle] = e
	return e
}

func dropEnv(e *sendEnv) {
	envsMu.Lock()
	delete(envs, e.handle)
	envsMu.Unlock()
}

func lookupEnv(h uintptr) *sendEnv {
	envsMu.RLock()
	e := envs[h]
	envsMu.RUnlock()
	return e
}

// begin and end bracket a dora_on_event call.
func (e *sendEnv) begin(s runtime.Sender) {
	e.mu.Lock()
	e.sender, e.sendErr, e.errText = s, nil, ""
	e.mu.Unlock()
}

func (e *sendEnv) end() (sendErr error, errText string) {
	e.mu.Lock()
	sendErr, errText = e.sendErr, e.errText
	e.sender, e.sendErr, e.errText = nil, nil, ""
	e.mu.Unlock()
	return sendErr, errText
}

// sendOutputTrampoline is the C function every SendOutput_t.call points
// at: DoraResult_t call(void *env_ptr, Output_t output). purego passes the
// 72-byte Output_t from the stack and writes the 24-byte DoraResult_t
// through the caller's hidden result pointer. It takes ownership of the
// output's malloc'd buffers and frees them whatever happens.
func sendOutputTrampoline(env uintptr, out cOutput) (res cResult) {
	defer func() {
		cFree(out.id.ptr)
		if out.data.ptr != out.id.ptr {
			cFree(out.data.ptr)
		}
		if p := out.meta.otel.ptr; p != out.id.ptr && p != out.data.ptr {
			cFree(p)
		}
	}()
	e := lookupEnv(env)
	if e == nil {
		return errorResult(errNoEnv.Error())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sender == nil {
		return errorResult(errOutsideCall.Error())
	}
	err := e.send(out)
	if err == nil {
		return cResult{}
	}
	text := "send_output: " + err.Error()
	if e.sendErr == nil {
		e.sendErr, e.errText = err, text
	}
	return errorResult(text)
}

// send calls the Sender with e.mu held, turning a panic into an error: a
// Go panic must not unwind through C frames.
func (e *sendEnv) send(out cOutput) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w in Sender.Send: %v", runtime.ErrPanic, r)
		}
	}()
	idBytes := cBytes(out.id.ptr, out.id.len)
	id, ok := e.ids[string(idBytes)]
	if !ok {
		id = string(idBytes)
		if len(e.ids) < 256 {
			e.ids[id] = id
		}
	}
	o := runtime.Output{ID: id, Data: cBytes(out.data.ptr, out.data.len)}
	if out.meta.otel.len > 0 {
		o.Metadata.OpenTelemetryContext = string(cBytes(out.meta.otel.ptr, out.meta.otel.len))
	}
	return e.sender.Send(o)
}

// errorResult makes the DoraResult_t of a failed send; its buffer is
// malloc'd and owned by the operator (rule 3 of operator_types.h).
func errorResult(msg string) cResult {
	v, ok := cString(msg)
	if !ok {
		return cResult{}
	}
	return cResult{err: v}
}
