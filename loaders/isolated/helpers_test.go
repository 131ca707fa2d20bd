package isolated

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/proctest"
	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/internal/testcc"
	"github.com/dora-go/dora/loaders/python"
	"github.com/dora-go/dora/loaders/sharedlib"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// The tests re-run the test binary as the child (TestMain reads envChild),
// the way go-plugin's own tests do: as an operator host serving the mock,
// C and Python loaders, or as a child that misbehaves before the
// handshake, or as a runtime node (host) of its own.
const envChild = "DORA_ISOLATED_TEST_CHILD"

// Source kinds only the test children know.
const (
	kindMock descriptor.SourceKind = "mock"
	kindNoop descriptor.SourceKind = "noop"
)

var buildDir string

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		os.Exit(runChild(mode))
	}
	dir, err := os.MkdirTemp("", "isolated-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childLoaders are what the serving child loads operators with.
func childLoaders() map[descriptor.SourceKind]runtime.Loader {
	mock := &runtimetest.MockLoader{Scripts: map[string]runtimetest.Script{
		"mock:" + string(runtimetest.FixtureInitError):         {FailInit: true},
		"mock:" + string(runtimetest.FixtureMissingEntryPoint): {MissingEntry: true},
		"mock:exit-on-3":  {ExitOn: 3, ExitCode: 7},
		"mock:exit-on-1":  {ExitOn: 1, ExitCode: 9},
		"mock:hang-on-1":  {HangOn: 1},
		"mock:panic-on-1": {PanicOn: 1},
	}}
	return map[descriptor.SourceKind]runtime.Loader{
		kindMock:                       mock,
		kindNoop:                       noopLoader{},
		descriptor.SourceSharedLibrary: sharedlib.New(nil),
		descriptor.SourcePython:        python.New(),
	}
}

func runChild(mode string) int {
	switch mode {
	case "serve":
		defer sharedlib.FlushC()
		if err := Serve(ServeConfig{Loaders: childLoaders(), LogLevel: slog.LevelDebug}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "garbage":
		os.Stdout.WriteString("\x00\xffthis is no handshake|at all\n")
		time.Sleep(time.Minute)
		return 0
	case "exit":
		fmt.Fprintln(os.Stderr, "helper: giving up before the handshake")
		return 3
	case "hang":
		time.Sleep(time.Hour)
		return 0
	case "host":
		return runHost()
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// runHost is a runtime node in miniature: it loads one isolated operator,
// prints the operator host's pid and waits to be killed.
func runHost() int {
	l := New(childLoaders(), helperConfig("serve", os.Getenv("DORA_ISOLATED_TEST_SOCKETS")))
	op, err := l.Load(context.Background(), mockSpec("victim", "mock:echo"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(op.(*Operator).pid())
	time.Sleep(time.Hour)
	return 0
}

// helperConfig runs the test binary as the child in mode.
func helperConfig(mode, socketDir string) Config {
	return Config{
		Command: func() (*exec.Cmd, error) {
			cmd := exec.Command(os.Args[0])
			// A race-enabled child sleeps 1s at exit unless told not to.
			cmd.Env = []string{envChild + "=" + mode, "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
			return cmd, nil
		},
		SocketDir: socketDir,
		Logger:    slog.New(slog.DiscardHandler),
	}
}

// newTestLoader is an isolating loader whose children serve childLoaders.
func newTestLoader(t testing.TB, mut ...func(*Config)) *Loader {
	cfg := helperConfig("serve", socketDir(t))
	for _, f := range mut {
		f(&cfg)
	}
	return New(childLoaders(), cfg)
}

// socketDir is a short temporary folder for go-plugin's sockets: a unix
// socket path has at most 107 bytes, which t.TempDir() can exceed.
func socketDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "iso")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func mockSpec(id, path string) runtime.OperatorSpec {
	return runtime.OperatorSpec{
		NodeID:   "node",
		Operator: &descriptor.Operator{ID: id, Source: descriptor.OperatorSource{Kind: kindMock, Path: path}},
		Path:     path,
		Stdout:   &bytes.Buffer{},
		Stderr:   &bytes.Buffer{},
	}
}

func ctxFor(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// load loads spec and closes the operator at cleanup.
func load(tb testing.TB, l *Loader, spec runtime.OperatorSpec) *Operator {
	tb.Helper()
	op, err := l.Load(ctxFor(tb, 30*time.Second), spec)
	if err != nil {
		tb.Fatalf("Load(%s): %v", spec.Operator.ID, err)
	}
	tb.Cleanup(func() { _ = op.Close() })
	return op.(*Operator)
}

// noopLoader's operators do nothing, for the benchmarks.
type noopLoader struct{}

type noopOperator struct{}

func (noopLoader) Load(context.Context, runtime.OperatorSpec) (runtime.Operator, error) {
	return noopOperator{}, nil
}

func (noopOperator) OnEvent(context.Context, *runtime.Event, runtime.Sender) (runtime.Status, error) {
	return runtime.StatusContinue, nil
}

func (noopOperator) Close() error { return nil }

// eventually polls cond for up to 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// C fixtures.

var abiInclude, _ = filepath.Abs(filepath.Join("..", "..", "abi", "c"))

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// buildLib compiles a C source (a path relative to this package) into
// lib<name>.so once per test process and returns its path.
func buildLib(tb testing.TB, src, name string, flags ...string) string {
	tb.Helper()
	testcc.Compiler(tb) // skip before taking the lock when there is none
	buildMu.Lock()
	defer buildMu.Unlock()
	key := src + " " + name + " " + strings.Join(flags, " ")
	if p, ok := built[key]; ok {
		return p
	}
	dir := filepath.Join(buildDir, strconv.Itoa(len(built)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "lib"+name+".so")
	testcc.SharedLib(tb, src, out, abiInclude, flags...)
	built[key] = out
	return out
}

func cSpec(id, lib string) runtime.OperatorSpec {
	return runtime.OperatorSpec{
		NodeID:   "runtime-node",
		Operator: &descriptor.Operator{ID: id, Source: descriptor.OperatorSource{Kind: descriptor.SourceSharedLibrary, Path: lib}},
		Path:     lib,
		Stdout:   &syncbuf.Buffer{},
		Stderr:   &syncbuf.Buffer{},
	}
}

// misbehaving loads testdata/misbehave.c as operator id.
func misbehaving(t *testing.T, l *Loader, id string) *Operator {
	t.Helper()
	return load(t, l, cSpec(id, buildLib(t, filepath.Join("testdata", "misbehave.c"), "misbehave")))
}

// send runs one INPUT event.
func send(tb testing.TB, op runtime.Operator, id string, data []byte) (runtime.Status, []runtime.Output, error) {
	tb.Helper()
	var rec runtimetest.Recorder
	st, err := op.OnEvent(ctxFor(tb, 30*time.Second), runtimetest.Input(id, data), &rec)
	return st, rec.Take(), err
}

// echoes checks that one input comes back unchanged.
func echoes(tb testing.TB, op runtime.Operator, id string, data []byte) {
	tb.Helper()
	st, outs, err := send(tb, op, id, data)
	if err != nil || st != runtime.StatusContinue {
		tb.Fatalf("OnEvent(%s): %v, %v", id, st, err)
	}
	if len(outs) != 1 || outs[0].ID != id || !bytes.Equal(outs[0].Data, data) {
		tb.Fatalf("OnEvent(%s, %d bytes): got %d outputs, want the input back", id, len(data), len(outs))
	}
}

// gone reports whether pid no longer exists or is a zombie we do not own.
func gone(pid int) bool {
	st, ok := proctest.Read(pid)
	return !ok || st.State == 'Z'
}

// reaped reports whether pid no longer exists at all (a zombie child of
// ours would still be there).
func reaped(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}

func nilInput(id string) *runtime.Event { return &runtime.Event{Type: runtime.EventInput, ID: id} }
