package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/transport"
)

// ServeOptions configure a daemon that runs the nodes a coordinator
// places on its machine.
type ServeOptions struct {
	// Options apply to every dataflow; DataflowID, LogDir and Output are
	// chosen per dataflow.
	Options
	// MachineID is the id nodes name in deploy.machine; empty is the
	// default daemon.
	MachineID string
	// Coordinator is the coordinator's daemon address, host:port.
	Coordinator string
	// Token is presented to the coordinator (and to NATS).
	Token string
	// TLS, when set, speaks TLS to the coordinator and checks its
	// certificate.
	TLS *tls.Config
	// Transport connects to the cross-machine transport at the endpoint
	// the coordinator names; embedded says it is the coordinator's own
	// server (which speaks TLS when the coordinator does). Needed only by
	// dataflows that span machines.
	Transport func(endpoint string, embedded bool) (transport.Transport, error)
	// MaxBackoff caps the wait between attempts to reach the coordinator;
	// zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// StateDir holds the logs of dataflows whose nodes here are neither
	// local nor given a working_dir: <StateDir>/out/<uuid>. Empty means
	// StateDir().
	StateDir string
}

// DefaultMaxBackoff caps the reconnection backoff.
const DefaultMaxBackoff = 5 * time.Second

// firstBackoff is the wait after the first failed attempt; it doubles.
const firstBackoff = 100 * time.Millisecond

// StateDir is dora's per-user state folder: $XDG_STATE_HOME/dora, or
// ~/.local/state/dora.
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "dora")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "dora-state")
	}
	return filepath.Join(home, ".local", "state", "dora")
}

// errShutdown ends a session on SHUTDOWN.
var errShutdown = errors.New("shut down by the coordinator")

// Serve registers with the coordinator and runs what it asks until ctx
// ends or the coordinator shuts the daemon down (`dora destroy`). When
// the coordinator goes away, running dataflows go on and Serve reconnects
// with exponential backoff, reporting them when it registers again. A
// coordinator that refuses the first handshake (protocol version, token)
// is an error at once.
func Serve(ctx context.Context, o ServeOptions) error {
	o.Options.fill()
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.StateDir == "" {
		o.StateDir = StateDir()
	}
	s := &server{
		ctx:     ctx,
		o:       o,
		log:     o.Logger.With("machine", o.MachineID),
		runs:    make(map[string]*clusterRun),
		cancels: make(map[uint64]context.CancelFunc),
	}
	defer func() {
		if s.tr != nil {
			s.tr.Close()
		}
	}()
	backoff := firstBackoff
	everRegistered := false
	for {
		registered, err := s.session(ctx)
		everRegistered = everRegistered || registered
		switch {
		case errors.Is(err, errShutdown):
			s.stopAll("the daemon was shut down (dora destroy)")
			s.wg.Wait()
			return nil
		case ctx.Err() != nil:
			s.wg.Wait() // the dataflows see ctx too
			return nil
		case !everRegistered && (errors.Is(err, control.ErrVersion) || errors.Is(err, control.ErrUnauthorized) || errors.Is(err, control.ErrWrongPort)):
			return fmt.Errorf("coordinator at %s: %w", o.Coordinator, err)
		}
		if registered {
			backoff = firstBackoff
		}
		s.log.Warn("no connection to the coordinator; retrying", "coordinator", o.Coordinator, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

type server struct {
	// ctx bounds the dataflows: they outlive any one session.
	ctx context.Context
	o   ServeOptions
	log *slog.Logger
	wg  sync.WaitGroup // running dataflows

	mu       sync.Mutex
	runs     map[string]*clusterRun
	ended    []endedRun
	pending  []control.Finished // results the coordinator has not got yet
	sess     *session
	tr       transport.Transport
	endpoint string
	cancels  map[uint64]context.CancelFunc // log streams
}

// clusterRun is a dataflow this daemon runs part of.
type clusterRun struct {
	spawn  control.Spawn
	inst   *instance
	out    *outputForwarder
	exited map[string]bool // guarded by server.mu
}

// endedRun is kept so `dora logs` still finds the logs of a dataflow that
// ended.
type endedRun struct {
	uuid   string
	logDir string
	nodes  []string
}

// maxEnded bounds the ended dataflows remembered.
const maxEnded = 256

// session is one connection to the coordinator.
type session struct {
	conn *control.Conn
	out  chan outFrame
	done chan struct{}
	// timeout is how long the coordinator may stay silent.
	timeout time.Duration
}

type outFrame struct {
	kind control.Kind
	body []byte
	// flushed, when set, marks no frame: the writer closes it once every
	// frame queued before is written.
	flushed chan struct{}
}

// sessionQueue bounds the frames waiting to go to the coordinator.
const sessionQueue = 4096

// session connects, registers, and serves the coordinator until the
// connection ends; registered says whether it got that far.
func (s *server) session(ctx context.Context) (registered bool, err error) {
	conn, err := control.Dial(ctx, s.o.Coordinator, control.RoleDaemon, control.Credentials{Token: s.o.Token, TLS: s.o.TLS}, 3*time.Second)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	// Until registered, ctx ends the attempt at once.
	stopDial := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopDial()

	if err := conn.Send(control.KindRegister, control.Register{MachineID: s.o.MachineID, Dataflows: s.running()}); err != nil {
		return false, err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, body, err := conn.Recv()
	if err != nil {
		return false, fmt.Errorf("waiting for REGISTER_REPLY: %w", err)
	}
	var rep control.RegisterReply
	if k != control.KindRegisterReply {
		return false, fmt.Errorf("%w: %s instead of REGISTER_REPLY", control.ErrMalformed, k)
	}
	if err := control.Decode(k, body, &rep); err != nil {
		return false, err
	}
	if rep.Error != "" {
		return false, fmt.Errorf("the coordinator refused this daemon: %s", rep.Error)
	}
	if err := s.connectTransport(rep); err != nil {
		return false, err
	}
	if rep.Heartbeat <= 0 {
		rep.Heartbeat = time.Second
	}
	if rep.HeartbeatTimeout <= 0 {
		rep.HeartbeatTimeout = 5 * time.Second
	}
	sess := &session{conn: conn, out: make(chan outFrame, sessionQueue), done: make(chan struct{}), timeout: rep.HeartbeatTimeout}
	stopDial()
	// Once registered, ctx ends the session only after the dataflows (which
	// see ctx too) have ended and their results reached the coordinator.
	stop := context.AfterFunc(ctx, func() {
		s.wg.Wait()
		s.drain(sess, time.Second)
		conn.Close()
	})
	defer stop()
	sctx, cancel := context.WithCancel(ctx)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() { defer writer.Done(); s.write(sess, rep.Heartbeat) }()
	defer func() {
		s.mu.Lock()
		s.sess = nil
		close(sess.done)
		var waiting []*clusterRun
		for _, run := range s.runs {
			if !run.inst.cl.isReady() {
				waiting = append(waiting, run)
			}
		}
		s.mu.Unlock()
		cancel()
		conn.Close()
		writer.Wait()
		for _, run := range waiting {
			run.inst.requestStop("lost the coordinator before every machine was ready")
		}
	}()
	s.mu.Lock()
	s.sess = sess
	for _, f := range s.pending {
		s.queueLocked(control.KindFinished, f)
	}
	s.pending = nil
	s.mu.Unlock()
	s.log.Info("registered with the coordinator", "coordinator", s.o.Coordinator)
	return true, s.read(sctx, sess)
}

// connectTransport connects to (or follows) the coordinator's NATS.
func (s *server) connectTransport(rep control.RegisterReply) error {
	endpoint := rep.NATSURL
	if endpoint == "" && rep.NATSPort > 0 {
		host, _, err := net.SplitHostPort(s.o.Coordinator)
		if err != nil {
			return fmt.Errorf("coordinator address %q: %w", s.o.Coordinator, err)
		}
		endpoint = "nats://" + net.JoinHostPort(host, strconv.Itoa(rep.NATSPort))
	}
	if endpoint == "" || s.o.Transport == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.tr == nil:
		tr, err := s.o.Transport(endpoint, rep.NATSURL == "")
		if err != nil {
			return fmt.Errorf("connecting to the transport the coordinator names: %w", err)
		}
		s.tr, s.endpoint = tr, endpoint
	case endpoint != s.endpoint:
		if err := s.tr.Retarget(endpoint); err != nil {
			return err
		}
		s.endpoint = endpoint
	}
	return nil
}

// drain waits, at most d, until sess has written what is queued.
func (s *server) drain(sess *session, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	flushed := make(chan struct{})
	select {
	case sess.out <- outFrame{flushed: flushed}:
	case <-sess.done:
		return
	case <-t.C:
		return
	}
	select {
	case <-flushed:
	case <-sess.done:
	case <-t.C:
	}
}

// write sends queued frames and a heartbeat every interval.
func (s *server) write(sess *session, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var f outFrame
		select {
		case f = <-sess.out:
		case <-tick.C:
			f = outFrame{kind: control.KindHeartbeat}
		case <-sess.done:
			return
		}
		if f.flushed != nil {
			close(f.flushed)
			continue
		}
		sess.conn.SetWriteDeadline(time.Now().Add(sess.timeout))
		if err := sess.conn.SendRaw(f.kind, f.body); err != nil {
			s.log.Warn("writing to the coordinator", "err", err)
			sess.conn.Close()
			return
		}
	}
}

// read dispatches the coordinator's frames until the connection ends.
func (s *server) read(ctx context.Context, sess *session) error {
	for {
		sess.conn.SetReadDeadline(time.Now().Add(sess.timeout))
		k, body, err := sess.conn.Recv()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("the coordinator was silent for %s", sess.timeout)
			}
			return fmt.Errorf("reading from the coordinator: %w", err)
		}
		if err := control.Expect(k, control.CoordinatorToDaemon); err != nil {
			return err
		}
		switch k {
		case control.KindPing:
		case control.KindSpawn:
			var sp control.Spawn
			if err := control.Decode(k, body, &sp); err != nil {
				return err
			}
			s.spawn(sp)
		case control.KindAllNodesReady:
			var ref control.DataflowRef
			if err := control.Decode(k, body, &ref); err != nil {
				return err
			}
			if run := s.run(ref.UUID); run != nil {
				run.inst.cl.markReady()
			}
		case control.KindStopDataflow:
			var st control.StopDataflow
			if err := control.Decode(k, body, &st); err != nil {
				return err
			}
			if run := s.run(st.UUID); run != nil {
				run.inst.stopFromCoordinator(st.Reason, st.Grace)
			}
		case control.KindInputClosed:
			var oc control.OutputClosed
			if err := control.Decode(k, body, &oc); err != nil {
				return err
			}
			if run := s.run(oc.UUID); run != nil {
				run.inst.cl.remoteClosed(transport.Stream{Dataflow: oc.UUID, Node: oc.Node, Output: oc.Output}, oc.Sent)
			}
		case control.KindReadLogs:
			var rl control.ReadLogs
			if err := control.Decode(k, body, &rl); err != nil {
				return err
			}
			s.startLogs(ctx, sess, rl)
		case control.KindCancelLogs:
			var c control.LogChunk
			if err := control.Decode(k, body, &c); err != nil {
				return err
			}
			s.mu.Lock()
			if cancel := s.cancels[c.Req]; cancel != nil {
				cancel()
			}
			s.mu.Unlock()
		case control.KindShutdown:
			return errShutdown
		default:
			return fmt.Errorf("%w: unexpected %s", control.ErrMalformed, k)
		}
	}
}

// send queues a frame for the coordinator; false when there is no
// connection.
func (s *server) send(k control.Kind, v any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueLocked(k, v)
}

func (s *server) queueLocked(k control.Kind, v any) bool {
	if s.sess == nil {
		return false
	}
	body, err := jsonBody(v)
	if err != nil {
		s.log.Error("encoding a frame for the coordinator", "kind", k, "err", err)
		return false
	}
	select {
	case s.sess.out <- outFrame{kind: k, body: body}:
		return true
	default:
		s.log.Warn("the coordinator does not keep up; reconnecting")
		s.sess.conn.Close()
		return false
	}
}

func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding a frame for the coordinator: %w", err)
	}
	return b, nil
}

func (s *server) run(uuid string) *clusterRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[uuid]
}

// running describes the dataflows still running, for REGISTER.
func (s *server) running() []control.RunningDataflow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []control.RunningDataflow
	for _, run := range s.runs {
		rd := control.RunningDataflow{
			UUID: run.spawn.UUID, Name: run.spawn.Name, Machines: run.spawn.Machines,
			Nodes: run.spawn.Nodes, Ready: run.inst.cl.isReady(),
		}
		for _, id := range run.spawn.Nodes {
			if !run.exited[id] {
				rd.Running = append(rd.Running, id)
			}
		}
		out = append(out, rd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out
}

func (s *server) stopAll(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, run := range s.runs {
		run.inst.stopFromCoordinator(reason, 0)
	}
}

// spawn is SPAWN: the nodes of sp placed here start on their own
// goroutine; any failure comes back as FINISHED.
func (s *server) spawn(sp control.Spawn) {
	if s.run(sp.UUID) != nil {
		s.log.Warn("ignoring a second SPAWN", "dataflow", sp.UUID)
		return
	}
	run, err := s.prepare(sp)
	if err != nil {
		s.finish(sp, nil, fmt.Errorf("machine %s could not start its nodes: %w", machineName(s.o.MachineID), err))
		return
	}
	s.mu.Lock()
	s.runs[sp.UUID] = run
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := run.inst.cl.subscribe(); err != nil {
			run.inst.cl.close()
			s.finish(sp, nil, fmt.Errorf("machine %s could not subscribe to other machines: %w", machineName(s.o.MachineID), err))
			return
		}
		res := run.inst.run(s.ctx)
		if run.out != nil {
			run.out.flush()
		}
		s.finish(sp, res, nil)
	}()
}

// prepare builds the instance for the nodes of sp placed here.
func (s *server) prepare(sp control.Spawn) (*clusterRun, error) {
	df, err := descriptor.Parse(sp.File, sp.YAML)
	if err != nil {
		return nil, err
	}
	for _, id := range sp.Nodes {
		if df.Node(id) == nil {
			return nil, fmt.Errorf("the dataflow has no node %q", id)
		}
	}
	opts := s.o.Options
	opts.DataflowID = sp.UUID
	opts.Env = append(append([]string(nil), opts.Env...), sp.Env...)
	opts.LogDir = s.logDir(df, sp)
	run := &clusterRun{spawn: sp, exited: make(map[string]bool)}
	if sp.ForwardOutput {
		run.out = &outputForwarder{s: s, uuid: sp.UUID}
		opts.Output = run.out
	} else {
		opts.Output = discard{}
	}
	s.mu.Lock()
	tr := s.tr
	s.mu.Unlock()
	run.inst = newInstance(df, opts, newCluster(sp.UUID, sp.Nodes, sp.Placement, tr, s))
	if tr == nil && needsTransport(run.inst) {
		return nil, fmt.Errorf("its nodes exchange messages with machines %v but this daemon has no transport to them", sp.Machines)
	}
	if err := os.MkdirAll(run.inst.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the log folder: %w", err)
	}
	return run, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// logDir is where the dataflow's node logs go on this machine: next to
// the dataflow when every node here is local (seed 001: the CLI's
// machine), else in the first non-local node's working_dir, else in the
// daemon's state folder.
func (s *server) logDir(df *descriptor.Dataflow, sp control.Spawn) string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	allLocal, wd := true, ""
	for _, id := range sp.Nodes {
		n := df.Node(id)
		if n.Deploy.Local {
			continue
		}
		allLocal = false
		if wd == "" && n.Deploy.WorkingDir != "" {
			wd = n.BaseDir(df.Dir, home)
		}
	}
	switch {
	case allLocal:
		return filepath.Join(df.Dir, "out", sp.UUID)
	case wd != "":
		return filepath.Join(wd, "out", sp.UUID)
	default:
		return filepath.Join(s.o.StateDir, "out", sp.UUID)
	}
}

// finish reports a dataflow's end to the coordinator, or keeps the
// report until the coordinator is back.
func (s *server) finish(sp control.Spawn, res *Result, err error) {
	f := control.Finished{Result: control.Result{UUID: sp.UUID, Name: sp.Name}}
	if err != nil {
		f.Error = err.Error()
		for _, id := range sp.Nodes {
			f.Result.Nodes = append(f.Result.Nodes, control.NodeResult{ID: id, Machine: s.o.MachineID, ExitCode: -1, Error: "not started: " + err.Error()})
		}
	}
	if res != nil {
		f.Result = resultToControl(res, sp.Name, s.o.MachineID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if run := s.runs[sp.UUID]; run != nil {
		delete(s.runs, sp.UUID)
		s.ended = append(s.ended, endedRun{uuid: sp.UUID, logDir: run.inst.logDir, nodes: sp.Nodes})
		if len(s.ended) > maxEnded {
			s.ended = s.ended[1:]
		}
	}
	if !s.queueLocked(control.KindFinished, f) {
		s.pending = append(s.pending, f)
	}
}

func resultToControl(res *Result, name, machine string) control.Result {
	out := control.Result{UUID: res.DataflowID, Name: name, StopReason: res.StopReason}
	for _, n := range res.Nodes {
		nr := control.NodeResult{
			ID: n.ID, Machine: machine, ExitCode: n.ExitCode, Signal: n.Signal,
			StderrTail: n.StderrTail, Dropped: n.Dropped, Lost: n.Lost, RemoteDropped: n.RemoteDropped, LogFile: n.LogFile,
		}
		if n.Err != nil {
			nr.Error = n.Err.Error()
		}
		out.Nodes = append(out.Nodes, nr)
	}
	return out
}

func machineName(id string) string {
	if id == "" {
		return "(default)"
	}
	return strconv.Quote(id)
}

// The coordinatorLink of every instance this daemon runs.

func (s *server) ready(dataflow string) {
	s.send(control.KindReady, control.DataflowRef{UUID: dataflow})
}

func (s *server) askStop(dataflow, reason string) {
	s.send(control.KindStopAsked, control.StopDataflow{UUID: dataflow, Reason: reason})
}

func (s *server) outputClosed(st transport.Stream, sent uint64) {
	s.send(control.KindOutputClosed, control.OutputClosed{UUID: st.Dataflow, Node: st.Node, Output: st.Output, Sent: sent})
}

func (s *server) nodeExited(dataflow, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run := s.runs[dataflow]; run != nil {
		run.exited[node] = true
	}
	s.queueLocked(control.KindNodeExited, control.NodeExited{UUID: dataflow, Node: node})
}

func (cl *cluster) isReady() bool {
	select {
	case <-cl.allReady:
		return true
	default:
		return false
	}
}
