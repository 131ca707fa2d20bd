package isolated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Subcommand is the hidden dora subcommand that runs Serve.
const Subcommand = "operator-host"

// Defaults of Config.
const (
	DefaultRestarts     = 1
	DefaultStartTimeout = 10 * time.Second
	DefaultCloseTimeout = 5 * time.Second
)

// Config configures the host side.
type Config struct {
	// Command returns the unstarted command of an operator host. The
	// default runs this executable with Subcommand. Its Env, if any, is
	// added to the runtime node's environment; Stdout, Stderr, ExtraFiles
	// and SysProcAttr are the loader's.
	Command func() (*exec.Cmd, error)
	// Restarts is how many times over its life an operator whose process
	// crashed is started again, with a fresh instance: 0 means
	// DefaultRestarts, a negative number never.
	Restarts int
	// StartTimeout bounds the start of a child up to go-plugin's
	// handshake (loading the operator is bounded by Load's context).
	StartTimeout time.Duration
	// CloseTimeout bounds Close: the operator's drop, then the exit of its
	// process, which is killed when it is late.
	CloseTimeout time.Duration
	// SocketDir is where go-plugin makes the folder of a child's socket
	// (default: os.TempDir()); the folder is removed as soon as the
	// connection stands.
	SocketDir string
	// Logger receives the children's logs for specs without a Logger.
	Logger *slog.Logger
}

// Loader runs every operator in an operator host process of its own,
// which loads it with the in-process loader of its source kind. It
// implements runtime.Loader and runtime.Prober; its operators implement
// runtime.Reloader.
type Loader struct {
	inner map[descriptor.SourceKind]runtime.Loader
	cfg   Config
}

var (
	_ runtime.Loader   = (*Loader)(nil)
	_ runtime.Prober   = (*Loader)(nil)
	_ runtime.Operator = (*Operator)(nil)
	_ runtime.Reloader = (*Operator)(nil)
)

// New returns a loader whose children load operators with the loaders in
// inner, by source kind: the children are the same binary, so inner is
// the map the child's Serve gets. The host uses it to refuse kinds the
// child cannot load and to probe them.
func New(inner map[descriptor.SourceKind]runtime.Loader, cfg Config) *Loader {
	if cfg.Command == nil {
		cfg.Command = DefaultCommand
	}
	if cfg.Restarts == 0 {
		cfg.Restarts = DefaultRestarts
	}
	if cfg.Restarts < 0 {
		cfg.Restarts = 0
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Loader{inner: inner, cfg: cfg}
}

// DefaultCommand runs this executable's operator-host subcommand.
func DefaultCommand() (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the dora executable to run isolated operators with: %w", err)
	}
	return exec.Command(exe, Subcommand), nil
}

// Probe implements runtime.Prober: the operator host command must exist.
func (l *Loader) Probe() error {
	cmd, err := l.cfg.Command()
	if err != nil {
		return err
	}
	if cmd.Err != nil {
		return fmt.Errorf("isolated operators: %w", cmd.Err)
	}
	st, err := os.Stat(cmd.Path)
	if err != nil {
		return fmt.Errorf("isolated operators: the operator host: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("isolated operators: the operator host %s is not an executable file", cmd.Path)
	}
	return nil
}

// ProbeKind says whether operators of kind can run isolated here: the
// operator host must start, and the kind's loader must work (the child
// is this same binary on this same machine).
func (l *Loader) ProbeKind(kind descriptor.SourceKind) error {
	if err := l.Probe(); err != nil {
		return err
	}
	inner, ok := l.inner[kind]
	if !ok {
		return fmt.Errorf("no %s loader is built into this binary to run isolated operators with", kind)
	}
	if p, ok := inner.(runtime.Prober); ok {
		return p.Probe()
	}
	return nil
}

// Load implements runtime.Loader: it starts an operator host and has it
// load the operator. Errors of the child's loader come back as the
// *runtime.OperatorError it returned, sentinels included; a child that
// dies while loading is reported with runtime.ErrOperatorCrashed.
func (l *Loader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	o := newOperator(l, spec)
	if err := ctx.Err(); err != nil {
		return nil, o.wrap(runtime.PhaseLoad, err)
	}
	if spec.Operator == nil {
		return nil, o.wrap(runtime.PhaseLoad, errors.New("the spec names no operator"))
	}
	if _, ok := l.inner[o.kind]; !ok {
		return nil, o.wrap(runtime.PhaseLoad, fmt.Errorf("no %s loader is built into this binary to run the operator with", o.kind))
	}
	c, err := o.start(ctx, spec)
	if err != nil {
		return nil, err
	}
	o.setChild(c)
	return o, nil
}
