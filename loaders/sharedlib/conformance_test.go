package sharedlib

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

func harness() runtimetest.Harness {
	sources := map[runtimetest.Fixture]string{
		runtimetest.FixtureEcho:              "echo.c",
		runtimetest.FixtureInitError:         "init_error.c",
		runtimetest.FixtureMissingEntryPoint: "missing_entry.c",
	}
	return runtimetest.Harness{
		Kind:      descriptor.SourceSharedLibrary,
		NewLoader: func(*testing.T) runtime.Loader { return New(nil) },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			lib := buildLib(t, "", sources[f])
			// Name it as a dataflow would: build/echo for build/libecho.so.
			p := filepath.Join(filepath.Dir(lib), strings.TrimSuffix(strings.TrimPrefix(filepath.Base(lib), "lib"), ".so"))
			return specFor(p, string(f))
		},
		NotAModule: func(t *testing.T) string {
			return runtimetest.WriteFile(t, t.TempDir(), "libnot-a-module.so", []byte("this is a text file, not an ELF object\n"))
		},
	}
}

// TestConformance runs the loader suite with the fast path (SyscallN and a
// hidden result pointer on amd64).
func TestConformance(t *testing.T) { runtimetest.Run(t, harness()) }

// TestConformancePortable runs it with purego.RegisterFunc, the path used
// where SyscallN cannot pass the hidden result pointer (arm64).
func TestConformancePortable(t *testing.T) {
	withPortableCalls(t)
	runtimetest.Run(t, harness())
}
