// Package wasm is the runtime.Loader for WebAssembly operators: modules
// that speak the dora wasm ABI (abi/wasm/ABI.md), written in any language
// that compiles to wasm32 (Go with operators/wasmguest, C with
// abi/wasm/dora_operator.h, ...), and run sandboxed by wazero.
//
// Each operator gets its own wazero Runtime, and so its own memory limit
// and its own lifetime: a trap, a runaway loop or an exhausted memory
// ends that operator only. All the runtimes of a Loader share one
// compilation cache, which holds the compiled machine code in memory
// (a second operator from the same file does not compile again) and on
// disk (a restarted process does not compile again). See ABI.md,
// "Host decisions", for the reasoning.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Defaults for operators whose sandbox does not set a limit.
const (
	DefaultMemoryLimit  = 256 << 20
	DefaultEventTimeout = 5 * time.Second
)

// EnvCacheDir names the environment variable that overrides the root of
// dora's cache; compiled modules go to its "wazero" folder.
const EnvCacheDir = "DORA_CACHE_DIR"

// ErrMemoryLimit is wrapped (next to the phase's sentinel, if any) when an
// operator needs more linear memory than its sandbox allows.
var ErrMemoryLimit = errors.New("wasm memory limit")

// ErrNotWasm is wrapped when a file is not a WebAssembly core module.
var ErrNotWasm = errors.New("not a WebAssembly module")

// Config tunes a Loader. The zero Config is the production default.
type Config struct {
	// CacheDir is where compiled modules persist across restarts. Empty
	// means $DORA_CACHE_DIR/wazero, else os.UserCacheDir()/dora/wazero.
	CacheDir string
	// NoPersistentCache keeps compiled code in memory only.
	NoPersistentCache bool
	// MemoryLimit and EventTimeout apply to operators whose sandbox does
	// not set them; zero means DefaultMemoryLimit and DefaultEventTimeout.
	// A negative EventTimeout (here or in a sandbox) means no time limit:
	// guest calls are several times cheaper (no interruption checks are
	// compiled in, and wazero starts no goroutine per call), but a guest
	// that never returns hangs its operator for good, and neither the
	// time limit nor a cancelled context can stop it. For trusted,
	// latency-critical operators only.
	MemoryLimit  uint64
	EventTimeout time.Duration
	// Interpreter runs guests with wazero's interpreter instead of its
	// compiler (which is used where the platform supports it).
	Interpreter bool
	// Logger receives the loader's own messages (cache trouble). Operator
	// messages go to each spec's Logger.
	Logger *slog.Logger
}

// Loader loads wasm operators. It is safe for concurrent use. Close it
// after its operators are closed to release the compiled code.
type Loader struct {
	cfg    Config
	logger *slog.Logger

	once     sync.Once
	cache    wazero.CompilationCache
	cacheDir string
	cacheErr error
	engine   string

	watchdog watchdog

	mu      sync.Mutex
	live    int
	closing bool
	closed  bool
}

var (
	_ runtime.Loader   = (*Loader)(nil)
	_ runtime.Prober   = (*Loader)(nil)
	_ runtime.Operator = (*Operator)(nil)
	_ runtime.Reloader = (*Operator)(nil)
)

// New returns a loader. It touches nothing until the first Load or Probe.
func New(cfg Config) *Loader {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.EventTimeout == 0 {
		cfg.EventTimeout = DefaultEventTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Loader{cfg: cfg, logger: logger.With("loader", string(descriptor.SourceWASM))}
}

// DefaultCacheDir is where compiled modules persist when Config.CacheDir
// is empty: $DORA_CACHE_DIR/wazero, else os.UserCacheDir()/dora/wazero.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return filepath.Join(d, "wazero"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for compiled wasm (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(d, "dora", "wazero"), nil
}

// setup creates the shared compilation cache once. A persistent cache
// that cannot be created is not fatal: the loader logs why and keeps
// compiled code in memory only.
func (l *Loader) setup() {
	l.once.Do(func() {
		l.engine = "compiler"
		if l.cfg.Interpreter || !compilerSupported() {
			l.engine = "interpreter"
		}
		if l.cfg.NoPersistentCache {
			l.cache = wazero.NewCompilationCache()
			return
		}
		dir := l.cfg.CacheDir
		if dir == "" {
			dir, l.cacheErr = DefaultCacheDir()
		}
		if l.cacheErr == nil {
			l.cache, l.cacheErr = wazero.NewCompilationCacheWithDir(dir)
		}
		if l.cacheErr != nil {
			l.logger.Warn("compiled wasm modules will not persist across restarts", "err", l.cacheErr)
			l.cache = wazero.NewCompilationCache()
			return
		}
		l.cacheDir = dir
	})
}

// compilerSupported reports whether wazero can compile to machine code on
// this platform (NewRuntimeConfigCompiler panics where it cannot).
func compilerSupported() (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	wazero.NewRuntimeConfigCompiler()
	return true
}

// CacheDir returns the folder compiled modules persist in, or "" when
// they are kept in memory only.
func (l *Loader) CacheDir() string {
	l.setup()
	return l.cacheDir
}

// Engine says which wazero engine runs guests: "compiler" or "interpreter".
func (l *Loader) Engine() string {
	l.setup()
	return l.engine
}

// runtimeConfig is the configuration of one operator's wazero Runtime.
// Runtimes of a loader differ only in the memory limit and in whether
// calls can be interrupted (timed): the latter changes the compiled code,
// and the shared cache keeps both variants apart.
func (l *Loader) runtimeConfig(memLimit uint64, timed bool) wazero.RuntimeConfig {
	var rc wazero.RuntimeConfig
	if l.engine == "interpreter" {
		rc = wazero.NewRuntimeConfigInterpreter()
	} else {
		rc = wazero.NewRuntimeConfigCompiler()
	}
	return rc.
		WithCompilationCache(l.cache).
		WithCloseOnContextDone(timed).
		WithMemoryLimitPages(limitPages(memLimit)).
		WithCustomSections(false)
}

// limitPages converts a byte limit to 64 KiB wasm pages, rounding up and
// clamping to what wasm32 can address.
func limitPages(limit uint64) uint32 {
	const page, maxPages = 1 << 16, 1 << 16
	p := (limit + page - 1) / page
	switch {
	case p < 1:
		return 1
	case p > maxPages:
		return maxPages
	}
	return uint32(p)
}

// Probe implements runtime.Prober: it runs a tiny module through the
// engine this loader uses (the compiler needs executable memory, which
// some hardened systems refuse), and reports a persistent cache that
// cannot be used.
func (l *Loader) Probe() error {
	l.setup()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, l.runtimeConfig(1<<20, true))
	defer r.Close(ctx)
	// (module (func (export "f") (result i32) i32.const 7))
	probe := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
		0x03, 0x02, 0x01, 0x00,
		0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00,
		0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x07, 0x0b,
	}
	mod, err := r.Instantiate(ctx, probe)
	if err != nil {
		return fmt.Errorf("wasm operators cannot run here: wazero's %s fails on a trivial module: %w", l.engine, err)
	}
	res, err := mod.ExportedFunction("f").Call(ctx)
	if err != nil || len(res) != 1 || res[0] != 7 {
		return fmt.Errorf("wasm operators cannot run here: wazero's %s returns %v, %v for a trivial module", l.engine, res, err)
	}
	if l.cacheErr != nil {
		return fmt.Errorf("wasm operators run, but compiled code is not cached across restarts (each start recompiles): %w", l.cacheErr)
	}
	return nil
}

// Close releases the compiled code once every operator of the loader is
// closed (immediately if none is loaded). Loads after Close fail.
func (l *Loader) Close() error {
	l.mu.Lock()
	l.closing = true
	last := l.live == 0 && !l.closed
	if last {
		l.closed = true
	}
	l.mu.Unlock()
	if last && l.cache != nil {
		return l.cache.Close(context.Background())
	}
	return nil
}

// acquire counts a live runtime; release undoes it and closes the cache
// when the loader was closed meanwhile.
func (l *Loader) acquire() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return errors.New("the wasm loader is closed")
	}
	l.live++
	return nil
}

func (l *Loader) release() {
	l.mu.Lock()
	l.live--
	last := l.closing && l.live == 0 && !l.closed
	if last {
		l.closed = true
	}
	l.mu.Unlock()
	if last {
		_ = l.cache.Close(context.Background())
	}
}
