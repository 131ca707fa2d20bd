package daemon

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/handoff"
	"golang.org/x/sys/unix"
)

// instance is one running dataflow on this daemon.
type instance struct {
	id     string
	df     *descriptor.Dataflow
	opts   Options
	log    *slog.Logger
	logDir string
	outMu  sync.Mutex

	nodes   []*nodeState
	timers  map[time.Duration][]*inputQueue
	regions regionTable
	// handoff lets senders answer waiting receivers directly; nil when
	// no node asked for it.
	handoff atomic.Pointer[handoff.Table]
	// cl links the instance to the coordinator and the other machines
	// when it runs part of a distributed dataflow; nil for `dora run`.
	cl *cluster

	mu            sync.Mutex
	nregistered   int
	allRegistered chan struct{}
	stopReason    string
	stopGrace     time.Duration // overrides opts.Grace when set
	stopCh        chan struct{}
	exited        chan *nodeState
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Run runs every node of df on this machine until they have all exited,
// and reports how each ended. Cancelling ctx stops the dataflow: every node
// gets Stop, and what is still running after the grace period is killed.
// The error is for failures of the daemon itself; failed nodes are in the
// Result (see Result.Err).
func Run(ctx context.Context, df *descriptor.Dataflow, opts Options) (*Result, error) {
	opts.fill()
	inst := newInstance(df, opts, nil)
	if err := os.MkdirAll(inst.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the log folder: %w", err)
	}
	return inst.run(ctx), nil
}

// newInstance prepares the nodes of df that run here: all of them, or
// with a cluster only those placed on this machine.
func newInstance(df *descriptor.Dataflow, opts Options, cl *cluster) *instance {
	id := opts.DataflowID
	if id == "" {
		id = NewUUID()
	}
	if opts.ShmThreshold <= 0 {
		opts.ShmThreshold = wire.DefaultShmThreshold
	}
	inst := &instance{
		id:            id,
		df:            df,
		opts:          opts,
		log:           opts.Logger.With("dataflow", id),
		logDir:        opts.LogDir,
		timers:        make(map[time.Duration][]*inputQueue),
		allRegistered: make(chan struct{}),
		stopCh:        make(chan struct{}),
		exited:        make(chan *nodeState, len(df.Nodes)),
		cl:            cl,
	}
	if inst.logDir == "" {
		inst.logDir = filepath.Join(df.Dir, "out", id)
	}
	byID := make(map[string]*nodeState, len(df.Nodes))
	for _, spec := range df.Nodes {
		if !cl.runsHere(spec.ID) {
			continue
		}
		n := &nodeState{
			inst: inst, id: spec.ID, spec: spec,
			outputs: make(map[string]*outputState),
			regions: make(map[uint64]*region),
			known:   make(map[uint64]bool),
			held:    make(map[uint64]int),
			early:   make(map[uint64]int),
			result:  NodeResult{ID: spec.ID, ExitCode: -1},
		}
		for _, o := range nodeOutputs(spec) {
			n.outputs[o] = &outputState{id: o}
		}
		n.slot = len(inst.nodes)
		inst.nodes = append(inst.nodes, n)
		byID[spec.ID] = n
	}
	for _, n := range inst.nodes {
		for _, in := range nodeInputs(n.spec) {
			spec := findInput(n.spec, in.ID)
			src := spec.Source
			if n.spec.IsRuntime() && src.Node == n.id {
				continue // operators of one runtime node feed each other in-process
			}
			q := newInputQueue(n, in.ID, in.QueueSize)
			if src.IsTimer() {
				inst.timers[src.Timer] = append(inst.timers[src.Timer], q)
			} else if sender := byID[src.Node]; sender != nil {
				out := sender.outputs[src.OutputID()]
				out.subs = append(out.subs, q)
				if !slices.Contains(out.nodes, n) {
					out.nodes = append(out.nodes, n)
				}
			} else {
				cl.feedFromRemote(src, q)
			}
			n.queues = append(n.queues, q)
			n.openInputs++
		}
	}
	cl.publishToRemote(inst, byID)
	inst.allowHandoffs()
	return inst
}

// findInput returns the descriptor input behind a node-level input id.
func findInput(n *descriptor.Node, id string) descriptor.Input {
	inputs := n.Inputs
	if n.IsRuntime() {
		opID, inID, _ := strings.Cut(id, "/")
		inputs, id = n.Operator(opID).Inputs, inID
	}
	for _, in := range inputs {
		if in.ID == id {
			return in
		}
	}
	panic("daemon: input " + id + " vanished from node " + n.ID)
}

func (inst *instance) run(ctx context.Context) *Result {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	var running []*nodeState
	for i, n := range inst.nodes {
		if err := n.spawn(home); err != nil {
			n.result.Err = fmt.Errorf("could not start: %w", err)
			inst.requestStop(fmt.Sprintf("node %q could not start", n.id))
			for _, later := range inst.nodes[i+1:] {
				later.result.Err = fmt.Errorf("not started, because node %q could not start", n.id)
			}
			break
		}
		running = append(running, n)
		n.loops.Add(2)
		go func() { defer n.loops.Done(); n.controlLoop() }()
		go func() { defer n.loops.Done(); n.eventsLoop() }()
		go n.waitExit()
	}
	alive := len(running)

	started := inst.awaitStart(ctx, running, &alive)
	if started && inst.cl != nil {
		started = inst.awaitMachines(ctx, running, &alive)
	}
	var stopTimers func()
	if started {
		inst.sendRoutes(running)
		for _, n := range running {
			_ = n.ctrl.WriteFrame(new(wire.Encoder).PutRegisterReply(""))
		}
		stopTimers = inst.startTimers(ctx)
	}

	var grace <-chan time.Time
	stopping := false
	stop := func(reason string) {
		if stopping {
			return
		}
		stopping = true
		inst.requestStop(reason)
		if stopTimers != nil {
			stopTimers()
		}
		for _, n := range running {
			n.requestStop()
		}
		grace = time.After(inst.grace())
	}
	if !started {
		stop(inst.stopReasonOr("the dataflow failed to start"))
	}
	var stopAfter <-chan time.Time
	if started && inst.opts.StopAfter > 0 {
		stopAfter = time.After(inst.opts.StopAfter)
	}
	for alive > 0 {
		select {
		case <-inst.exited:
			alive--
		case <-stopAfter:
			stop(fmt.Sprintf("stopped %s after it started", inst.opts.StopAfter))
		case <-ctx.Done():
			stop("interrupted")
		case <-inst.stopCh:
			stop(inst.stopReasonOr("stopped"))
		case <-grace:
			for _, n := range running {
				if !n.isGone() {
					n.setErr(fmt.Errorf("still running %s after Stop; killed", inst.grace()))
					n.kill()
				}
			}
			grace = nil
		}
	}
	if stopTimers != nil {
		stopTimers()
	}
	inst.cl.close()
	return inst.finish(running)
}

// awaitStart holds the start until every node has connected (true), or
// fails it (false): a node exits first, the connect timeout passes, or ctx
// ends. Failing replies to the nodes that did connect with the reason.
func (inst *instance) awaitStart(ctx context.Context, running []*nodeState, alive *int) bool {
	timeout := time.NewTimer(inst.opts.ConnectTimeout)
	defer timeout.Stop()
	var reason string
	if len(running) < len(inst.nodes) {
		reason = inst.stopReasonOr("a node could not start")
	}
	for reason == "" {
		select {
		case <-inst.allRegistered:
			return true
		case n := <-inst.exited:
			*alive--
			inst.mu.Lock()
			registered := n.registered
			inst.mu.Unlock()
			if !registered {
				n.setErr(fmt.Errorf("exited before connecting to the daemon (a node must initialise the dora node API)"))
				reason = fmt.Sprintf("node %q exited before connecting", n.id)
			}
		case <-timeout.C:
			var late []string
			inst.mu.Lock()
			for _, n := range running {
				if !n.registered {
					late = append(late, n.id)
					if n.result.Err == nil {
						n.result.Err = fmt.Errorf("did not connect to the daemon within %s (does it initialise the dora node API?)", inst.opts.ConnectTimeout)
					}
				}
			}
			inst.mu.Unlock()
			reason = fmt.Sprintf("node(s) %s did not connect within %s", strings.Join(late, ", "), inst.opts.ConnectTimeout)
		case <-ctx.Done():
			reason = "interrupted before every node connected"
		case <-inst.stopCh:
			reason = inst.stopReasonOr("stopped before every node connected")
		}
	}
	inst.failStart(running, reason)
	return false
}

// failStart stops a dataflow that could not start and tells the nodes
// that connected why.
func (inst *instance) failStart(running []*nodeState, reason string) {
	inst.requestStop("the dataflow failed to start: " + reason)
	inst.mu.Lock()
	defer inst.mu.Unlock()
	for _, n := range running {
		if n.registered {
			_ = n.ctrl.WriteFrame(new(wire.Encoder).PutRegisterReply("the dataflow failed to start: " + reason))
		} else {
			// It never connected, so it cannot be asked to stop.
			n.kill()
		}
	}
}

// register handles REGISTER.
func (inst *instance) register(n *nodeState, reg wire.Register) error {
	if reg.Version != wire.Version {
		msg := fmt.Sprintf("node %q speaks protocol version %d but this daemon speaks %d: rebuild the node against this dora", n.id, reg.Version, wire.Version)
		_ = n.ctrl.WriteFrame(new(wire.Encoder).PutRegisterReply(msg))
		return fmt.Errorf("%s", msg)
	}
	if reg.DataflowID != inst.id || reg.NodeID != n.id {
		return fmt.Errorf("registered as %s/%s on the socket of %s/%s", reg.DataflowID, reg.NodeID, inst.id, n.id)
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if n.registered {
		return fmt.Errorf("registered twice")
	}
	n.registered = true
	n.features = reg.Features
	inst.nregistered++
	if inst.nregistered == len(inst.nodes) {
		close(inst.allRegistered)
	}
	return nil
}

// requestStop stops the dataflow; the first reason wins.
func (inst *instance) requestStop(reason string) {
	inst.mu.Lock()
	first := inst.stopReason == ""
	if first {
		inst.stopReason = reason
		close(inst.stopCh)
	}
	inst.mu.Unlock()
	if first {
		inst.cl.stopped(inst.id, reason)
	}
}

// grace is how long nodes get after Stop.
func (inst *instance) grace() time.Duration {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.stopGrace > 0 {
		return inst.stopGrace
	}
	return inst.opts.Grace
}

func (inst *instance) stopReasonOr(fallback string) string {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.stopReason != "" {
		return inst.stopReason
	}
	return fallback
}

// waitExit reaps the node's process and cleans up after it.
func (n *nodeState) waitExit() {
	err := n.cmd.Wait()
	ps := n.cmd.ProcessState
	n.inst.mu.Lock()
	if ps != nil {
		n.result.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			n.result.Signal = unix.SignalName(ws.Signal())
		}
	} else if n.result.Err == nil {
		n.result.Err = fmt.Errorf("waiting for the process: %w", err)
	}
	n.inst.mu.Unlock()
	// Leftover children of the node go with it.
	_ = unix.Kill(-n.cmd.Process.Pid, unix.SIGKILL)
	n.ctrl.Shutdown()
	n.events.Shutdown()
	n.loops.Wait()
	n.drain()
	n.inst.cl.nodeExited(n.inst.id, n.id)
	n.inst.exited <- n
}

func (n *nodeState) kill() {
	_ = unix.Kill(-n.cmd.Process.Pid, unix.SIGKILL)
}

// finish collects the results once every process has been reaped.
func (inst *instance) finish(running []*nodeState) *Result {
	res := &Result{DataflowID: inst.id, LogDir: inst.logDir}
	inst.mu.Lock()
	res.StopReason = inst.stopReason
	inst.mu.Unlock()
	for _, n := range running {
		n.result.StderrTail = n.logs.finish(time.Second)
		n.result.LogFile = n.logs.path
		n.ctrl.Close()
		n.events.Close()
	}
	inst.regions.closeAll()
	if t := inst.handoff.Load(); t != nil {
		t.Close()
	}
	for _, n := range inst.nodes {
		for _, q := range n.queues {
			if q.dropped > 0 {
				if n.result.Dropped == nil {
					n.result.Dropped = make(map[string]uint64)
				}
				n.result.Dropped[q.id] = q.dropped
			}
		}
		res.Nodes = append(res.Nodes, n.result)
	}
	sort.SliceStable(res.Nodes, func(i, j int) bool { return res.Nodes[i].ID < res.Nodes[j].ID })
	return res
}
