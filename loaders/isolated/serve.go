package isolated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/osthread"
	"github.com/dora-go/dora/runtime"
)

// ErrNotAPlugin is returned by Serve when the process was not started by
// an isolating loader (no magic cookie, no inherited descriptors).
var ErrNotAPlugin = errors.New("`dora operator-host` runs an isolated operator for a runtime node, which starts it; it is not meant to be run by hand")

// ServeConfig configures the child side.
type ServeConfig struct {
	// Loaders are the in-process loaders the child loads operators with,
	// by source kind.
	Loaders map[descriptor.SourceKind]runtime.Loader
	// LogLevel filters the child's logs (default Info).
	LogLevel slog.Leveler
}

// Serve is the body of `dora operator-host`: it takes over the process's
// descriptors as abi/ISOLATION.md says, answers go-plugin's handshake and
// serves one operator until the host shuts it down. It returns
// ErrNotAPlugin when the process was not started by an isolating loader.
func Serve(cfg ServeConfig) error {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return ErrNotAPlugin
	}
	for _, fd := range []int{fdRegions, fdStdout, fdStderr} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("%w (descriptor %d is not open)", ErrNotAPlugin, fd)
		}
	}
	// Keep go-plugin's stdout (the handshake) and stderr (logs) on new
	// descriptors, and give fds 1 and 2, which C, Python and the Go
	// runtime write to, the host's operator pipes.
	handshake, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 10)
	if err != nil {
		return fmt.Errorf("operator host: %w", err)
	}
	logs, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 10)
	if err != nil {
		return fmt.Errorf("operator host: %w", err)
	}
	if err := unix.Dup3(fdStdout, 1, 0); err != nil {
		return fmt.Errorf("operator host: %w", err)
	}
	if err := unix.Dup3(fdStderr, 2, 0); err != nil {
		return fmt.Errorf("operator host: %w", err)
	}
	unix.Close(fdStdout)
	unix.Close(fdStderr)
	unix.CloseOnExec(fdRegions)
	opStdout, opStderr := os.Stdout, os.Stderr
	os.Stdout = os.NewFile(uintptr(handshake), "go-plugin handshake")

	level := cfg.LogLevel
	if level == nil {
		level = slog.LevelInfo
	}
	logOut := &lockedWriter{w: os.NewFile(uintptr(logs), "go-plugin log")}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Level: hclog.Info, Output: logOut, JSONFormat: true})
	srv := &server{
		loaders: cfg.Loaders,
		log:     slog.New(childLogHandler(logOut, level)),
		stdout:  opStdout,
		stderr:  opStderr,
		in:      regionReader{sock: fdRegions, role: roleInput},
		out:     regionWriter{sock: fdRegions, role: roleOutput, name: "dora-isolated-output"},
		thread:  osthread.Start(),
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginName: &operatorPlugin{srv: srv}},
		GRPCServer:      grpcServer,
		Logger:          hlog,
	})
	srv.shutdown()
	return nil
}

// server is the child's side of the service: one operator.
type server struct {
	loaders map[descriptor.SourceKind]runtime.Loader
	log     *slog.Logger
	stdout  *os.File
	stderr  *os.File
	// thread makes every call into the operator
	// (OperatorSpec.DedicatedThread).
	thread *osthread.Thread

	mu   sync.Mutex // serialises requests; the host sends one at a time
	spec runtime.OperatorSpec
	op   runtime.Operator

	in  regionReader
	out regionWriter
	enc wire.Encoder
}

// do runs f on the operator thread, turning a panic into ErrPanic.
func (s *server) do(phase runtime.Phase, f func() error) (err error) {
	s.thread.Run(func() {
		defer func() {
			if p := recover(); p != nil {
				err = s.fail(phase, fmt.Errorf("%w: %v\n%s", runtime.ErrPanic, p, debug.Stack()))
			}
		}()
		err = f()
	})
	return err
}

func (s *server) fail(phase runtime.Phase, err error) error {
	var oe *runtime.OperatorError
	if errors.As(err, &oe) {
		return err
	}
	var kind descriptor.SourceKind
	id := ""
	if s.spec.Operator != nil {
		kind, id = s.spec.Operator.Source.Kind, s.spec.Operator.ID
	}
	return &runtime.OperatorError{Node: s.spec.NodeID, Operator: id, Loader: kind, Phase: phase, Err: err}
}

func (s *server) unary(ctx context.Context, k wire.Kind, req []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e wire.Encoder
	return putReply(&e, s.handle(ctx, k, req))
}

func (s *server) handle(ctx context.Context, k wire.Kind, req []byte) error {
	d, err := expect(req, k)
	if err != nil {
		return err
	}
	switch k {
	case kindLoad, kindReload:
		phase := map[wire.Kind]runtime.Phase{kindLoad: runtime.PhaseLoad, kindReload: runtime.PhaseReload}[k]
		spec, err := s.specFrom(d)
		if err != nil {
			return s.fail(phase, err)
		}
		if k == kindLoad {
			return s.load(ctx, spec)
		}
		return s.reload(ctx, spec)
	case kindClose:
		if err := d.Done(); err != nil {
			return err
		}
		return s.closeOperator()
	}
	return fmt.Errorf("%w: unexpected frame kind %d", wire.ErrMalformed, k)
}

func (s *server) specFrom(d *wire.Decoder) (runtime.OperatorSpec, error) {
	r, err := getLoad(d)
	if err != nil {
		return runtime.OperatorSpec{}, err
	}
	op := new(descriptor.Operator)
	if err := json.Unmarshal(r.operator, op); err != nil {
		return runtime.OperatorSpec{}, fmt.Errorf("%w: operator spec: %v", wire.ErrMalformed, err)
	}
	return runtime.OperatorSpec{
		NodeID: r.node, Operator: op, Path: r.path, WorkDir: r.workDir,
		Logger: s.log.With("node", r.node, "operator", op.ID),
		Stdout: s.stdout, Stderr: s.stderr, DedicatedThread: true,
	}, nil
}

func (s *server) load(ctx context.Context, spec runtime.OperatorSpec) error {
	s.spec = spec
	if s.op != nil {
		return s.fail(runtime.PhaseLoad, errors.New("this operator host has an operator already"))
	}
	kind := spec.Operator.Source.Kind
	l := s.loaders[kind]
	if l == nil {
		return s.fail(runtime.PhaseLoad, fmt.Errorf("the operator host has no %s loader", kind))
	}
	err := s.do(runtime.PhaseLoad, func() (err error) {
		s.op, err = l.Load(ctx, spec)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("operator loaded in its own process", "node", spec.NodeID, "operator", spec.Operator.ID, "path", spec.Path, "pid", os.Getpid())
	return nil
}

func (s *server) reload(ctx context.Context, spec runtime.OperatorSpec) error {
	if s.op == nil {
		return s.fail(runtime.PhaseReload, errors.New("no operator is loaded"))
	}
	r, ok := s.op.(runtime.Reloader)
	if !ok {
		return s.fail(runtime.PhaseReload, fmt.Errorf("the %s loader cannot reload operators", spec.Operator.Source.Kind))
	}
	if err := s.do(runtime.PhaseReload, func() error { return r.Reload(ctx, spec) }); err != nil {
		return err
	}
	s.spec = spec
	return nil
}

func (s *server) closeOperator() error {
	if s.op == nil {
		return nil
	}
	op := s.op
	s.op = nil
	return s.do(runtime.PhaseClose, op.Close)
}

// shutdown closes an operator the host did not close (it went away).
func (s *server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closeOperator(); err != nil {
		s.log.Error("closing the operator", "err", err)
	}
}

// events serves the Events stream: EVENT in, any number of OUTPUT /
// SEND_RESULT exchanges, RESULT out.
func (s *server) events(stream grpc.ServerStream) error {
	var in wrapperspb.BytesValue
	for {
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		s.mu.Lock()
		st, err := s.event(stream, in.Value)
		reply := putResult(&s.enc, st, err)
		serr := stream.SendMsg(wrapperspb.Bytes(reply))
		s.mu.Unlock()
		if serr != nil {
			return serr
		}
	}
}

func (s *server) event(stream grpc.ServerStream, frame []byte) (runtime.Status, error) {
	d, err := expect(frame, kindEvent)
	if err != nil {
		return runtime.StatusContinue, err
	}
	var ev runtime.Event
	ref, err := getEvent(d, &ev)
	if err != nil {
		return runtime.StatusContinue, err
	}
	switch {
	case ref.region != 0:
		if ev.Data, err = s.in.view(ref.region, ref.n); err != nil {
			return runtime.StatusContinue, s.fail(runtime.PhaseEvent, err)
		}
	default:
		ev.Data = ref.inline
	}
	if s.op == nil {
		return runtime.StatusStop, s.fail(runtime.PhaseEvent, errors.New("no operator is loaded"))
	}
	var st runtime.Status
	out := &streamSender{s: s, stream: stream}
	err = s.do(runtime.PhaseEvent, func() (err error) {
		st, err = s.op.OnEvent(stream.Context(), &ev, out)
		return err
	})
	out.mu.Lock()
	out.over = true
	out.mu.Unlock()
	return st, err
}

// streamSender sends an operator's outputs to the host during an event
// and returns the host Sender's answer.
type streamSender struct {
	s      *server
	stream grpc.ServerStream
	mu     sync.Mutex // a C operator may send from threads of its own
	over   bool       // the event is over: the stream is not ours any more
	enc    wire.Encoder
	reply  wrapperspb.BytesValue
}

func (o *streamSender) Send(out runtime.Output) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.over {
		return errors.New("send_output after the event it belongs to returned")
	}
	var region uint64
	if len(out.Data) >= inlineMax {
		r, err := o.s.out.ensure(len(out.Data))
		if err != nil {
			return err
		}
		copy(r.mem, out.Data)
		region = r.id
	}
	if err := o.stream.SendMsg(wrapperspb.Bytes(putOutput(&o.enc, &out, region))); err != nil {
		return fmt.Errorf("sending to the runtime node: %w", err)
	}
	if err := o.stream.RecvMsg(&o.reply); err != nil {
		return fmt.Errorf("waiting for the runtime node: %w", err)
	}
	d, err := expect(o.reply.Value, kindSendResult)
	if err != nil {
		return err
	}
	msg := d.LStr()
	if err := d.Done(); err != nil {
		return err
	}
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}
