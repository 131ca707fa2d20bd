package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// shared holds what every test of the binary reuses: fixtures are built
// once, and loaders share one compilation cache folder so that a Go guest
// compiles once per test run.
var shared struct {
	dir      string
	cacheDir string

	mu     sync.Mutex
	builds map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
	skip string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dora-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared.dir = dir
	// Compiling a Go guest takes seconds (tens of seconds under -race),
	// so the tests share a compilation cache that outlives the run. Its
	// entries are keyed by module content and wazero version, so a stale
	// one is never used. TestCompilationCachePersists uses a fresh folder.
	shared.cacheDir = filepath.Join(os.TempDir(), "dora-wasm-test-cache")
	shared.builds = map[string]*build{}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// once builds a fixture at most once per test binary.
func once(key string, f func(out string) (skip string, err error)) (string, string, error) {
	shared.mu.Lock()
	b, ok := shared.builds[key]
	if !ok {
		b = &build{path: filepath.Join(shared.dir, strings.NewReplacer("/", "_", " ", "_").Replace(key)+".wasm")}
		shared.builds[key] = b
	}
	shared.mu.Unlock()
	b.once.Do(func() { b.skip, b.err = f(b.path) })
	return b.path, b.skip, b.err
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// goGuest builds loaders/wasm/testdata/<name> for GOOS=wasip1 and returns
// the module's path. Extra go build flags replace -buildmode=c-shared.
func goGuest(t testing.TB, name string, flags ...string) string {
	t.Helper()
	if flags == nil {
		flags = []string{"-buildmode=c-shared"}
	}
	root := repoRoot(t)
	p, _, err := once("go "+name+" "+strings.Join(flags, " "), func(out string) (string, error) {
		args := append(append([]string{"build"}, flags...), "-o", out, "./loaders/wasm/testdata/"+name)
		cmd := exec.Command(goTool(), args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// aptClang is the exact command that installs what cGuest needs.
const aptClang = "apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"

// clang finds clang and a PATH under which it finds wasm-ld.
func clang() (bin string, path string) {
	path = os.Getenv("PATH")
	for _, dir := range []string{"/usr/lib/llvm-14/bin", "/usr/lib/llvm-15/bin", "/usr/lib/llvm-16/bin"} {
		if _, err := os.Stat(filepath.Join(dir, "clang")); err == nil {
			return filepath.Join(dir, "clang"), dir + string(os.PathListSeparator) + path
		}
	}
	if p, err := exec.LookPath("clang"); err == nil {
		return p, path
	}
	return "", path
}

// cGuest builds testdata/c/echo.c with the given -D flags, or skips the
// test when no wasm32-wasi C toolchain is installed.
func cGuest(t testing.TB, defines ...string) string {
	t.Helper()
	root := repoRoot(t)
	p, skip, err := once("c "+strings.Join(defines, " "), func(out string) (string, error) {
		cc, path := clang()
		if cc == "" {
			return "no clang for wasm32-wasi; install it with: " + aptClang, nil
		}
		run := func(src string, extra ...string) ([]byte, error) {
			args := append([]string{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-mexec-model=reactor", "-fuse-ld=lld",
				"-I", filepath.Join(root, "abi", "wasm"), "-o", out}, extra...)
			args = append(args, src)
			cmd := exec.Command(cc, args...)
			cmd.Env = append(os.Environ(), "PATH="+path)
			return cmd.CombinedOutput()
		}
		b, err := run(filepath.Join(root, "loaders", "wasm", "testdata", "c", "echo.c"), defines...)
		if err == nil {
			return "", nil
		}
		// Tell an incomplete toolchain (no wasm-ld, no wasi-libc) from a
		// broken fixture: a trivial program must build.
		probe := filepath.Join(filepath.Dir(out), "probe.c")
		os.WriteFile(probe, []byte("#include <stdlib.h>\n#include <string.h>\n__attribute__((export_name(\"f\"))) int f(void) { return (int)strlen(\"\"); }\n"), 0o644)
		if pb, perr := run(probe); perr != nil {
			return fmt.Sprintf("clang cannot build wasm32-wasi reactors (%v: %s); install the toolchain with: %s", perr, bytes.TrimSpace(pb), aptClang), nil
		}
		return "", fmt.Errorf("clang echo.c %v: %v\n%s", defines, err, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	return p
}

func newLoader(t testing.TB, cfg Config) *Loader {
	t.Helper()
	if cfg.CacheDir == "" && !cfg.NoPersistentCache {
		cfg.CacheDir = shared.cacheDir
	}
	l := New(cfg)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func specFor(path, id string, sb *descriptor.Sandbox) runtime.OperatorSpec {
	return runtime.OperatorSpec{
		NodeID:   "node",
		Operator: &descriptor.Operator{ID: id, Source: descriptor.OperatorSource{Kind: descriptor.SourceWASM, Path: path}, Sandbox: sb},
		Path:     path,
		WorkDir:  filepath.Dir(path),
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func load(t testing.TB, l *Loader, spec runtime.OperatorSpec) *Operator {
	t.Helper()
	op, err := l.Load(testCtx(t), spec)
	if err != nil {
		t.Fatalf("Load(%s): %v", spec.Path, err)
	}
	t.Cleanup(func() { _ = op.Close() })
	return op.(*Operator)
}

// mustEcho checks that op still echoes.
func mustEcho(t testing.TB, op runtime.Operator) {
	t.Helper()
	var rec runtimetest.Recorder
	st, err := op.OnEvent(testCtx(t), runtimetest.Input("still", []byte("alive")), &rec)
	outs := rec.Take()
	if err != nil || st != runtime.StatusContinue || len(outs) != 1 || string(outs[0].Data) != "alive" {
		t.Fatalf("operator does not echo any more: status %v, err %v, outputs %+v", st, err, outs)
	}
}

// wantOpErr checks that err is an *runtime.OperatorError naming the node
// and operator, in phase, wrapping every one of causes.
func wantOpErr(t testing.TB, err error, phase runtime.Phase, causes ...error) *runtime.OperatorError {
	t.Helper()
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T) is not an *OperatorError", err, err)
	}
	if oe.Phase != phase || oe.Node == "" || oe.Operator == "" || oe.Loader != descriptor.SourceWASM {
		t.Errorf("error %q: phase %q node %q operator %q loader %q, want phase %q and all named", err, oe.Phase, oe.Node, oe.Operator, oe.Loader, phase)
	}
	for _, c := range causes {
		if !errors.Is(err, c) {
			t.Errorf("error %q does not wrap %q", err, c)
		}
	}
	return oe
}

func wantContains(t testing.TB, err error, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not contain %q", err, s)
		}
	}
}

// module assembles a tiny wasm module: each export is a function of the
// given type, whose body returns zeros; memory exports one page.
type fnExport struct {
	name            string
	params, results int // counts of i32
}

func module(memory bool, imports []string, exports ...fnExport) []byte {
	le := func(n int) []byte { // unsigned LEB128
		var b []byte
		for {
			c := byte(n & 0x7f)
			n >>= 7
			if n != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	section := func(id byte, body []byte) []byte { return append(append([]byte{id}, le(len(body))...), body...) }
	name := func(s string) []byte { return append(le(len(s)), s...) }
	out := []byte("\x00asm\x01\x00\x00\x00")
	var types, funcs, exps, code []byte
	types = le(len(exports) + 1)
	types = append(types, 0x60, 0, 0) // type 0: () -> () for imports
	for _, e := range exports {
		types = append(types, 0x60)
		types = append(types, le(e.params)...)
		for i := 0; i < e.params; i++ {
			types = append(types, 0x7f)
		}
		types = append(types, le(e.results)...)
		for i := 0; i < e.results; i++ {
			types = append(types, 0x7f)
		}
	}
	out = append(out, section(1, types)...)
	if len(imports) > 0 {
		imp := le(len(imports))
		for _, full := range imports {
			mod, fn, _ := strings.Cut(full, ".")
			imp = append(imp, name(mod)...)
			imp = append(imp, name(fn)...)
			imp = append(imp, 0x00, 0x00) // func, type 0
		}
		out = append(out, section(2, imp)...)
	}
	funcs = le(len(exports))
	for i := range exports {
		funcs = append(funcs, le(i+1)...)
	}
	out = append(out, section(3, funcs)...)
	if memory {
		out = append(out, section(5, []byte{1, 0, 1})...)
	}
	n := len(exports)
	if memory {
		n++
	}
	exps = le(n)
	for i, e := range exports {
		exps = append(exps, name(e.name)...)
		exps = append(exps, 0x00)
		exps = append(exps, le(i+len(imports))...)
	}
	if memory {
		exps = append(exps, name("memory")...)
		exps = append(exps, 0x02, 0x00)
	}
	out = append(out, section(7, exps)...)
	code = le(len(exports))
	for _, e := range exports {
		body := []byte{0}
		for i := 0; i < e.results; i++ {
			body = append(body, 0x41, 0)
		}
		body = append(body, 0x0b)
		code = append(code, le(len(body))...)
		code = append(code, body...)
	}
	return append(out, section(10, code)...)
}
