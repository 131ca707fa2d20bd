package wasm

import (
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

func harness(fixture func(t *testing.T, f runtimetest.Fixture) string) runtimetest.Harness {
	return runtimetest.Harness{
		Kind:      descriptor.SourceWASM,
		NewLoader: func(t *testing.T) runtime.Loader { return newLoader(t, Config{}) },
		Fixture: func(t *testing.T, f runtimetest.Fixture) runtime.OperatorSpec {
			return specFor(fixture(t, f), string(f), nil)
		},
		NotAModule: func(t *testing.T) string {
			return runtimetest.WriteFile(t, t.TempDir(), "op.wasm", []byte("this is text, not wasm\n"))
		},
	}
}

func TestConformanceGoGuest(t *testing.T) {
	runtimetest.Run(t, harness(func(t *testing.T, f runtimetest.Fixture) string {
		switch f {
		case runtimetest.FixtureEcho:
			return goGuest(t, "echo")
		case runtimetest.FixtureInitError:
			return goGuest(t, "initerror")
		case runtimetest.FixtureMissingEntryPoint:
			return goGuest(t, "missingentry")
		}
		t.Fatalf("unknown fixture %q", f)
		return ""
	}))
}

func TestConformanceCGuest(t *testing.T) {
	runtimetest.Run(t, harness(func(t *testing.T, f runtimetest.Fixture) string {
		switch f {
		case runtimetest.FixtureEcho:
			return cGuest(t)
		case runtimetest.FixtureInitError:
			return cGuest(t, "-DINIT_ERROR")
		case runtimetest.FixtureMissingEntryPoint:
			return cGuest(t, "-DMISSING_ENTRY")
		}
		t.Fatalf("unknown fixture %q", f)
		return ""
	}))
}
