// Package node is the Go API for dora nodes: a program started by dora as
// a node of a dataflow calls Init, receives its inputs as events, and sends
// outputs, which travel inline when small and through shared memory
// (written in place, read in place) when large.
package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/shm"
	"golang.org/x/sys/unix"
)

// Metadata travels with every message.
type Metadata = wire.Metadata

// Parameter is one metadata value; Kind says which field holds it.
type Parameter = wire.Parameter

// Kinds of Parameter.
const (
	ParamBool       = wire.ParamBool
	ParamInt        = wire.ParamInt
	ParamFloat      = wire.ParamFloat
	ParamString     = wire.ParamString
	ParamIntList    = wire.ParamIntList
	ParamFloatList  = wire.ParamFloatList
	ParamStringList = wire.ParamStringList
)

// ErrClosed is returned by calls on a closed Node.
var ErrClosed = errors.New("dora node is closed")

// Node is a connection to the daemon that started this process. Sending is
// safe from any goroutine; receiving is meant for one goroutine at a time.
type Node struct {
	cfg     *wire.NodeConfig
	ctrl    *wire.Conn
	events  *wire.Conn
	outputs map[string]bool
	inputs  map[string]string // interned input ids

	pool *shm.Pool
	// handoff, when the daemon sent ROUTES, lets sends skip the daemon;
	// guarded by sendMu.
	handoff *handoffRoutes

	sendMu  sync.Mutex
	sendEnc wire.Encoder
	scratch []byte

	ctrlEnc   wire.Encoder // guarded by ctrlMu
	ctrlMu    sync.Mutex
	recv      receiver
	closed    atomic.Bool
	closeOnce sync.Once
	readers   sync.WaitGroup
	iterErr   atomic.Pointer[error]

	dropMu  sync.Mutex
	dropped []uint64 // retired regions the daemon has not been told about
}

// Init connects to the daemon described by the environment (the daemon
// sets it when it spawns the node) and returns once the whole dataflow has
// started: every node has connected.
func Init() (*Node, error) {
	cfg, err := wire.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return InitWithConfig(cfg)
}

// InitWithConfig is Init with an explicit configuration.
func InitWithConfig(cfg *wire.NodeConfig) (*Node, error) {
	for _, fd := range []int{cfg.ControlFD, cfg.EventsFD} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("dora node %q: descriptor %d from the daemon is not open: %w", cfg.NodeID, fd, err)
		}
		// Children of the node must not hold the sockets open: the
		// daemon tells a node's exit by their closing.
		unix.CloseOnExec(fd)
	}
	n := &Node{
		cfg:     cfg,
		ctrl:    wire.NewConn(cfg.ControlFD),
		events:  wire.NewConn(cfg.EventsFD),
		outputs: make(map[string]bool, len(cfg.Outputs)),
		inputs:  make(map[string]string, len(cfg.Inputs)),
		pool:    shm.NewPool("dora-" + cfg.NodeID),
	}
	for _, o := range cfg.Outputs {
		n.outputs[o] = true
	}
	for _, in := range cfg.Inputs {
		n.inputs[in.ID] = in.ID
	}
	if err := n.register(); err != nil {
		n.ctrl.Close()
		n.events.Close()
		n.handoff.close()
		return nil, err
	}
	n.recv.init(n)
	n.readers.Add(1)
	go n.controlLoop()
	return n, nil
}

func (n *Node) register() error {
	var e wire.Encoder
	f := e.PutRegister(wire.Register{Version: wire.Version, DataflowID: n.cfg.DataflowID, NodeID: n.cfg.NodeID, Features: wire.FeatureHandoff})
	if err := n.ctrl.WriteFrame(f); err != nil {
		return fmt.Errorf("dora node %q: registering with the daemon: %w", n.cfg.NodeID, err)
	}
	reply, fds, err := n.ctrl.ReadFrame()
	if err == nil && wire.Kind(reply[4]) == wire.KindRoutes {
		if n.handoff, err = openRoutes(reply, fds); err != nil {
			return fmt.Errorf("dora node %q: %w", n.cfg.NodeID, err)
		}
		reply, _, err = n.ctrl.ReadFrame()
	}
	if err != nil {
		return fmt.Errorf("dora node %q: waiting for the dataflow to start: %w", n.cfg.NodeID, err)
	}
	d := wire.NewDecoder(reply)
	if k := wire.Kind(reply[4]); k != wire.KindRegisterReply {
		return fmt.Errorf("dora node %q: daemon answered REGISTER with %s", n.cfg.NodeID, k)
	}
	if err := d.RegisterReply(); err != nil {
		return fmt.Errorf("dora node %q: %w", n.cfg.NodeID, err)
	}
	return nil
}

// ID is the node's id in the dataflow.
func (n *Node) ID() string { return n.cfg.NodeID }

// DataflowID is the running dataflow's UUID.
func (n *Node) DataflowID() string { return n.cfg.DataflowID }

// Config is the configuration the daemon gave this node.
func (n *Node) Config() *wire.NodeConfig { return n.cfg }

// controlLoop takes back shared-memory regions the receivers released. It
// never writes: the daemon may be blocked writing RELEASED to this very
// socket, and a write here could then wait for it forever. Regions it
// retires are announced by the next send instead.
func (n *Node) controlLoop() {
	defer n.readers.Done()
	var regions []uint64
	var d wire.Decoder
	for {
		f, fds, err := n.ctrl.ReadFrame()
		for _, fd := range fds {
			unix.Close(fd)
		}
		if err != nil {
			return
		}
		if wire.Kind(f[4]) != wire.KindReleased {
			continue
		}
		d.Reset(f)
		if regions, err = d.Regions(regions); err != nil {
			continue
		}
		for _, id := range regions {
			if id := n.pool.Put(id); id != 0 {
				n.dropMu.Lock()
				n.dropped = append(n.dropped, id)
				n.dropMu.Unlock()
			}
		}
	}
}

// sendControl encodes and writes one control frame.
func (n *Node) sendControl(encode func(*wire.Encoder) []byte) error {
	n.ctrlMu.Lock()
	defer n.ctrlMu.Unlock()
	n.ctrlEnc.Reset()
	return n.ctrl.WriteFrame(encode(&n.ctrlEnc))
}

// CloseOutputs tells receivers that these outputs will send nothing more;
// they get InputClosed without waiting for this node to exit.
func (n *Node) CloseOutputs(ids ...string) error {
	for _, id := range ids {
		if !n.outputs[id] {
			return fmt.Errorf("dora node %q: output %q is not declared in the dataflow (declared: %v)", n.cfg.NodeID, id, n.cfg.Outputs)
		}
	}
	return n.sendControl(func(e *wire.Encoder) []byte { return e.PutStrings(wire.KindCloseOutputs, ids) })
}

// StopDataflow asks the daemon to stop the whole dataflow.
func (n *Node) StopDataflow(reason string) error {
	return n.sendControl(func(e *wire.Encoder) []byte { return e.PutMessage(wire.KindStopDataflow, reason) })
}

// Close disconnects from the daemon: this node's outputs close. Data of
// received events must not be used after Close.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.ctrl.Shutdown()
		n.events.Shutdown() // wakes a receive blocked on the socket
		n.readers.Wait()
		n.recv.close()
		n.ctrl.Close()
		n.events.Close()
		n.pool.Close()
		n.sendMu.Lock() // a send may still be handing off
		n.handoff.close()
		n.handoff = nil
		n.sendMu.Unlock()
	})
	return nil
}
