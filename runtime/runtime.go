// Package runtime hosts the operators of a runtime node: it loads each
// with its loader, feeds each its own queue on its own goroutine, delivers
// outputs between operators of the node in-process, and publishes the rest
// through the daemon as node/operator/output.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
)

// Daemon is the runtime node's link to its daemon. IDs are node-level:
// "operator/input" and "operator/output".
type Daemon interface {
	// Next waits for the node's next event; io.EOF after the last one.
	Next(ctx context.Context) (Incoming, error)
	Send(id string, data []byte, md wire.Metadata) error
	CloseOutputs(ids ...string) error
	StopDataflow(reason string) error
}

// Incoming is one event of the node. Release frees its data.
type Incoming struct {
	Event
	Release func()
}

// Config configures Run.
type Config struct {
	Node *descriptor.Node
	// DataflowDir is the folder relative operator paths resolve against.
	DataflowDir string
	Loaders     map[descriptor.SourceKind]Loader
	// Isolated loads the operators marked `isolate: true`, whatever their
	// source kind, each in a process of its own (loaders/isolated). Nil
	// means this runtime cannot isolate, and such operators fail to load.
	Isolated Loader
	Logger   *slog.Logger
	// HotReload makes the runtime watch operator files and reload an
	// operator when its file changes.
	HotReload bool
	// StopTimeout bounds the wait for operators after Stop; a stuck
	// operator is abandoned (the process exits without it).
	StopTimeout time.Duration
	Stdout      io.Writer
	Stderr      io.Writer
}

// Run loads the node's operators and runs them until every operator has
// finished. It returns an error naming every operator that failed.
func Run(ctx context.Context, d Daemon, cfg Config) error {
	return Load(ctx, cfg).Run(ctx, d)
}

// Host is a runtime node whose operators are loaded.
type Host struct{ rt *nodeRuntime }

// Load loads every operator of the node. An operator that fails to load is
// reported by Run and its outputs close at once; the others still run. A
// runtime node loads before it connects to its daemon, so the dataflow's
// start barrier waits for slow loads (compiling a WASM module, importing
// Python packages) and no message is queued meanwhile.
//
// Each operator lives on one goroutine locked to its own OS thread, from
// Load to Close: thread-bound code (a Python thread state, a C library's
// thread-local state, a GUI handle) always sees the same thread, and
// loaders can rely on it (OperatorSpec.DedicatedThread).
func Load(ctx context.Context, cfg Config) *Host {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	rt := &nodeRuntime{cfg: cfg, ops: make(map[string]*hosted), start: make(chan struct{})}
	rt.build()
	home, _ := os.UserHomeDir()
	base := cfg.Node.BaseDir(cfg.DataflowDir, home)
	var loaded sync.WaitGroup
	for _, h := range rt.order {
		loaded.Add(1)
		rt.running.Add(1)
		go rt.operatorThread(ctx, h, base, loaded.Done)
	}
	loaded.Wait()
	return &Host{rt: rt}
}

// operatorThread is an operator's whole life on its own thread.
func (rt *nodeRuntime) operatorThread(ctx context.Context, h *hosted, base string, loaded func()) {
	// Never unlocked: the thread ends with the operator, and so does any
	// thread-local state its code left behind.
	goruntime.LockOSThread()
	defer rt.running.Done()
	rt.load(ctx, h, base)
	loaded()
	select {
	case <-rt.start:
	case <-ctx.Done():
		if h.op != nil {
			h.op.Close()
		}
		return
	}
	defer rt.finish(h)
	if h.op != nil {
		rt.serve(rt.runCtx, h)
	}
}

// Run runs the loaded operators with the daemon's events until every
// operator has finished.
func (host *Host) Run(ctx context.Context, d Daemon) error {
	rt := host.rt
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt.d, rt.runCtx = d, ctx
	close(rt.start)
	if rt.cfg.HotReload {
		go rt.watch(ctx)
	}
	go rt.dispatch(ctx)

	allDone := make(chan struct{})
	go func() { rt.running.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-rt.stopped:
		rt.awaitStop(allDone)
	}
	return rt.err()
}

// awaitStop gives operators StopTimeout to finish after Stop. Operators
// still waiting for a stuck neighbour's outputs are then stopped without
// them; operators still stuck after that are abandoned to the process exit.
func (rt *nodeRuntime) awaitStop(allDone <-chan struct{}) {
	select {
	case <-allDone:
		return
	case <-time.After(rt.cfg.StopTimeout):
	}
	for _, h := range rt.order {
		h.queue.closeAll()
	}
	select {
	case <-allDone:
		return
	case <-time.After(rt.cfg.StopTimeout):
	}
	for _, h := range rt.order {
		if !h.isFinished() {
			rt.fail(h, &OperatorError{Node: rt.cfg.Node.ID, Operator: h.spec.ID, Loader: h.spec.Source.Kind, Phase: PhaseEvent,
				Err: fmt.Errorf("%w: still busy %s after Stop; abandoned", ErrTimeout, 2*rt.cfg.StopTimeout)})
		}
	}
}

// hosted is one operator and its plumbing.
type hosted struct {
	spec     *descriptor.Operator
	opSpec   OperatorSpec
	op       Operator
	queue    *opQueue
	log      *slog.Logger
	outputs  map[string]bool
	local    map[string][]localRoute // output id → operators of this node
	mu       sync.Mutex
	finished bool
	err      error
}

// localRoute is an input of another operator of this node fed by an output.
type localRoute struct {
	to    *hosted
	input string
}

func (h *hosted) isFinished() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.finished
}

type nodeRuntime struct {
	cfg     Config
	d       Daemon
	ops     map[string]*hosted
	order   []*hosted
	running sync.WaitGroup

	// start is closed by Run, once d and runCtx are set.
	start  chan struct{}
	runCtx context.Context

	stopOnce sync.Once
	stopped  chan struct{}
}

func (rt *nodeRuntime) build() {
	rt.stopped = make(chan struct{})
	node := rt.cfg.Node
	for _, op := range node.Operators {
		inputs := make(map[string]*opInput, len(op.Inputs))
		for _, in := range op.Inputs {
			size := in.QueueSize
			if size <= 0 {
				size = descriptor.DefaultQueueSize
			}
			inputs[in.ID] = &opInput{ring: newRing(size), size: size, internal: in.Source.Node == node.ID}
		}
		h := &hosted{
			spec:    op,
			queue:   newOpQueue(inputs),
			log:     rt.cfg.Logger.With("node", node.ID, "operator", op.ID),
			outputs: make(map[string]bool, len(op.Outputs)),
			local:   make(map[string][]localRoute),
		}
		for _, o := range op.Outputs {
			h.outputs[o] = true
		}
		rt.ops[op.ID] = h
		rt.order = append(rt.order, h)
	}
	for _, to := range rt.order {
		for _, in := range to.spec.Inputs {
			if in.Source.Node == node.ID {
				if from := rt.ops[in.Source.Operator]; from != nil {
					from.local[in.Source.Output] = append(from.local[in.Source.Output], localRoute{to: to, input: in.ID})
				}
			}
		}
	}
}

func (rt *nodeRuntime) load(ctx context.Context, h *hosted, base string) {
	kind := h.spec.Source.Kind
	loader := rt.cfg.Loaders[kind]
	if h.spec.Isolate {
		loader = rt.cfg.Isolated
		if loader == nil {
			rt.fail(h, &OperatorError{Node: rt.cfg.Node.ID, Operator: h.spec.ID, Loader: kind, Phase: PhaseLoad,
				Err: errors.New("the operator is marked isolate: true, but this runtime cannot isolate operators")})
			return
		}
	}
	if loader == nil {
		rt.fail(h, &OperatorError{Node: rt.cfg.Node.ID, Operator: h.spec.ID, Loader: kind, Phase: PhaseLoad,
			Err: fmt.Errorf("this dora binary has no %s loader", kind)})
		return
	}
	path, err := h.spec.OperatorPath(base)
	if err != nil {
		rt.fail(h, &OperatorError{Node: rt.cfg.Node.ID, Operator: h.spec.ID, Loader: kind, Phase: PhaseLoad, Err: err})
		return
	}
	h.opSpec = OperatorSpec{
		NodeID: rt.cfg.Node.ID, Operator: h.spec, Path: path, WorkDir: base,
		Logger: h.log, Stdout: rt.cfg.Stdout, Stderr: rt.cfg.Stderr, DedicatedThread: true,
	}
	op, err := safeLoad(ctx, loader, h.opSpec)
	if err != nil {
		rt.fail(h, err)
		return
	}
	h.op = op
	h.log.Info("operator loaded", "loader", kind, "path", path)
}

func safeLoad(ctx context.Context, l Loader, spec OperatorSpec) (op Operator, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &OperatorError{Node: spec.NodeID, Operator: spec.Operator.ID, Loader: spec.Operator.Source.Kind, Phase: PhaseLoad,
				Err: fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())}
		}
	}()
	return l.Load(ctx, spec)
}

// dispatch hands the node's events to the operators' queues.
func (rt *nodeRuntime) dispatch(ctx context.Context) {
	for {
		in, err := rt.d.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				rt.cfg.Logger.Error("receiving events from the daemon", "err", err)
			}
			rt.stopAll()
			return
		}
		switch in.Type {
		case EventInput, EventInputClosed:
			opID, inputID, _ := strings.Cut(in.ID, "/")
			h := rt.ops[opID]
			if h == nil {
				rt.cfg.Logger.Warn("event for an unknown operator", "id", in.ID)
				if in.Release != nil {
					in.Release()
				}
				continue
			}
			if in.Type == EventInputClosed {
				h.queue.closeInput(inputID)
				continue
			}
			in.ID = inputID
			h.queue.push(inputID, queued{ev: in.Event, release: in.Release})
		case EventStop:
			rt.stopAll()
		case EventError:
			rt.cfg.Logger.Error("the daemon reported an error", "err", in.Error)
		}
	}
}

func (rt *nodeRuntime) stopAll() {
	rt.stopOnce.Do(func() {
		for _, h := range rt.order {
			h.queue.requestStop()
		}
		close(rt.stopped)
	})
}

// serve runs one operator's events until it finishes.
func (rt *nodeRuntime) serve(ctx context.Context, h *hosted) {
	out := &opSender{rt: rt, h: h}
	for {
		q, reload, stop, err := h.queue.next(ctx)
		if err != nil {
			return
		}
		if reload {
			rt.reload(ctx, h)
			continue
		}
		status, err := rt.call(ctx, h, &q.ev, out)
		q.done()
		if err != nil {
			var oe *OperatorError
			if errors.Is(err, ErrPanic) || (errors.As(err, &oe) && errors.Is(err, ErrTimeout)) {
				rt.fail(h, err)
				return
			}
			if errors.Is(err, ErrOperatorCrashed) {
				// Reported when the node ends even if the loader restarted
				// the operator; the status says whether it goes on.
				rt.fail(h, err)
			} else {
				h.log.Error("operator error", "event", q.ev.Type, "input", q.ev.ID, "err", err)
			}
		}
		switch status {
		case StatusStop:
			h.log.Info("operator returned STOP")
			return
		case StatusStopAll:
			h.log.Info("operator returned STOP_ALL: stopping the dataflow")
			if err := rt.d.StopDataflow(fmt.Sprintf("operator %s/%s returned STOP_ALL", rt.cfg.Node.ID, h.spec.ID)); err != nil {
				h.log.Error("asking the daemon to stop", "err", err)
			}
			return
		}
		if stop {
			return
		}
	}
}

// call runs OnEvent, turning a panic into an error.
func (rt *nodeRuntime) call(ctx context.Context, h *hosted, ev *Event, out Sender) (st Status, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &OperatorError{Node: rt.cfg.Node.ID, Operator: h.spec.ID, Loader: h.spec.Source.Kind, Phase: PhaseEvent,
				Err: fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())}
		}
	}()
	return h.op.OnEvent(ctx, ev, out)
}

func (rt *nodeRuntime) reload(ctx context.Context, h *hosted) {
	r, ok := h.op.(Reloader)
	if !ok {
		h.log.Warn("operator file changed, but its loader cannot reload it", "loader", h.spec.Source.Kind)
		return
	}
	if err := r.Reload(ctx, h.opSpec); err != nil {
		h.log.Error("hot reload failed; the previous code keeps running", "err", err)
		return
	}
	h.log.Info("operator reloaded", "path", h.opSpec.Path)
}

// finish closes a finished operator and its outputs.
func (rt *nodeRuntime) finish(h *hosted) {
	h.mu.Lock()
	if h.finished {
		h.mu.Unlock()
		return
	}
	h.finished = true
	h.mu.Unlock()
	h.queue.drain()
	if h.op != nil {
		if err := h.op.Close(); err != nil {
			h.log.Error("closing operator", "err", err)
		}
	}
	ids := make([]string, 0, len(h.spec.Outputs))
	for _, o := range h.spec.Outputs {
		ids = append(ids, h.spec.ID+"/"+o)
		for _, r := range h.local[o] {
			r.to.queue.closeInput(r.input)
		}
	}
	if len(ids) > 0 {
		if err := rt.d.CloseOutputs(ids...); err != nil {
			h.log.Debug("closing outputs", "err", err)
		}
	}
}

func (rt *nodeRuntime) fail(h *hosted, err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.mu.Unlock()
	h.log.Error("operator failed", "err", err)
}

func (rt *nodeRuntime) err() error {
	var errs []error
	for _, h := range rt.order {
		h.mu.Lock()
		if h.err != nil {
			errs = append(errs, h.err)
		}
		h.mu.Unlock()
	}
	return errors.Join(errs...)
}

// opSender publishes an operator's outputs: to operators of this node
// directly, and to the daemon for everyone else.
type opSender struct {
	rt *nodeRuntime
	h  *hosted
}

func (s *opSender) Send(out Output) error {
	h := s.h
	if !h.outputs[out.ID] {
		return fmt.Errorf("operator %q sent on output %q, which it does not declare (declared: %s)", h.spec.ID, out.ID, strings.Join(h.spec.Outputs, ", "))
	}
	if out.Metadata.Timestamp == 0 {
		out.Metadata.Timestamp = uint64(time.Now().UnixNano())
	}
	for _, r := range h.local[out.ID] {
		// The sender's buffer is only valid during Send.
		ev := Event{Type: EventInput, ID: r.input, Data: append([]byte(nil), out.Data...), Metadata: out.Metadata}
		r.to.queue.push(r.input, queued{ev: ev})
	}
	return s.rt.d.Send(h.spec.ID+"/"+out.ID, out.Data, out.Metadata)
}
