package python

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

var (
	probeOnce sync.Once
	probeErr  error
)

// needPython skips the test when this machine has no usable CPython,
// saying why.
func needPython(t testing.TB) {
	t.Helper()
	probeOnce.Do(func() { probeErr = New().Probe() })
	if probeErr != nil {
		t.Skipf("no usable python: %v", probeErr)
	}
}

func fixturePath(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func specFor(t testing.TB, id, file string) runtime.OperatorSpec {
	return runtime.OperatorSpec{
		NodeID:   "runtime-node",
		Operator: &descriptor.Operator{ID: id, Source: descriptor.OperatorSource{Kind: descriptor.SourcePython, Path: file}},
		Path:     fixturePath(t, file),
	}
}

func harness(echo string) runtimetest.Harness {
	files := map[runtimetest.Fixture]string{
		runtimetest.FixtureEcho:              echo,
		runtimetest.FixtureInitError:         "init_error.py",
		runtimetest.FixtureMissingEntryPoint: "missing_entry.py",
	}
	return runtimetest.Harness{
		Kind:      descriptor.SourcePython,
		NewLoader: func(t *testing.T) runtime.Loader { return New() },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			needPython(t)
			return specFor(t, string(f), files[f])
		},
		NotAModule: func(t *testing.T) string {
			return runtimetest.WriteFile(t, t.TempDir(), "broken.py", []byte("class Operator(:\n    pass\n"))
		},
	}
}

func TestConformance(t *testing.T) { runtimetest.Run(t, harness("echo.py")) }

// TestConformanceDedicatedThread runs the suite the way the runtime calls
// operators: each on a locked thread of its own, which becomes the
// operator's Python thread.
func TestConformanceDedicatedThread(t *testing.T) {
	h := harness("echo.py")
	newLoader := h.NewLoader
	h.NewLoader = func(t *testing.T) runtime.Loader { return runtimetest.OnDedicatedThreads(newLoader(t)) }
	runtimetest.Run(t, h)
}

// TestConformanceAnyThread runs the suite with on_event on the caller's
// thread (Operator.any_thread = True).
func TestConformanceAnyThread(t *testing.T) { runtimetest.Run(t, harness("echo_any_thread.py")) }

func load(t testing.TB, spec runtime.OperatorSpec) runtime.Operator {
	t.Helper()
	needPython(t)
	op, err := New().Load(context.Background(), spec)
	if err != nil {
		t.Fatalf("Load(%s): %v", spec.Path, err)
	}
	t.Cleanup(func() { _ = op.Close() })
	return op
}
