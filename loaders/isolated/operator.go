package isolated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Operator is an operator running in an operator host.
//
// When its process dies (a signal, an exit, a broken connection), the call
// in progress returns an error wrapping runtime.ErrOperatorCrashed with the
// exit status and the last lines of the process's stderr. Up to
// Config.Restarts times over the operator's life a fresh process is then
// started and loads the operator again: the call returns StatusContinue
// and the next event goes to the new instance (the failed event is not
// replayed; the old instance's state is lost). After that the operator is
// dead: the call and every later OnEvent return StatusStop with the cause.
// An event whose context ends kills the process: the call returns an
// error wrapping runtime.ErrTimeout (or the context's error), and the
// operator is dead. Reload revives a dead operator with a new process.
type Operator struct {
	l        *Loader
	node, id string
	kind     descriptor.SourceKind
	log      *slog.Logger
	stdout   io.Writer
	stderr   io.Writer

	// spec is what the current (or next) process loads: the last spec
	// that loaded or reloaded.
	spec     runtime.OperatorSpec
	restarts int
	dead     error
	closed   bool

	mu sync.Mutex // guards c against pid() from other goroutines
	c  *child
}

func newOperator(l *Loader, spec runtime.OperatorSpec) *Operator {
	o := &Operator{l: l, node: spec.NodeID, spec: spec, restarts: l.cfg.Restarts, stdout: spec.Stdout, stderr: spec.Stderr}
	if spec.Operator != nil {
		o.id, o.kind = spec.Operator.ID, spec.Operator.Source.Kind
	}
	o.log = spec.Logger
	if o.log == nil {
		o.log = l.cfg.Logger.With("node", o.node, "operator", o.id)
	}
	if o.stdout == nil {
		o.stdout = os.Stdout
	}
	if o.stderr == nil {
		o.stderr = os.Stderr
	}
	return o
}

func (o *Operator) wrap(phase runtime.Phase, err error) error {
	return &runtime.OperatorError{Node: o.node, Operator: o.id, Loader: o.kind, Phase: phase, Err: err}
}

// remote makes an error of the child's an *runtime.OperatorError of this
// operator, keeping the child's phase and loader when it had them.
func (o *Operator) remote(phase runtime.Phase, we *wireError) error {
	if we.phase != "" {
		phase = we.phase
	}
	kind := o.kind
	if we.loader != "" {
		kind = we.loader
	}
	return &runtime.OperatorError{Node: o.node, Operator: o.id, Loader: kind, Phase: phase, Err: we.err}
}

func (o *Operator) setChild(c *child) {
	o.mu.Lock()
	o.c = c
	o.mu.Unlock()
}

// pid is the operator host's process id, 0 when there is none.
func (o *Operator) pid() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.c == nil {
		return 0
	}
	return int(o.c.pid.Load())
}

// OnEvent implements runtime.Operator.
func (o *Operator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (runtime.Status, error) {
	if o.dead != nil {
		return runtime.StatusStop, o.wrap(runtime.PhaseEvent, fmt.Errorf("stopped after an earlier failure: %w", o.dead))
	}
	c := o.c
	if c == nil {
		return runtime.StatusStop, o.wrap(runtime.PhaseEvent, errors.New("the operator is closed"))
	}
	st, err, lost := c.event(ctx, ev, out)
	if lost != nil {
		return o.recover(ctx, runtime.PhaseEvent, c, lost)
	}
	return st, err
}

// recover handles a lost child: it reports why, and restarts the operator
// when the child crashed and restarts are left.
func (o *Operator) recover(ctx context.Context, phase runtime.Phase, c *child, lost error) (runtime.Status, error) {
	cause := c.failure(ctx, lost)
	c.close()
	o.setChild(nil)
	if !errors.Is(cause, runtime.ErrOperatorCrashed) || ctx.Err() != nil {
		o.dead = cause
		return runtime.StatusStop, o.wrap(phase, cause)
	}
	if o.restarts == 0 {
		if o.l.cfg.Restarts > 0 {
			cause = note(cause, fmt.Sprintf("not restarted: it was restarted %d time(s) already", o.l.cfg.Restarts))
		}
		o.dead = cause
		return runtime.StatusStop, o.wrap(phase, cause)
	}
	o.restarts--
	nc, err := o.start(ctx, o.spec)
	if err != nil {
		o.dead = note(cause, fmt.Sprintf("restarting it failed: %v", err))
		return runtime.StatusStop, o.wrap(phase, o.dead)
	}
	o.setChild(nc)
	pid := nc.pid.Load()
	o.log.Warn("operator process restarted after a crash", "loader", string(o.kind), "pid", pid, "restarts_left", o.restarts)
	return runtime.StatusContinue, o.wrap(phase, note(cause, fmt.Sprintf("restarted it as pid %d, a fresh instance (its state is lost; the failed event is not replayed)", pid)))
}

// Reload implements runtime.Reloader: the child reloads the operator with
// its loader (when that loader can); a dead operator gets a new process.
func (o *Operator) Reload(ctx context.Context, spec runtime.OperatorSpec) error {
	if o.closed {
		return o.wrap(runtime.PhaseReload, errors.New("the operator is closed"))
	}
	c := o.c
	if c == nil {
		nc, err := o.start(ctx, spec)
		if err != nil {
			return err
		}
		o.setChild(nc)
		o.spec, o.dead = spec, nil
		return nil
	}
	we, err := c.call(ctx, methodReload, putLoad(&c.enc, kindReload, loadRequestFor(spec)))
	if err != nil {
		_, rerr := o.recover(ctx, runtime.PhaseReload, c, err)
		return rerr
	}
	if we != nil {
		return o.remote(runtime.PhaseReload, we)
	}
	o.spec = spec
	return nil
}

// Close implements runtime.Operator: the child drops the operator, then
// exits; after Config.CloseTimeout it is killed. Nothing of it is left:
// the process is reaped, its descriptors closed, its socket folder gone.
func (o *Operator) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	c := o.c
	o.setChild(nil)
	if c == nil {
		return nil
	}
	return c.shutdown()
}

// child is one operator host process and the host's end of everything
// connecting them.
type child struct {
	o         *Operator
	client    *plugin.Client
	conn      *grpc.ClientConn
	stream    grpc.ClientStream
	cancel    context.CancelFunc // ends the stream
	socketDir string

	procMu    sync.Mutex
	proc      *process
	cancelled bool // Load gave up: do not start a process

	pid  atomic.Int64
	sock int // the host's end of the regions socket
	in   regionWriter
	out  regionReader
	enc  wire.Encoder
	msg  wrapperspb.BytesValue
	tail tail

	outDone, errDone chan struct{}
	closeOnce        sync.Once
}

// protocolError is a child breaking the protocol; it is killed.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return "it broke the protocol: " + e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

func loadRequestFor(spec runtime.OperatorSpec) *loadRequest {
	op, _ := json.Marshal(spec.Operator)
	return &loadRequest{node: spec.NodeID, path: spec.Path, workDir: spec.WorkDir, operator: op}
}

// childEnv is the runtime node's environment for a child, without the
// node's daemon configuration (the child has no business with it).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, wire.EnvNodeConfig+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// start spawns a child, waits for its handshake and has it load spec.
func (o *Operator) start(ctx context.Context, spec runtime.OperatorSpec) (_ *child, err error) {
	cfg := o.l.cfg
	c := &child{o: o, sock: -1, outDone: make(chan struct{}), errDone: make(chan struct{})}
	// files are the child's ends of its descriptors: a process closes
	// them once it started; until one owns them, they are closed here.
	var files []*os.File
	release := func() {
		c.procMu.Lock()
		defer c.procMu.Unlock()
		if c.proc == nil {
			for _, f := range files {
				f.Close()
			}
			files = nil
		}
	}
	fail := func(phase runtime.Phase, e error) (*child, error) {
		release()
		c.close()
		return nil, o.wrap(phase, e)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		close(c.outDone)
		close(c.errDone)
		return nil, o.wrap(runtime.PhaseLoad, fmt.Errorf("regions socket: %w", err))
	}
	c.sock = fds[0]
	c.in = regionWriter{sock: c.sock, role: roleInput, name: "dora-isolated-input"}
	c.out = regionReader{sock: c.sock, role: roleOutput}
	files = []*os.File{os.NewFile(uintptr(fds[1]), "regions")}
	for _, p := range []struct {
		w    io.Writer
		tail *tail
		done chan struct{}
	}{{o.stdout, nil, c.outDone}, {o.stderr, &c.tail, c.errDone}} {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(runtime.PhaseLoad, err)
		}
		files = append(files, w)
		go forward(r, p.w, o.id+": ", p.tail, p.done)
	}
	prefix := o.id + ": "
	logger := o.log.With("loader", string(o.kind))
	pid := func() int { return int(c.pid.Load()) }
	c.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginName: &operatorPlugin{}},
		RunnerFunc: func(_ hclog.Logger, base *exec.Cmd, dir string) (runner.Runner, error) {
			c.procMu.Lock()
			defer c.procMu.Unlock()
			c.socketDir = dir
			if c.cancelled || files == nil {
				return nil, context.Canceled
			}
			cmd, err := cfg.Command()
			if err != nil {
				return nil, err
			}
			cmd.Env = append(childEnv(base.Env), cmd.Env...)
			p, err := newProcess(cmd, files)
			if err != nil {
				return nil, err
			}
			c.proc = p
			return p, nil
		},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     cfg.StartTimeout,
		Stderr:           &lineWriter{fn: logLines(logger, pid, o.stderr, prefix, &c.tail)},
		SyncStdout:       &lineWriter{fn: func(b []byte) { emitLine(o.stdout, prefix, b, nil) }},
		SyncStderr:       &lineWriter{fn: func(b []byte) { emitLine(o.stderr, prefix, b, &c.tail) }},
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		GRPCDialOptions:  []grpc.DialOption{grpc.WithIdleTimeout(0)},
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: cfg.SocketDir},
	})

	started := make(chan error, 1)
	go func() {
		_, err := c.client.Start()
		started <- err
	}()
	select {
	case err = <-started:
	case <-ctx.Done():
		c.procMu.Lock()
		c.cancelled = true
		if c.proc != nil {
			c.proc.Kill(context.Background())
		}
		c.procMu.Unlock()
		<-started
		err = ctx.Err()
	}
	if c.proc != nil && c.proc.pid > 0 {
		c.pid.Store(int64(c.proc.pid))
	}
	if err != nil {
		release()
		if ctx.Err() != nil {
			return fail(runtime.PhaseLoad, fmt.Errorf("starting the operator host: %w", ctx.Err()))
		}
		if c.pid.Load() > 0 && c.proc.exitedWithin(time.Second) && !c.proc.killedByHost() {
			// It ended by itself: its status and stderr say more than
			// go-plugin's "Unrecognized remote plugin message".
			return fail(runtime.PhaseLoad, c.crashed("before its handshake"))
		}
		return fail(runtime.PhaseLoad, fmt.Errorf("starting the operator host: %w%s", err, c.tail.String()))
	}
	rpc, err := c.client.Client()
	if err != nil {
		return fail(runtime.PhaseLoad, fmt.Errorf("connecting to the operator host: %w", err))
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		return fail(runtime.PhaseLoad, fmt.Errorf("connecting to the operator host: %w", err))
	}
	c.conn = raw.(*grpc.ClientConn)

	we, err := c.call(ctx, methodLoad, putLoad(&c.enc, kindLoad, loadRequestFor(spec)))
	// The connection stands (or never will): the socket file has done its
	// job, and nothing should stay behind if this process is killed.
	os.RemoveAll(c.socketDir)
	if err != nil {
		return fail(runtime.PhaseLoad, c.failure(ctx, err))
	}
	if we != nil {
		c.close()
		return nil, o.remote(runtime.PhaseLoad, we)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.stream, err = c.conn.NewStream(sctx, &serviceDesc.Streams[0], methodEvents)
	if err != nil {
		return fail(runtime.PhaseLoad, c.failure(ctx, err))
	}
	return c, nil
}

// call makes a unary call. A transport error means the child is lost; a
// decoded error is the child's answer.
func (c *child) call(ctx context.Context, method string, req []byte) (*wireError, error) {
	var reply wrapperspb.BytesValue
	if err := c.conn.Invoke(ctx, method, wrapperspb.Bytes(req), &reply); err != nil {
		return nil, err
	}
	we, err := getReply(reply.Value)
	if err != nil {
		return nil, &protocolError{err}
	}
	return we, nil
}

// event runs one event through the child. lost is set when the child is
// gone or broke the protocol; st and err are the operator's answer.
func (c *child) event(ctx context.Context, ev *runtime.Event, out runtime.Sender) (st runtime.Status, err, lost error) {
	stop := context.AfterFunc(ctx, func() { c.proc.Kill(context.Background()) })
	st, err, lost = c.exchange(ev, out)
	if !stop() && lost == nil {
		// The context ended as the event did: the child is being killed.
		lost = ctx.Err()
	}
	return st, err, lost
}

func (c *child) exchange(ev *runtime.Event, out runtime.Sender) (st runtime.Status, err, lost error) {
	var region uint64
	if len(ev.Data) >= inlineMax {
		r, err := c.in.ensure(len(ev.Data))
		if err != nil {
			return 0, nil, err
		}
		copy(r.mem, ev.Data)
		region = r.id
	}
	if err := c.stream.SendMsg(wrapperspb.Bytes(putEvent(&c.enc, ev, region))); err != nil {
		return 0, nil, err
	}
	for {
		if err := c.stream.RecvMsg(&c.msg); err != nil {
			return 0, nil, err
		}
		k, d, err := decodeFrame(c.msg.Value)
		if err != nil {
			return 0, nil, &protocolError{err}
		}
		switch k {
		case kindOutput:
			var o runtime.Output
			ref, err := getOutput(d, &o)
			if err != nil {
				return 0, nil, &protocolError{err}
			}
			o.Data = ref.inline
			if ref.region != 0 {
				if o.Data, err = c.out.view(ref.region, ref.n); err != nil {
					return 0, nil, &protocolError{err}
				}
			}
			serr := out.Send(o)
			if err := c.stream.SendMsg(wrapperspb.Bytes(putSendResult(&c.enc, serr))); err != nil {
				return 0, nil, err
			}
		case kindResult:
			st, we, err := getResult(d)
			if err != nil {
				return 0, nil, &protocolError{err}
			}
			if we != nil {
				return st, c.o.remote(runtime.PhaseEvent, we), nil
			}
			return st, nil, nil
		default:
			return 0, nil, &protocolError{fmt.Errorf("%w: frame kind %d during an event", wire.ErrMalformed, k)}
		}
	}
}

// failure says why the child was lost, after making sure it is gone.
func (c *child) failure(ctx context.Context, lost error) error {
	pid := c.pid.Load()
	var pe *protocolError
	switch {
	case ctx.Err() != nil:
		c.kill()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: the call did not finish before its deadline; killed the operator's process (pid %d)", runtime.ErrTimeout, pid)
		}
		return fmt.Errorf("the call was cancelled (%w); killed the operator's process (pid %d)", ctx.Err(), pid)
	case errors.As(lost, &pe):
		c.kill()
		return &crashError{what: fmt.Sprintf("the operator's process (pid %d) was killed: %v", pid, pe), tail: c.tail.String()}
	}
	// The connection broke: the process died, or is about to.
	if !c.proc.exitedWithin(2 * time.Second) {
		c.kill()
		return &crashError{what: fmt.Sprintf("the operator's process (pid %d) broke its connection (%v) and was killed", pid, lost), tail: c.tail.String()}
	}
	return c.crashed("")
}

// crashed describes a child that exited by itself, with its stderr tail.
func (c *child) crashed(when string) error {
	c.drain()
	if when != "" {
		when = " " + when
	}
	what := fmt.Sprintf("the operator's process (pid %d) %s%s", c.pid.Load(), c.proc.describe(), when)
	if r := c.tail.goReport(); r != "" {
		what = fmt.Sprintf("the operator's process (pid %d) crashed: %s (reported by the Go runtime, which then %s)", c.pid.Load(), r, c.proc.describe())
	}
	return &crashError{what: what, tail: c.tail.String()}
}

// crashError is a lost child: what happened, what the loader did about
// it, and the last lines of the child's stderr. It wraps
// runtime.ErrOperatorCrashed.
type crashError struct {
	what  string
	notes []string
	tail  string
}

func (e *crashError) Error() string {
	s := runtime.ErrOperatorCrashed.Error() + ": " + e.what
	for _, n := range e.notes {
		s += "; " + n
	}
	if e.tail != "" {
		s += "; the last lines of its stderr:" + e.tail
	}
	return s
}

func (e *crashError) Unwrap() error { return runtime.ErrOperatorCrashed }

// note returns err with a note added when it is a crashError.
func note(err error, n string) error {
	var ce *crashError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%w; %s", err, n)
	}
	cp := *ce
	cp.notes = append(append([]string(nil), ce.notes...), n)
	return &cp
}

// kill kills the child and waits until it is reaped.
func (c *child) kill() {
	if c.proc == nil {
		return
	}
	c.proc.Kill(context.Background())
	c.proc.exitedWithin(c.o.l.cfg.CloseTimeout)
}

// drain waits briefly for the child's output to be forwarded in full.
func (c *child) drain() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for _, ch := range []chan struct{}{c.outDone, c.errDone} {
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// shutdown has the child drop the operator, then ends it.
func (c *child) shutdown() error {
	o := c.o
	timeout := o.l.cfg.CloseTimeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.stream.CloseSend()
	we, err := c.call(ctx, methodClose, func() []byte { frame(&c.enc, kindClose); return c.enc.End(0) }())
	var result error
	switch {
	case err == nil && we != nil:
		result = o.remote(runtime.PhaseClose, we)
	case err == nil:
	case ctx.Err() != nil:
		c.kill()
		result = o.wrap(runtime.PhaseClose, fmt.Errorf("%w: dropping the operator took longer than %s; killed its process (pid %d)", runtime.ErrTimeout, timeout, c.pid.Load()))
	default:
		result = o.wrap(runtime.PhaseClose, c.failure(ctx, err))
	}
	c.close()
	return result
}

// close ends the child (go-plugin's graceful shutdown, then SIGKILL) and
// releases everything the host holds for it. Safe to call more than once.
func (c *child) close() {
	c.closeOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		if c.client != nil {
			killed := make(chan struct{})
			go func() {
				c.client.Kill()
				close(killed)
			}()
			t := time.NewTimer(c.o.l.cfg.CloseTimeout)
			select {
			case <-killed:
			case <-t.C:
				c.kill()
			}
			t.Stop()
		}
		c.procMu.Lock()
		c.cancelled = true
		c.procMu.Unlock()
		if c.proc != nil {
			c.kill()
			select {
			case <-c.proc.released:
			case <-time.After(2 * time.Second):
			}
		}
		if c.sock >= 0 {
			unix.Close(c.sock)
			c.sock = -1
		}
		c.in.close()
		c.out.close()
		c.drain()
		if c.socketDir != "" {
			os.RemoveAll(c.socketDir)
		}
	})
}
