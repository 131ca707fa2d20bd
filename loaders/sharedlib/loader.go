package sharedlib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/ebitengine/purego"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// The C entry points, in the order they are checked and reported.
const (
	symInit    = "dora_init_operator"
	symOnEvent = "dora_on_event"
	symDrop    = "dora_drop_operator"
)

// ErrNotLoadable is wrapped when dlopen refuses a file: a text file, an
// executable, a library for another architecture. The message carries
// dlerror's text.
var ErrNotLoadable = errors.New("not a loadable shared library")

// Loader loads C-ABI shared-library operators (abi/c/operator_api.h). The
// zero value is ready to use; Logger, when set, is used for operators whose
// spec carries no logger.
type Loader struct {
	Logger *slog.Logger
}

// New returns a Loader that logs to logger (nil: nowhere, unless a spec
// brings its own).
func New(logger *slog.Logger) *Loader { return &Loader{Logger: logger} }

var (
	_ runtime.Loader   = (*Loader)(nil)
	_ runtime.Prober   = (*Loader)(nil)
	_ runtime.Operator = (*operator)(nil)
	_ runtime.Reloader = (*operator)(nil)
)

// Probe reports whether shared-library operators can run in this process:
// dynamic loading through purego needs a dynamically linked binary with a
// C library to resolve malloc, free and stdio from, and purego's struct
// passing (amd64, arm64).
func (l *Loader) Probe() error {
	if err := platformErr(); err != nil {
		return err
	}
	if err := loadLibc(); err != nil {
		return fmt.Errorf("shared-library operators cannot be loaded: %w", err)
	}
	return nil
}

// platformErr says why this platform cannot run C operators, or nil.
func platformErr() error {
	switch goruntime.GOARCH {
	case "amd64", "arm64":
		return nil
	}
	return fmt.Errorf("shared-library operators are not supported on %s: the C operator ABI passes structs by value, which purego supports on amd64 and arm64 only", goruntime.GOARCH)
}

// Load implements runtime.Loader: it resolves spec.Path with
// descriptor.ResolveSharedLibrary, dlopens it (RTLD_NOW|RTLD_LOCAL), checks
// the three entry points and calls dora_init_operator.
//
// dlopen and dora_init_operator cannot be interrupted. Load returns as soon
// as ctx is done; a load still running then finishes in the background and
// is dropped and unloaded at once.
func (l *Loader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	info := newOpInfo(spec, l.Logger)
	if err := ctx.Err(); err != nil {
		return nil, info.fail(runtime.PhaseLoad, err)
	}
	if err := platformErr(); err != nil {
		return nil, info.fail(runtime.PhaseLoad, err)
	}
	if err := loadLibc(); err != nil {
		return nil, info.fail(runtime.PhaseLoad, err)
	}
	type result struct {
		op  *operator
		err error
	}
	done := make(chan result, 1)
	go func() {
		op, err := load(ctx, info, spec.Path)
		done <- result{op, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		return r.op, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.op != nil {
				_ = r.op.Close()
			}
		}()
		return nil, info.fail(runtime.PhaseLoad, ctx.Err())
	}
}

func load(ctx context.Context, info opInfo, path string) (*operator, error) {
	start := time.Now()
	inst, err := openInstance(info, path, runtime.PhaseLoad)
	if err != nil {
		return nil, err
	}
	op, err := newOperator(info, inst)
	if err != nil {
		inst.unload()
		return nil, info.fail(runtime.PhaseLoad, err)
	}
	if err := ctx.Err(); err != nil {
		op.release()
		inst.unload()
		return nil, info.fail(runtime.PhaseLoad, err)
	}
	if err := op.initInstance(inst, runtime.PhaseInit); err != nil {
		op.release()
		inst.unload()
		return nil, err
	}
	op.inst = inst
	info.logger.Debug("shared-library operator loaded", "path", inst.path, "took", time.Since(start))
	return op, nil
}

// opInfo names an operator in errors and logs.
type opInfo struct {
	node, id string
	logger   *slog.Logger
}

func newOpInfo(spec runtime.OperatorSpec, fallback *slog.Logger) opInfo {
	info := opInfo{node: spec.NodeID, logger: spec.Logger}
	if spec.Operator != nil {
		info.id = spec.Operator.ID
	}
	if info.logger == nil {
		info.logger = fallback
	}
	if info.logger == nil {
		info.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return info
}

func (i opInfo) fail(phase runtime.Phase, err error) error {
	return &runtime.OperatorError{Node: i.node, Operator: i.id, Loader: descriptor.SourceSharedLibrary, Phase: phase, Err: err}
}

// instance is one dlopened copy of an operator library and the context its
// dora_init_operator returned.
type instance struct {
	path   string
	handle uintptr
	init   uintptr
	event  uintptr
	drop   uintptr
	// Portable entry points (purego.RegisterFunc, reflection) for platforms
	// where the hidden result pointer cannot go through SyscallN (arm64
	// passes it in x8), or when useSyscallSret is false.
	initFn  func() cInitResult
	eventFn func(ev, send, ctx uintptr) cOnEventResult
	dropFn  func(ctx uintptr) cResult
	// fast: the entry points are called with SyscallN and a hidden result
	// pointer (useSyscallSret when the library was opened).
	fast bool

	ctx uintptr
}

// useSyscallSret selects the fast path: purego.SyscallN with the hidden
// result pointer as first argument (SysV amd64 passes it in rdi and returns
// it in rax). Tests switch it off to exercise the portable path.
var useSyscallSret = goruntime.GOARCH == "amd64"

// openInstance dlopens path and resolves the entry points.
func openInstance(info opInfo, path string, phase runtime.Phase) (*instance, error) {
	resolved, err := descriptor.ResolveSharedLibrary(path)
	if err != nil {
		return nil, info.fail(phase, err)
	}
	return dlopenInstance(info, resolved, filepath.Base(resolved), phase)
}

// dlopenInstance opens file, naming it display in errors.
func dlopenInstance(info opInfo, file, display string, phase runtime.Phase) (*instance, error) {
	// dlerror is per thread: keep dlopen/dlsym and their dlerror on one.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	h, err := purego.Dlopen(file, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		// glibc's dlerror names the file; say it ourselves otherwise.
		if msg := err.Error(); !strings.Contains(msg, file) {
			return nil, info.fail(phase, fmt.Errorf("%s: %w: %s", file, ErrNotLoadable, msg))
		}
		return nil, info.fail(phase, fmt.Errorf("%w: %v", ErrNotLoadable, err))
	}
	inst := &instance{path: file, handle: h, fast: useSyscallSret}
	var missing []string
	for _, s := range []struct {
		name string
		addr *uintptr
	}{{symInit, &inst.init}, {symOnEvent, &inst.event}, {symDrop, &inst.drop}} {
		p, err := purego.Dlsym(h, s.name)
		if err != nil || p == 0 {
			missing = append(missing, s.name)
			continue
		}
		*s.addr = p
	}
	if len(missing) > 0 {
		_ = purego.Dlclose(h)
		return nil, info.fail(phase, fmt.Errorf("%s lacks %s: %w (see abi/c/operator_api.h)", display, strings.Join(missing, ", "), runtime.ErrMissingSymbol))
	}
	if !inst.fast {
		purego.RegisterFunc(&inst.initFn, inst.init)
		purego.RegisterFunc(&inst.eventFn, inst.event)
		purego.RegisterFunc(&inst.dropFn, inst.drop)
	}
	return inst, nil
}

func (in *instance) unload() error {
	if in.handle == 0 {
		return nil
	}
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	err := purego.Dlclose(in.handle)
	in.handle = 0
	if err != nil {
		return fmt.Errorf("dlclose %s: %v", filepath.Base(in.path), err)
	}
	return nil
}

// copyForReload copies the library at path into a fresh temporary folder
// and returns the copy's path: dlopen returns the already-loaded object for
// a path or inode it knows, so reloading in place would hand back the old
// code. The caller removes dir once the copy is dlopened (the mapping
// survives the unlink).
func copyForReload(path string) (file, dir string, err error) {
	resolved, err := descriptor.ResolveSharedLibrary(path)
	if err != nil {
		return "", "", err
	}
	src, err := os.Open(resolved)
	if err != nil {
		return "", "", err
	}
	defer src.Close()
	dir, err = os.MkdirTemp("", "dora-reload-")
	if err != nil {
		return "", "", err
	}
	file = filepath.Join(dir, filepath.Base(resolved))
	dst, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o700)
	if err == nil {
		_, err = io.Copy(dst, src)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return file, dir, nil
}
