package sharedlib

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// loadErr loads path and returns the *OperatorError it must fail with.
func loadErr(t *testing.T, path string, phase runtime.Phase) *runtime.OperatorError {
	t.Helper()
	op, err := New(nil).Load(ctxFor(t), specFor(path, "op"))
	if err == nil {
		op.Close()
		t.Fatalf("Load(%s) succeeded", path)
	}
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) {
		t.Fatalf("Load(%s) = %T %v, want *runtime.OperatorError", path, err, err)
	}
	if oe.Node != "runtime-node" || oe.Operator != "op" || oe.Loader != descriptor.SourceSharedLibrary || oe.Phase != phase {
		t.Errorf("error names node %q, operator %q, loader %q, phase %q; want runtime-node, op, %s, %s", oe.Node, oe.Operator, oe.Loader, oe.Phase, descriptor.SourceSharedLibrary, phase)
	}
	t.Log(err)
	return oe
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("MissingFileNamesWhatWasTried", func(t *testing.T) {
		err := loadErr(t, filepath.Join(dir, "build", "operator"), runtime.PhaseLoad)
		for _, want := range []string{"build/operator", "build/liboperator.so", "not found"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not mention %q", err, want)
			}
		}
		if !errors.Is(err, descriptor.ErrNotFound) {
			t.Errorf("%v does not wrap descriptor.ErrNotFound", err)
		}
	})
	notLoadable := map[string]func(t *testing.T) (path, dlerr string){
		"TextFile": func(t *testing.T) (string, string) {
			p := filepath.Join(dir, "libtext.so")
			os.WriteFile(p, []byte(strings.Repeat("hello, I am a text file and not an ELF object\n", 10)), 0o644)
			return p, "invalid ELF header"
		},
		"EmptyFile": func(t *testing.T) (string, string) {
			p := filepath.Join(dir, "libempty.so")
			os.WriteFile(p, nil, 0o644)
			return p, "file too short"
		},
		"Executable": func(t *testing.T) (string, string) {
			return buildProgram(t, "layout.c"), "cannot dynamically load"
		},
		"WrongELFClass": func(t *testing.T) (string, string) {
			// A 64-bit library relabelled as 32-bit: what a library for
			// another architecture looks like to dlopen.
			b, err := os.ReadFile(buildLib(t, "", "noop.c"))
			if err != nil {
				t.Fatal(err)
			}
			b[4] = 1 // EI_CLASS = ELFCLASS32
			p := filepath.Join(dir, "libwrongclass.so")
			os.WriteFile(p, b, 0o644)
			return p, "wrong ELF class"
		},
	}
	for name, mk := range notLoadable {
		t.Run("NotASharedLibrary/"+name, func(t *testing.T) {
			path, dlerr := mk(t)
			err := loadErr(t, path, runtime.PhaseLoad)
			if !errors.Is(err, ErrNotLoadable) || !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Errorf("%v: want ErrNotLoadable naming %s", err, filepath.Base(path))
			}
			if !strings.Contains(err.Error(), dlerr) {
				t.Errorf("%v: want dlerror's %q", err, dlerr)
			}
		})
	}
	t.Run("MissingSymbolsAreNamed", func(t *testing.T) {
		for src, want := range map[string]string{
			"missing_entry.c": "libmissing_entry.so lacks dora_on_event: missing symbol",
			"no_entries.c":    "libno_entries.so lacks dora_init_operator, dora_on_event, dora_drop_operator: missing symbol",
		} {
			err := loadErr(t, buildLib(t, "", src), runtime.PhaseLoad)
			if !errors.Is(err, runtime.ErrMissingSymbol) || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: want ErrMissingSymbol and %q", err, want)
			}
		}
	})
	t.Run("InitErrorCarriesTheMessage", func(t *testing.T) {
		err := loadErr(t, buildLib(t, "", "init_error.c"), runtime.PhaseInit)
		if !errors.Is(err, runtime.ErrOperatorError) || !strings.HasSuffix(err.Error(), "dora_init_operator: operator reported an error: init failed on purpose") {
			t.Errorf("%v", err)
		}
	})
	t.Run("EventAfterClose", func(t *testing.T) {
		op := loadLib(t, buildLib(t, "", "noop.c"))
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := send(t, op, "x", nil); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("OnEvent after Close: %v", err)
		}
		if err := op.Reload(ctxFor(t), specFor(buildLib(t, "", "noop.c"), "x")); err == nil {
			t.Error("Reload after Close succeeded")
		}
	})
}

func TestProbe(t *testing.T) {
	if err := New(nil).Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
}
