package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"golang.org/x/sys/unix"
)

// nodeState is one local node: its process, its two connections, its
// input queues and the regions it sent.
type nodeState struct {
	inst *instance
	id   string
	spec *descriptor.Node

	cmd     *exec.Cmd
	ctrl    *wire.Conn
	events  *wire.Conn
	logs    *nodeLogs
	outputs map[string]*outputState
	// regions by the node's own ids; only the control loop touches it.
	regions map[uint64]*region

	mu         sync.Mutex
	queues     []*inputQueue
	seq        uint64
	pendingMax uint32
	lastMax    uint32 // of the last NEXT_EVENTS
	openInputs int
	stopDue    bool
	stopSent   bool
	gone       bool
	known      map[uint64]bool // regions whose fd this node has
	held       map[uint64]int  // deliveries not yet released, by region
	// early counts releases of handed-off messages that came before
	// their sender's HANDED_OFF: the two travel on different sockets.
	early map[uint64]int
	enc   wire.Encoder
	fds   []int
	// handoff: some sender may answer this node's requests directly
	// (internal/handoff); offered: its pending request is on offer.
	handoff bool
	offered bool

	unmapMu sync.Mutex
	unmaps  []uint64

	relMu  sync.Mutex
	relEnc wire.Encoder

	loops      sync.WaitGroup
	registered bool   // guarded by inst.mu
	features   uint32 // from REGISTER; guarded by inst.mu
	slot       int    // in the hand-off table: the index in inst.nodes
	result     NodeResult
}

// outputState lists where one output goes. Subscribers are fixed once the
// dataflow starts; closed is guarded by the owning node's control loop.
type outputState struct {
	id     string
	subs   []*inputQueue
	nodes  []*nodeState // the distinct nodes of subs
	closed bool
	// handoff is the one input the output may hand messages off to; nil
	// when it may not (see allowHandoffs).
	handoff *inputQueue
	// remote publishes to other machines; nil when no subscriber is there.
	remote *remoteOutput
}

// nodeInputs are the inputs the daemon feeds: a runtime node's operators
// feed each other inside the runtime.
func nodeInputs(n *descriptor.Node) []wire.InputConfig {
	var ins []wire.InputConfig
	add := func(prefix string, inputs []descriptor.Input) {
		for _, in := range inputs {
			ins = append(ins, wire.InputConfig{ID: prefix + in.ID, Source: in.Source.String(), QueueSize: in.QueueSize})
		}
	}
	if n.IsRuntime() {
		for _, op := range n.Operators {
			add(op.ID+"/", op.Inputs)
		}
	} else {
		add("", n.Inputs)
	}
	return ins
}

// nodeOutputs are the output ids a node sends under.
func nodeOutputs(n *descriptor.Node) []string {
	if !n.IsRuntime() {
		return n.Outputs
	}
	var outs []string
	for _, op := range n.Operators {
		for _, o := range op.Outputs {
			outs = append(outs, op.ID+"/"+o)
		}
	}
	return outs
}

// spawn starts the node's process with its ends of two socket pairs.
func (n *nodeState) spawn(home string) error {
	inst := n.inst
	dir := n.spec.ProcessDir(inst.df.Dir, home)
	var cmd descriptor.Command
	if n.spec.IsRuntime() {
		cmd = descriptor.Command{Path: inst.opts.RuntimeExe, Args: []string{"runtime"}}
	} else {
		var err error
		if cmd, err = n.spec.NodeCommand(n.spec.BaseDir(inst.df.Dir, home)); err != nil {
			return err
		}
	}
	ctrl, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	events, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(ctrl[0])
		unix.Close(ctrl[1])
		return fmt.Errorf("socketpair: %w", err)
	}
	n.ctrl, n.events = wire.NewConn(ctrl[0]), wire.NewConn(events[0])
	// A node that stops reading must not block the daemon: a write that
	// cannot proceed for this long disconnects the node.
	for _, c := range []*wire.Conn{n.ctrl, n.events} {
		if err := c.SetWriteTimeout(writeTimeout); err != nil {
			return err
		}
	}
	childCtrl, childEvents := os.NewFile(uintptr(ctrl[1]), "ctrl"), os.NewFile(uintptr(events[1]), "events")
	defer childCtrl.Close()
	defer childEvents.Close()

	specJSON, err := json.Marshal(n.spec)
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(wire.NodeConfig{
		Version:      wire.Version,
		DataflowID:   inst.id,
		NodeID:       n.id,
		ControlFD:    3,
		EventsFD:     4,
		Inputs:       nodeInputs(n.spec),
		Outputs:      nodeOutputs(n.spec),
		ShmThreshold: inst.opts.ShmThreshold,
		Node:         specJSON,
		DataflowDir:  inst.df.Dir,
	})
	if err != nil {
		return err
	}

	c := exec.Command(cmd.Path, cmd.Args...)
	c.Dir = dir
	c.Env = append(os.Environ(), inst.opts.Env...)
	for k, v := range n.spec.Env {
		c.Env = append(c.Env, k+"="+v)
	}
	c.Env = append(c.Env, wire.EnvNodeConfig+"="+string(cfg), "PYTHONUNBUFFERED=1")
	c.ExtraFiles = []*os.File{childCtrl, childEvents}
	// Its own process group, so stopping it reaches its children too; and
	// killed with the daemon, so nothing outlives a crashed daemon.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if n.logs, err = newNodeLogs(inst, n.id); err != nil {
		return err
	}
	c.Stdout, c.Stderr = n.logs.stdoutW, n.logs.stderrW
	if err := c.Start(); err != nil {
		n.logs.closeWriters()
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	n.logs.closeWriters()
	n.cmd = c
	return nil
}

// controlLoop serves the node's control socket until it closes.
func (n *nodeState) controlLoop() {
	inst := n.inst
	var d wire.Decoder
	var so wire.SendOutput
	var ho wire.HandedOff
	var keys []uint64
	err := func() error {
		for {
			f, fds, err := n.ctrl.ReadFrame()
			if err != nil {
				return err
			}
			d.Reset(f)
			switch k := wire.Kind(f[4]); k {
			case wire.KindRegister:
				reg, err := d.Register()
				if err != nil {
					return err
				}
				if err := inst.register(n, reg); err != nil {
					return err
				}
			case wire.KindSendOutput:
				if err := d.SendOutput(&so); err != nil {
					closeAll(fds)
					return err
				}
				if err := n.route(&so, fds); err != nil {
					return err
				}
			case wire.KindHandedOff:
				if err := d.HandedOff(&ho); err != nil {
					closeAll(fds)
					return err
				}
				if err := n.handedOff(&ho, fds); err != nil {
					return err
				}
			case wire.KindCloseOutputs:
				ids, err := d.Strings()
				if err != nil {
					return err
				}
				for _, id := range ids {
					if o := n.outputs[id]; o != nil {
						n.closeOutput(o)
					}
				}
			case wire.KindRelease:
				if keys, err = d.Regions(keys); err != nil {
					return err
				}
				n.release(keys)
			case wire.KindDropRegions:
				if keys, err = d.Regions(keys); err != nil {
					return err
				}
				for _, id := range keys {
					if r := n.regions[id]; r != nil {
						delete(n.regions, id)
						r.retire()
					}
				}
			case wire.KindStopDataflow:
				reason, err := d.Message()
				if err != nil {
					return err
				}
				inst.requestStop(fmt.Sprintf("node %q asked to stop the dataflow: %s", n.id, reason))
			default:
				closeAll(fds)
				return fmt.Errorf("%w: unexpected %s on the control socket", wire.ErrMalformed, k)
			}
		}
	}()
	// A node that exits with frames unread in its socket (RELEASED, say)
	// resets the connection: that is an exit, not a protocol error.
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, unix.ECONNRESET) && !n.isGone() {
		inst.log.Error("node broke the protocol; disconnecting it", "node", n.id, "err", err)
		n.setErr(fmt.Errorf("protocol error on its control socket: %w", err))
		n.ctrl.Shutdown()
		n.events.Shutdown()
	}
	// The control socket is how a node sends: once it is gone, so are
	// its outputs and the regions it lent.
	n.reclaimOffers()
	for _, o := range n.outputs {
		n.closeOutput(o)
	}
	for id, r := range n.regions {
		delete(n.regions, id)
		r.retire()
	}
}

// eventsLoop serves the node's NEXT_EVENTS requests.
func (n *nodeState) eventsLoop() {
	var d wire.Decoder
	for {
		f, fds, err := n.events.ReadFrame()
		closeAll(fds)
		if err != nil {
			if !errors.Is(err, io.EOF) && !n.isGone() {
				n.inst.log.Debug("events socket", "node", n.id, "err", err)
			}
			return
		}
		d.Reset(f)
		if wire.Kind(f[4]) != wire.KindNextEvents {
			n.inst.log.Error("unexpected frame on the events socket", "node", n.id, "kind", wire.Kind(f[4]))
			return
		}
		max, err := d.NextEvents()
		if err != nil {
			n.inst.log.Error("bad NEXT_EVENTS", "node", n.id, "err", err)
			return
		}
		n.nextEvents(max)
	}
}

// route delivers one SEND_OUTPUT to every subscriber.
func (n *nodeState) route(so *wire.SendOutput, fds []int) error {
	o := n.outputs[string(so.OutputID)]
	if o == nil {
		closeAll(fds)
		return fmt.Errorf("node sent on output %q, which it does not declare", so.OutputID)
	}
	defer n.countRouted(o)
	var r *region
	if so.Data.Where == wire.DataShm {
		var err error
		if r, err = n.regionFor(&so.Data, fds); err != nil {
			return err
		}
	} else if len(fds) > 0 {
		closeAll(fds)
		return fmt.Errorf("inline message on %q came with descriptors", so.OutputID)
	}
	if o.closed || (len(o.subs) == 0 && o.remote == nil) {
		if r != nil {
			n.sendReleased(r.localID)
		}
		return nil
	}
	refs := len(o.subs)
	if o.remote != nil {
		refs++ // publishing is one more delivery
	}
	m := newMessage(so.Metadata, so.Data.Inline, refs)
	if r != nil {
		m.len = so.Data.Len
		if !r.load(m) {
			m.refs.Store(1)
			m.unref()
			return fmt.Errorf("region %d reused before every receiver released it", so.Data.Region)
		}
	}
	// A receiver must not get a message derived from m (an operator's
	// answer) before m itself.
	fanOut(o.subs, o.nodes, m)
	if o.remote != nil {
		o.remote.publish(n, m)
	}
	return nil
}

// countRouted tells a sender that takes part in the hand-off that its
// message to o's receivers is queued, or delivered, or dropped: a later
// message handed off can no longer overtake it.
func (n *nodeState) countRouted(o *outputState) {
	if t := n.inst.handoff.Load(); t != nil {
		for _, dst := range o.nodes {
			t.AddRouted(n.slot, dst.slot)
		}
	}
}

// regionFor finds or registers the sender's region a message travels in.
func (n *nodeState) regionFor(d *wire.Data, fds []int) (*region, error) {
	r := n.regions[d.Region]
	if d.FDAttached {
		if len(fds) != 1 || r != nil {
			closeAll(fds)
			return nil, fmt.Errorf("region %d announced with %d descriptors (known: %t)", d.Region, len(fds), r != nil)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fds[0], &st); err != nil || uint64(st.Size) < d.RegionSize {
			unix.Close(fds[0])
			return nil, fmt.Errorf("region %d is not a %d-byte shared-memory file", d.Region, d.RegionSize)
		}
		r = &region{inst: n.inst, owner: n, localID: d.Region, fd: fds[0], size: d.RegionSize}
		if err := n.inst.regions.add(r); err != nil {
			unix.Close(fds[0])
			return nil, err
		}
		n.regions[d.Region] = r
		return r, nil
	}
	closeAll(fds)
	if r == nil || d.RegionSize != r.size {
		return nil, fmt.Errorf("message in unknown region %d", d.Region)
	}
	return r, nil
}

func (n *nodeState) closeOutput(o *outputState) {
	if o.closed {
		return
	}
	o.closed = true
	for _, q := range o.subs {
		q.node.closeInput(q)
	}
	if o.remote != nil {
		o.remote.end(n)
	}
}

func (n *nodeState) isGone() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gone
}

func (n *nodeState) setErr(err error) {
	n.inst.mu.Lock()
	defer n.inst.mu.Unlock()
	if n.result.Err == nil {
		n.result.Err = err
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// logPath is where a node's output goes.
func logPath(dir, id string) string { return filepath.Join(dir, "log_"+id+".txt") }
