package isolated

import (
	"path/filepath"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/loaders/python"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// TestConformance_Mock runs the loader suite through go-plugin with the
// scripted mock loader in the child.
func TestConformance_Mock(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		Kind:      kindMock,
		NewLoader: func(t *testing.T) runtime.Loader { return newTestLoader(t) },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			return mockSpec(string(f), "mock:"+string(f))
		},
		NotAModule: func(t *testing.T) string { return "mock:not-a-module" },
	})
}

// TestConformance_SharedLibrary runs it with the real shared-library
// loader in the child and the C fixtures of loaders/sharedlib.
func TestConformance_SharedLibrary(t *testing.T) {
	sources := map[runtimetest.Fixture]string{
		runtimetest.FixtureEcho:              "echo",
		runtimetest.FixtureInitError:         "init_error",
		runtimetest.FixtureMissingEntryPoint: "missing_entry",
	}
	runtimetest.Run(t, runtimetest.Harness{
		Kind:      descriptor.SourceSharedLibrary,
		NewLoader: func(t *testing.T) runtime.Loader { return newTestLoader(t) },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			lib := buildLib(t, filepath.Join("..", "sharedlib", "testdata", sources[f]+".c"), sources[f])
			// Named as a dataflow would: dir/echo for dir/libecho.so.
			return cSpec(string(f), filepath.Join(filepath.Dir(lib), sources[f]))
		},
		NotAModule: func(t *testing.T) string {
			return runtimetest.WriteFile(t, t.TempDir(), "libnot-a-module.so", []byte("this is a text file, not an ELF object\n"))
		},
	})
}

// TestConformance_OnDedicatedThreads runs it the way the runtime calls
// loaders: every call of an operator from one locked thread.
func TestConformance_OnDedicatedThreads(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		Kind:      kindMock,
		NewLoader: func(t *testing.T) runtime.Loader { return runtimetest.OnDedicatedThreads(newTestLoader(t)) },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			return mockSpec(string(f), "mock:"+string(f))
		},
		NotAModule: func(t *testing.T) string { return "mock:not-a-module" },
	})
}

// TestConformance_Python runs it with the embedded-CPython loader in the
// child and loaders/python's fixtures.
func TestConformance_Python(t *testing.T) {
	if err := python.New().Probe(); err != nil {
		t.Skipf("no usable python: %v", err)
	}
	files := map[runtimetest.Fixture]string{
		runtimetest.FixtureEcho:              "echo.py",
		runtimetest.FixtureInitError:         "init_error.py",
		runtimetest.FixtureMissingEntryPoint: "missing_entry.py",
	}
	runtimetest.Run(t, runtimetest.Harness{
		Kind:      descriptor.SourcePython,
		NewLoader: func(t *testing.T) runtime.Loader { return newTestLoader(t) },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			p, _ := filepath.Abs(filepath.Join("..", "python", "testdata", files[f]))
			return runtime.OperatorSpec{
				NodeID:   "runtime-node",
				Operator: &descriptor.Operator{ID: string(f), Source: descriptor.OperatorSource{Kind: descriptor.SourcePython, Path: p}},
				Path:     p, Stdout: &syncbuf.Buffer{}, Stderr: &syncbuf.Buffer{},
			}
		},
		NotAModule: func(t *testing.T) string {
			return runtimetest.WriteFile(t, t.TempDir(), "broken.py", []byte("class Operator(:\n    pass\n"))
		},
	})
}
