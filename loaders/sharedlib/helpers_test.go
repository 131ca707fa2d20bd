package sharedlib

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebitengine/purego"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/testcc"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// abiInclude is abi/c, where operator_api.h lives.
var abiInclude, _ = filepath.Abs(filepath.Join("..", "..", "abi", "c"))

// buildDir holds the fixtures compiled once per test process.
var buildDir string

func TestMain(m *testing.M) {
	if os.Getenv("SHAREDLIB_HELPER") != "" {
		// A re-executed helper (stdout_test.go) builds nothing and ends
		// with os.Exit.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "sharedlib-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// buildLib compiles testdata/<src> with -shared -fPIC -Wall -Werror -O2
// into <dir>/lib<name>.so and returns that path. dir "" means the shared
// per-process build folder, where each (src, flags) is built once.
func buildLib(tb testing.TB, dir, src string, flags ...string) string {
	tb.Helper()
	name := strings.TrimSuffix(src, ".c")
	key := src + " " + strings.Join(flags, " ")
	if dir == "" {
		buildMu.Lock()
		defer buildMu.Unlock()
		if p, ok := built[key]; ok {
			return p
		}
		dir = filepath.Join(buildDir, fmt.Sprint(len(built)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		defer func() {
			if !tb.Failed() {
				built[key] = filepath.Join(dir, "lib"+name+".so")
			}
		}()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "lib"+name+".so")
	testcc.SharedLib(tb, filepath.Join("testdata", src), out, abiInclude, flags...)
	return out
}

// buildProgram compiles testdata/<src> into an executable.
func buildProgram(tb testing.TB, src string, flags ...string) string {
	tb.Helper()
	cc := testcc.Compiler(tb)
	out := filepath.Join(tb.TempDir(), strings.TrimSuffix(src, ".c"))
	args := append([]string{"-Wall", "-Werror", "-O2", "-I", abiInclude, "-o", out}, flags...)
	args = append(args, filepath.Join("testdata", src))
	if msg, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, msg)
	}
	return out
}

func specFor(path, id string) runtime.OperatorSpec {
	return runtime.OperatorSpec{
		NodeID:   "runtime-node",
		Operator: &descriptor.Operator{ID: id, Source: descriptor.OperatorSource{Kind: descriptor.SourceSharedLibrary, Path: path}},
		Path:     path,
	}
}

func ctxFor(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// loadLib loads the library at path and closes it at cleanup.
func loadLib(tb testing.TB, path string) *operator {
	tb.Helper()
	op, err := New(nil).Load(ctxFor(tb), specFor(path, filepath.Base(path)))
	if err != nil {
		tb.Fatalf("Load(%s): %v", path, err)
	}
	tb.Cleanup(func() { _ = op.Close() })
	return op.(*operator)
}

// send runs one INPUT event and returns the status, the outputs and the
// error.
func send(tb testing.TB, op runtime.Operator, id string, data []byte) (runtime.Status, []runtime.Output, error) {
	tb.Helper()
	var rec runtimetest.Recorder
	st, err := op.OnEvent(ctxFor(tb), runtimetest.Input(id, data), &rec)
	return st, rec.Take(), err
}

// one runs an INPUT event that must succeed with exactly one output, and
// returns it.
func one(tb testing.TB, op runtime.Operator, id string, data []byte) runtime.Output {
	tb.Helper()
	_, outs, err := send(tb, op, id, data)
	if err != nil {
		tb.Fatalf("OnEvent(%q): %v", id, err)
	}
	if len(outs) != 1 {
		tb.Fatalf("OnEvent(%q): %d outputs %+v, want 1", id, len(outs), outs)
	}
	return outs[0]
}

// withPortableCalls runs the rest of the test with the RegisterFunc path.
func withPortableCalls(t *testing.T) {
	old := useSyscallSret
	useSyscallSret = false
	t.Cleanup(func() { useSyscallSret = old })
}

// sym resolves an exported function of a fixture that is loaded already
// (dlopen hands back the same object and bumps its count).
func sym(tb testing.TB, lib, name string) uintptr {
	tb.Helper()
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = purego.Dlclose(h) })
	p, err := purego.Dlsym(h, name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// allocHooks replaces the loader's malloc, calloc and free with counting
// callbacks for the rest of the test. Callback slots are never freed, so
// they are made once per process.
type allocHooks struct {
	mu     sync.Mutex
	allocs map[uintptr]int // loader allocations per address
	frees  map[uintptr]int // loader frees per address
}

var (
	hooksOnce sync.Once
	hooks     allocHooks
	hookCB    struct{ malloc, calloc, free uintptr }
	realLibc  libcFuncs
)

func installAllocHooks(t *testing.T) *allocHooks {
	t.Helper()
	if err := loadLibc(); err != nil {
		t.Fatal(err)
	}
	hooksOnce.Do(func() {
		realLibc = libc
		hookCB.malloc = purego.NewCallback(func(n uintptr) uintptr {
			p, _, _ := purego.SyscallN(realLibc.malloc, n)
			hooks.note(hooks.allocs, p)
			return p
		})
		hookCB.calloc = purego.NewCallback(func(k, n uintptr) uintptr {
			p, _, _ := purego.SyscallN(realLibc.calloc, k, n)
			hooks.note(hooks.allocs, p)
			return p
		})
		hookCB.free = purego.NewCallback(func(p uintptr) {
			hooks.note(hooks.frees, p)
			purego.SyscallN(realLibc.free, p)
		})
	})
	hooks.mu.Lock()
	hooks.allocs, hooks.frees = map[uintptr]int{}, map[uintptr]int{}
	hooks.mu.Unlock()
	libc.malloc, libc.calloc, libc.free = hookCB.malloc, hookCB.calloc, hookCB.free
	t.Cleanup(func() { libc.malloc, libc.calloc, libc.free = realLibc.malloc, realLibc.calloc, realLibc.free })
	return &hooks
}

func (h *allocHooks) note(m map[uintptr]int, p uintptr) {
	if p == 0 {
		return
	}
	h.mu.Lock()
	m[p]++
	h.mu.Unlock()
}

func (h *allocHooks) freed(p uintptr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.frees[p]
}

// balance checks that every address was freed by the loader exactly as
// often as it was handed over (by the operator, counted in handed) or
// allocated (by the loader).
func (h *allocHooks) balance(t *testing.T, handed map[uintptr]int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[uintptr]int{}
	for p, n := range handed {
		want[p] += n
	}
	for p, n := range h.allocs {
		want[p] += n
	}
	var bad []string
	for p, n := range want {
		if h.frees[p] != n {
			bad = append(bad, fmt.Sprintf("%#x: %d handed/allocated, %d freed", p, n, h.frees[p]))
		}
	}
	for p, n := range h.frees {
		if _, ok := want[p]; !ok {
			bad = append(bad, fmt.Sprintf("%#x: freed %d times, never handed over", p, n))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d buffers out of balance:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if len(want) == 0 {
		t.Error("no allocation was tracked: the hooks are not in the path")
	}
}

// discard is a Sender that drops every output without allocating.
type discard struct{}

func (discard) Send(runtime.Output) error { return nil }

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
