package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	wasmabi "github.com/dora-go/dora/abi/wasm"
	"github.com/dora-go/dora/runtime"
)

// instance is one instantiation of an operator's module in its own wazero
// Runtime. Reload replaces it; everything else about the operator lives
// in Operator.
type instance struct {
	r       wazero.Runtime
	mod     api.Module
	mem     api.Memory
	logger  *slog.Logger
	timeout time.Duration
	limit   uint64

	alloc, onEvent, drop, save, restore api.Function

	// The input buffer: the guest's last dora_alloc result.
	bufPtr, bufCap uint32
	stack          [7]uint64
	ectx           *eventCtx
	watchdog       *watchdog

	// Per call state, written by the host functions.
	sender  runtime.Sender
	sendErr error
	sendID  string
	errSet  bool
	errBuf  []byte
	state   []byte
	inState bool
	outIDs  map[string]string

	// dead is set once the instance cannot run again (trap, time limit,
	// proc_exit): every later call returns it.
	dead error
}

// exportSig is the type an ABI export must have.
type exportSig struct {
	name     string
	required bool
	params   []api.ValueType
	results  []api.ValueType
}

var (
	i32        = api.ValueTypeI32
	abiExports = []exportSig{
		{wasmabi.ExportAlloc, true, []api.ValueType{i32}, []api.ValueType{i32}},
		{wasmabi.ExportOnEvent, true, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}},
		{wasmabi.ExportInit, false, nil, []api.ValueType{i32}},
		{wasmabi.ExportDrop, false, nil, nil},
		{wasmabi.ExportABIVersion, false, nil, []api.ValueType{i32}},
		{wasmabi.ExportSaveState, false, nil, []api.ValueType{i32}},
		{wasmabi.ExportRestoreState, false, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	}
)

// loadError carries the phase a failure belongs to up to the caller, which
// wraps it in a *runtime.OperatorError.
type loadError struct {
	phase runtime.Phase
	err   error
}

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

func phaseErr(p runtime.Phase, format string, args ...any) error {
	return &loadError{phase: p, err: fmt.Errorf(format, args...)}
}

// checkHeader tells a non-wasm file from a broken module before wazero
// gives a decoder message.
func checkHeader(path string, bin []byte) error {
	magic := []byte("\x00asm")
	switch {
	case len(bin) < 8 || !bytes.Equal(bin[:4], magic):
		head := bin
		if len(head) > 8 {
			head = head[:8]
		}
		return fmt.Errorf("%w: %s starts with %q, not \"\\x00asm\"", ErrNotWasm, path, head)
	case bin[4] == 1 && bin[5] == 0 && bin[6] == 0 && bin[7] == 0:
		return nil
	case bin[6] == 1 && bin[7] == 0:
		return fmt.Errorf("%w: %s is a WebAssembly component; dora runs core modules (build for wasip1, not wasip2)", ErrNotWasm, path)
	}
	return fmt.Errorf("%w: %s has WebAssembly version % x, want 01 00 00 00", ErrNotWasm, path, bin[4:8])
}

// parseMount reads one Sandbox.Mounts entry, "host:guest[:ro|:rw]", with
// the host side resolved against workDir.
func parseMount(m, workDir string) (host, guest string, readOnly bool, err error) {
	parts := strings.Split(m, ":")
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		readOnly = parts[2] == "ro"
	case len(parts) != 2:
		return "", "", false, fmt.Errorf("sandbox mount %q: want host:guest or host:guest:ro", m)
	}
	host, guest = parts[0], parts[1]
	if host == "" || guest == "" {
		return "", "", false, fmt.Errorf("sandbox mount %q: empty path", m)
	}
	if !filepath.IsAbs(host) {
		host = filepath.Join(workDir, host)
	}
	st, err := os.Stat(host)
	if err != nil {
		return "", "", false, fmt.Errorf("sandbox mount %q: %w", m, err)
	}
	if !st.IsDir() {
		return "", "", false, fmt.Errorf("sandbox mount %q: %s is not a folder", m, host)
	}
	return host, guest, readOnly, nil
}

// limits returns the operator's memory limit and event time limit.
func (l *Loader) limits(spec runtime.OperatorSpec) (uint64, time.Duration) {
	mem, timeout := l.cfg.MemoryLimit, l.cfg.EventTimeout
	if spec.Operator != nil && spec.Operator.Sandbox != nil {
		if s := spec.Operator.Sandbox; s.MemoryLimit > 0 {
			mem = s.MemoryLimit
		}
		if s := spec.Operator.Sandbox; s.EventTimeout != 0 {
			timeout = s.EventTimeout
		}
	}
	return mem, timeout
}

// instantiate reads, compiles and initialises the module of spec. It
// honours ctx at every step; compilation, which wazero cannot interrupt,
// goes on in the background after ctx is done and only fills the cache.
func (l *Loader) instantiate(ctx context.Context, spec runtime.OperatorSpec, logger *slog.Logger) (_ *instance, err error) {
	if err := ctx.Err(); err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "%w", err)
	}
	bin, err := os.ReadFile(spec.Path)
	if err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "%w", err)
	}
	if err := checkHeader(spec.Path, bin); err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "%w", err)
	}
	// A module the scan cannot read goes on to wazero, whose decoder says
	// precisely what is wrong.
	if surface, err := scanModule(bin); err == nil {
		if err := surface.check(spec.Path); err != nil {
			return nil, phaseErr(runtime.PhaseLoad, "%w", err)
		}
	}
	l.setup()
	memLimit, timeout := l.limits(spec)

	fsConfig := wazero.NewFSConfig()
	if spec.Operator != nil && spec.Operator.Sandbox != nil {
		for _, m := range spec.Operator.Sandbox.Mounts {
			host, guest, ro, err := parseMount(m, spec.WorkDir)
			if err != nil {
				return nil, phaseErr(runtime.PhaseLoad, "%w", err)
			}
			if ro {
				fsConfig = fsConfig.WithReadOnlyDirMount(host, guest)
			} else {
				fsConfig = fsConfig.WithDirMount(host, guest)
			}
		}
	}

	if err := l.acquire(); err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "%w", err)
	}
	inst := &instance{logger: logger, timeout: timeout, limit: memLimit, outIDs: map[string]string{}}
	inst.r = wazero.NewRuntimeWithConfig(context.Background(), l.runtimeConfig(memLimit, timeout > 0))
	released := false
	defer func() {
		if err != nil {
			inst.closeRuntime()
			if !released {
				l.release()
			}
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, inst.r); err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "WASI: %w", err)
	}
	if err := inst.instantiateHost(ctx); err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "host module %q: %w", wasmabi.ImportModule, err)
	}

	leave, err := compiles.enter(ctx, sha256.Sum256(bin))
	if err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "waiting for another compilation of %s: %w", spec.Path, err)
	}
	compiled, err := compileAsync(ctx, inst.r, bin, l.release, leave)
	if err != nil {
		if errors.Is(err, errAbandoned) {
			// The compiling goroutine owns the runtime now: it closes it
			// and releases the loader when wazero is done.
			inst.r, released = nil, true
			return nil, phaseErr(runtime.PhaseLoad, "%w", ctx.Err())
		}
		if strings.Contains(err.Error(), "over limit of") {
			return nil, phaseErr(runtime.PhaseLoad, "%w: %s needs more memory than the operator's %s limit: %v", ErrMemoryLimit, spec.Path, mib(memLimit), err)
		}
		return nil, phaseErr(runtime.PhaseLoad, "%w: %s: %v", ErrNotWasm, spec.Path, err)
	}
	if err := checkSignatures(spec.Path, compiled); err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "%w", err)
	}

	stdout, stderr := io.Writer(os.Stdout), io.Writer(os.Stderr)
	if spec.Stdout != nil {
		stdout = spec.Stdout
	}
	if spec.Stderr != nil {
		stderr = spec.Stderr
	}
	name := "operator"
	if spec.Operator != nil && spec.Operator.ID != "" {
		name = spec.Operator.ID
	}
	modConfig := wazero.NewModuleConfig().
		WithName(name).
		WithStdout(stdout).
		WithStderr(stderr).
		WithFSConfig(fsConfig).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStartFunctions() // run below, under the time limit

	inst.mod, err = inst.r.InstantiateModule(ctx, compiled, modConfig)
	if err != nil {
		return nil, phaseErr(runtime.PhaseLoad, "instantiate: %w", err)
	}
	inst.mem = inst.mod.Memory()
	if timeout > 0 {
		inst.ectx = newEventCtx()
		inst.watchdog = &l.watchdog
		l.watchdog.add(inst.ectx)
	}
	fn := inst.mod.ExportedFunction
	inst.alloc, inst.onEvent, inst.drop = fn(wasmabi.ExportAlloc), fn(wasmabi.ExportOnEvent), fn(wasmabi.ExportDrop)
	inst.save, inst.restore = fn(wasmabi.ExportSaveState), fn(wasmabi.ExportRestoreState)

	if start := fn(wasmabi.ExportInitializeWASI); start != nil {
		if err := inst.call(ctx, start, wasmabi.ExportInitializeWASI, nil); err != nil {
			return nil, phaseErr(runtime.PhaseInit, "%w", err)
		}
	}
	if v := fn(wasmabi.ExportABIVersion); v != nil {
		var st [1]uint64
		if err := inst.call(ctx, v, wasmabi.ExportABIVersion, st[:]); err != nil {
			return nil, phaseErr(runtime.PhaseInit, "%w", err)
		}
		if int32(st[0]) != wasmabi.Version {
			return nil, phaseErr(runtime.PhaseLoad, "%s speaks dora wasm ABI version %d; this runtime speaks version %d", spec.Path, int32(st[0]), wasmabi.Version)
		}
	}
	if init := fn(wasmabi.ExportInit); init != nil {
		var st [1]uint64
		inst.errSet = false
		if err := inst.call(ctx, init, wasmabi.ExportInit, st[:]); err != nil {
			return nil, phaseErr(runtime.PhaseInit, "%w", err)
		}
		if res := int32(st[0]); res != 0 || inst.errSet {
			return nil, phaseErr(runtime.PhaseInit, "%w", inst.guestError(wasmabi.ExportInit, res))
		}
	}
	return inst, nil
}

// compiles lets one compilation of a module run at a time in the process:
// wazero's cache only serves a second compilation once the first has
// finished, and two concurrent compilations of a Go guest (seconds each)
// would only slow each other down.
var compiles = compileGate{busy: map[[32]byte]chan struct{}{}}

type compileGate struct {
	mu   sync.Mutex
	busy map[[32]byte]chan struct{}
}

// enter waits until no compilation of the module with this hash is in
// flight, or ctx is done; leave ends the caller's own compilation.
func (g *compileGate) enter(ctx context.Context, key [32]byte) (leave func(), err error) {
	for {
		g.mu.Lock()
		wait, busy := g.busy[key]
		if !busy {
			done := make(chan struct{})
			g.busy[key] = done
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				delete(g.busy, key)
				g.mu.Unlock()
				close(done)
			}, nil
		}
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// errAbandoned says that compileAsync returned because ctx was done.
var errAbandoned = errors.New("compilation abandoned")

// compileAsync compiles bin, returning errAbandoned early when ctx is
// done (wazero cannot interrupt a compilation). The abandoned compilation
// still fills the shared cache; then the goroutine closes r and calls
// release. leave is called as soon as the compilation ends.
func compileAsync(ctx context.Context, r wazero.Runtime, bin []byte, release, leave func()) (wazero.CompiledModule, error) {
	type result struct {
		c   wazero.CompiledModule
		err error
	}
	done := make(chan result) // unbuffered: exactly one side gets the runtime
	abandon := make(chan struct{})
	go func() {
		c, err := r.CompileModule(context.Background(), bin)
		leave()
		select {
		case done <- result{c, err}:
		case <-abandon:
			_ = r.Close(context.Background())
			release()
		}
	}()
	select {
	case res := <-done:
		return res.c, res.err
	case <-ctx.Done():
		close(abandon)
		// The result may have been ready at the same time.
		select {
		case res := <-done:
			return res.c, res.err
		default:
		}
		return nil, errAbandoned
	}
}

func mib(n uint64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// closeRuntime ends the instance and its runtime; it is idempotent.
func (in *instance) closeRuntime() {
	if in.watchdog != nil {
		in.watchdog.remove(in.ectx)
		in.watchdog = nil
	}
	if in.r != nil {
		_ = in.r.Close(context.Background())
		in.r = nil
	}
}
