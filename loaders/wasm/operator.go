package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	wasmabi "github.com/dora-go/dora/abi/wasm"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Operator is a loaded wasm operator. It implements runtime.Operator and
// runtime.Reloader.
//
// After a trap, a guest exit or an exceeded event time limit the
// operator is dead: that OnEvent returns StatusStop with the error, and
// every later OnEvent returns StatusStop with an error wrapping the same
// cause, without running guest code. Reload revives it with a fresh
// instance.
type Operator struct {
	loader *Loader
	node   string
	id     string
	logger *slog.Logger

	inst *instance

	closeOnce sync.Once
	closeErr  error
}

// Load implements runtime.Loader.
func (l *Loader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	o := &Operator{loader: l, node: spec.NodeID}
	if spec.Operator != nil {
		o.id = spec.Operator.ID
	}
	o.logger = spec.Logger
	if o.logger == nil {
		o.logger = l.logger.With("node", o.node, "operator", o.id)
	}
	inst, err := l.instantiate(ctx, spec, o.logger)
	if err != nil {
		return nil, o.wrap(err, runtime.PhaseLoad)
	}
	o.inst = inst
	return o, nil
}

// wrap makes err an *runtime.OperatorError in the phase a loadError
// carries, or in phase.
func (o *Operator) wrap(err error, phase runtime.Phase) error {
	var le *loadError
	if errors.As(err, &le) {
		if phase != runtime.PhaseReload {
			phase = le.phase
		}
		err = le.err
	}
	return &runtime.OperatorError{Node: o.node, Operator: o.id, Loader: descriptor.SourceWASM, Phase: phase, Err: err}
}

func align8(n int) int { return (n + 7) &^ 7 }

// OnEvent implements runtime.Operator: it writes the event into the
// guest's input buffer with one copy per part (data, id, metadata) and
// calls dora_on_event once.
func (o *Operator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (runtime.Status, error) {
	in := o.inst
	if in == nil {
		return runtime.StatusStop, o.wrap(errors.New("the operator is closed"), runtime.PhaseEvent)
	}
	if in.dead != nil {
		return runtime.StatusStop, o.wrap(fmt.Errorf("stopped after an earlier failure: %w", in.dead), runtime.PhaseEvent)
	}

	var data []byte
	var id string
	metaLen := 0
	switch ev.Type {
	case runtime.EventInput:
		data, id = ev.Data, ev.ID
		metaLen = wasmabi.MetadataSize(&ev.Metadata)
	case runtime.EventInputClosed:
		id = ev.ID
	case runtime.EventError:
		data = []byte(ev.Error)
	case runtime.EventStop:
	default:
		return runtime.StatusContinue, o.wrap(fmt.Errorf("unknown event type %v", ev.Type), runtime.PhaseEvent)
	}

	// Layout in the buffer: data first (8-aligned, for Arrow buffers),
	// then the id, then the metadata block.
	idOff := align8(len(data))
	metaOff := idOff + len(id)
	need := metaOff + metaLen
	if uint64(need) > uint64(^uint32(0)) {
		return runtime.StatusContinue, o.wrap(fmt.Errorf("a %d byte event does not fit a wasm32 guest", need), runtime.PhaseEvent)
	}
	st := &in.stack
	*st = [7]uint64{uint64(ev.Type)}
	if need > 0 {
		if err := in.ensureBuffer(ctx, uint32(need)); err != nil {
			return o.failed(in, err)
		}
		buf, ok := in.mem.Read(in.bufPtr, uint32(need))
		if !ok {
			return o.failed(in, fmt.Errorf("%s returned %#x, and %d bytes from there are outside the guest's memory", wasmabi.ExportAlloc, in.bufPtr, need))
		}
		copy(buf, data)
		copy(buf[idOff:], id)
		if metaLen > 0 {
			wasmabi.AppendMetadata(buf[metaOff:metaOff], &ev.Metadata)
		}
		base := uint64(in.bufPtr)
		if len(id) > 0 {
			st[1], st[2] = base+uint64(idOff), uint64(len(id))
		}
		if len(data) > 0 {
			st[3], st[4] = base, uint64(len(data))
		}
		if metaLen > 0 {
			st[5], st[6] = base+uint64(metaOff), uint64(metaLen)
		}
	}

	in.sender, in.sendErr, in.errSet = out, nil, false
	err := in.call(ctx, in.onEvent, wasmabi.ExportOnEvent, st[:])
	in.sender = nil
	if err != nil {
		return o.failed(in, err)
	}
	res := int32(uint32(st[0]))
	status := runtime.StatusContinue
	if res >= 0 && res <= wasmabi.StatusStopAll {
		status = runtime.Status(res)
	}
	var evErr error
	if res < 0 || res > wasmabi.StatusStopAll || in.errSet {
		evErr = in.guestError(wasmabi.ExportOnEvent, res)
	}
	if in.sendErr != nil {
		sendErr := fmt.Errorf("send_output %q: %w", in.sendID, in.sendErr)
		if evErr == nil {
			evErr = sendErr
		} else {
			evErr = fmt.Errorf("%w (and %w)", evErr, sendErr)
		}
		in.sendErr = nil
	}
	if evErr != nil {
		return status, o.wrap(evErr, runtime.PhaseEvent)
	}
	return status, nil
}

// failed reports an error that leaves the instance dead (or a ctx done
// before the call, which does not).
func (o *Operator) failed(in *instance, err error) (runtime.Status, error) {
	if in.dead != nil {
		o.logger.Error("wasm operator stopped", "err", err)
		return runtime.StatusStop, o.wrap(err, runtime.PhaseEvent)
	}
	return runtime.StatusContinue, o.wrap(err, runtime.PhaseEvent)
}

// ensureBuffer makes the guest's input buffer hold n bytes, asking the
// guest for a bigger one when needed. It grows to the next power of two
// (exactly n above 16 MiB) so that a stream of growing inputs reallocates
// rarely.
func (in *instance) ensureBuffer(ctx context.Context, n uint32) error {
	if n <= in.bufCap && in.bufPtr != 0 {
		return nil
	}
	size := uint64(4096)
	for size < uint64(n) && size < 16<<20 {
		size <<= 1
	}
	if size < uint64(n) {
		size = (uint64(n) + 0xffff) &^ 0xffff
	}
	if size > uint64(^uint32(0)) {
		size = uint64(n)
	}
	var st [1]uint64
	st[0] = size
	if err := in.call(ctx, in.alloc, wasmabi.ExportAlloc, st[:]); err != nil {
		return err
	}
	ptr := uint32(st[0])
	if ptr == 0 {
		return fmt.Errorf("%w: %s(%d) returned 0 (linear memory %s of the operator's %s limit)", ErrMemoryLimit, wasmabi.ExportAlloc, size, mib(uint64(in.mem.Size())), mib(in.limit))
	}
	in.bufPtr, in.bufCap = ptr, uint32(size)
	return nil
}

// Reload implements runtime.Reloader: it instantiates the module spec
// names (the same path with new contents, or another one) with spec's
// sandbox, initialises it and, when both the old and the new module
// implement the state hooks (dora_save_state / dora_restore_state),
// carries the state over. The old instance keeps running on error.
func (o *Operator) Reload(ctx context.Context, spec runtime.OperatorSpec) error {
	old := o.inst
	if old == nil {
		return o.wrap(errors.New("the operator is closed"), runtime.PhaseReload)
	}
	next, err := o.loader.instantiate(ctx, spec, o.logger)
	if err != nil {
		return o.wrap(err, runtime.PhaseReload)
	}
	if old.dead == nil && old.save != nil && next.restore != nil {
		if err := transferState(ctx, old, next); err != nil {
			next.close(ctx)
			o.loader.release()
			return o.wrap(err, runtime.PhaseReload)
		}
	}
	o.inst = next
	old.close(ctx)
	o.loader.release()
	return nil
}

func transferState(ctx context.Context, old, next *instance) error {
	var st [2]uint64
	old.state, old.errSet, old.inState = old.state[:0], false, true
	err := old.call(ctx, old.save, wasmabi.ExportSaveState, st[:1])
	old.inState = false
	if err != nil {
		return fmt.Errorf("old instance: %w", err)
	}
	if res := int32(uint32(st[0])); res != 0 || old.errSet {
		return fmt.Errorf("old instance: %w", old.guestError(wasmabi.ExportSaveState, res))
	}
	state := old.state
	if len(state) > 0 {
		if err := next.ensureBuffer(ctx, uint32(len(state))); err != nil {
			return fmt.Errorf("new instance: %w", err)
		}
		if !next.mem.Write(next.bufPtr, state) {
			return fmt.Errorf("new instance: %s buffer is outside its memory", wasmabi.ExportAlloc)
		}
		st[0], st[1] = uint64(next.bufPtr), uint64(len(state))
	} else {
		st[0], st[1] = 0, 0
	}
	next.errSet = false
	if err := next.call(ctx, next.restore, wasmabi.ExportRestoreState, st[:]); err != nil {
		return fmt.Errorf("new instance: %w", err)
	}
	if res := int32(uint32(st[0])); res != 0 || next.errSet {
		return fmt.Errorf("new instance: %w", next.guestError(wasmabi.ExportRestoreState, res))
	}
	return nil
}

// Close implements runtime.Operator: it calls dora_drop (under the event
// time limit) unless the instance is dead, then closes its runtime.
func (o *Operator) Close() error {
	o.closeOnce.Do(func() {
		if in := o.inst; in != nil {
			o.closeErr = in.close(context.Background())
			o.inst = nil
			o.loader.release()
		}
		if o.closeErr != nil {
			o.closeErr = o.wrap(o.closeErr, runtime.PhaseClose)
		}
	})
	return o.closeErr
}

// close drops and closes the instance. It does not release the loader.
func (in *instance) close(ctx context.Context) error {
	var err error
	if in.dead == nil && in.drop != nil {
		err = in.call(ctx, in.drop, wasmabi.ExportDrop, nil)
	}
	in.closeRuntime()
	return err
}
