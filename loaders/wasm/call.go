package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	wasmabi "github.com/dora-go/dora/abi/wasm"
	"github.com/dora-go/dora/runtime"
)

// eventCtx is the context every guest call runs under. It is made once
// per instance and re-armed for each call, so a call allocates no context
// and starts no timer: the loader's watchdog (watchdog.go) polls the armed
// contexts and closes done when a call outlives its time limit or when
// the caller's context is done. wazero (WithCloseOnContextDone) then
// closes the module, which is why closing done is final: the instance is
// dead afterwards anyway.
type eventCtx struct {
	done chan struct{}

	// parent is the caller's context during a call, else nil. Only the
	// calling goroutine writes it (under mu); the watchdog reads it under mu.
	parent   context.Context
	mu       sync.Mutex
	deadline time.Time // zero: no time limit
	err      error
}

var _ context.Context = (*eventCtx)(nil)

func newEventCtx() *eventCtx { return &eventCtx{done: make(chan struct{})} }

func (c *eventCtx) Done() <-chan struct{} { return c.done }

func (c *eventCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *eventCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, !c.deadline.IsZero()
}

// Value is called on the calling goroutine, which alone writes parent.
func (c *eventCtx) Value(key any) any {
	if p := c.parent; p != nil {
		return p.Value(key)
	}
	return nil
}

// arm starts a call under parent, limited to d when d > 0.
func (c *eventCtx) arm(parent context.Context, d time.Duration) {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	c.mu.Lock()
	c.parent, c.deadline = parent, deadline
	c.mu.Unlock()
}

// disarm ends the call; it returns the error that ended it, if any.
func (c *eventCtx) disarm() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parent, c.deadline = nil, time.Time{}
	return c.err
}

// check is the watchdog's poll: it ends an armed call whose deadline has
// passed or whose caller's context is done. It reports a call that ran
// past its deadline and cannot be interrupted (no time limit compiled in).
func (c *eventCtx) check(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parent == nil || c.err != nil {
		return
	}
	switch {
	case !c.deadline.IsZero() && !now.Before(c.deadline):
		c.err = context.DeadlineExceeded
	case c.parent.Err() != nil:
		c.err = c.parent.Err()
	default:
		return
	}
	close(c.done)
}

// call runs fn under the instance's time limit and ctx, and turns what
// went wrong into an error naming fn. Traps, the time limit and proc_exit
// leave the instance dead (wazero closes the module, or its state cannot
// be trusted); in.dead is set and the error wraps runtime.ErrTrap or
// runtime.ErrTimeout.
func (in *instance) call(ctx context.Context, fn api.Function, name string, stack []uint64) error {
	if in.dead != nil {
		return in.dead
	}
	if err := ctx.Err(); err != nil {
		// Checked here: wazero would close the module on a done context.
		return err
	}
	if in.ectx == nil {
		// No time limit: nothing can interrupt the call (see
		// Config.EventTimeout), and there is nothing to arm.
		if err := fn.CallWithStack(ctx, stack); err != nil {
			in.dead = in.classify(name, err, nil, ctx.Err())
			return in.dead
		}
		return nil
	}
	in.ectx.arm(ctx, in.timeout)
	err := fn.CallWithStack(in.ectx, stack)
	ctxErr := in.ectx.disarm()
	if err == nil {
		return nil
	}
	in.dead = in.classify(name, err, ctxErr, ctx.Err())
	return in.dead
}

func (in *instance) classify(name string, err, ctxErr, parentErr error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch code := exit.ExitCode(); {
		case code == sys.ExitCodeDeadlineExceeded && errors.Is(ctxErr, context.DeadlineExceeded) && parentErr == nil:
			return fmt.Errorf("%w: %s ran longer than the %v event time limit; the instance was stopped", runtime.ErrTimeout, name, in.timeout)
		case code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled:
			if ctxErr == nil {
				ctxErr = context.Canceled
			}
			return fmt.Errorf("%s interrupted, the instance was stopped: %w", name, ctxErr)
		default:
			return fmt.Errorf("%w: %s: the guest exited with code %d (%s)", runtime.ErrTrap, name, code, in.memoryNote())
		}
	}
	// A wasm trap ("wasm error: unreachable", "... out of bounds memory
	// access", ...) with the guest's stack, or a host function that
	// panicked, which wazero reports the same way.
	msg := strings.TrimSpace(err.Error())
	note := in.memoryNote()
	if strings.Contains(msg, ".runtime.abort(") {
		note += "; the Go runtime aborted on a fatal error, such as running out of memory, and printed why on the operator's stderr"
	}
	return fmt.Errorf("%w: %s (%s): %s", runtime.ErrTrap, name, note, msg)
}

// memoryNote helps tell an exhausted memory limit from other failures.
func (in *instance) memoryNote() string {
	size := uint64(0)
	if in.mem != nil {
		size = uint64(in.mem.Size())
	}
	return fmt.Sprintf("linear memory %s of the operator's %s limit", mib(size), mib(in.limit))
}

// guestError builds the error a guest reported through set_error and a
// negative result of fn.
func (in *instance) guestError(fn string, res int32) error {
	msg := string(in.errBuf)
	if !in.errSet {
		msg = fmt.Sprintf("%s returned %d", fn, res)
	}
	switch {
	case res == wasmabi.ResultPanic:
		return fmt.Errorf("%w: %s", runtime.ErrPanic, msg)
	case res > wasmabi.StatusStopAll && fn == wasmabi.ExportOnEvent:
		return fmt.Errorf("%s returned %d, which is not a dora status", fn, res)
	}
	return fmt.Errorf("%w: %s", runtime.ErrOperatorError, msg)
}
