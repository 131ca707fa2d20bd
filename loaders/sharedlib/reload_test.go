package sharedlib

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dora-go/dora/runtime"
)

// reloadCopies counts the mappings of reload copies in this process.
func reloadCopies(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "/dora-reload-"); i >= 0 {
			seen[strings.TrimSuffix(sc.Text()[i:], " (deleted)")] = true
		}
	}
	return len(seen)
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	lib := buildLib(t, dir, "probe.c") // dir/libprobe.so, version 1
	v2 := buildLib(t, filepath.Join(dir, "v2"), "probe.c", "-DPROBE_VERSION=2")
	v3 := buildLib(t, filepath.Join(dir, "v3"), "probe.c", "-DPROBE_VERSION=3")
	v1spec := specFor(filepath.Join(dir, "probe"), "probe")

	op := loadLib(t, v1spec.Path)
	check := func(version, inits string) {
		t.Helper()
		if got := string(one(t, op, "version", nil).Data); got != version {
			t.Fatalf("version %s, want %s", got, version)
		}
		if got := string(one(t, op, "inits", nil).Data); got != inits {
			t.Fatalf("inits %s, want %s: the reload did not get a fresh copy of the library", got, inits)
		}
	}
	check("1", "1")
	one(t, op, "late_result", nil) // some state in the context

	// Same path, same file: dlopen alone would hand back the loaded object
	// (static inits would read 2); the private copy starts afresh.
	if err := op.Reload(ctxFor(t), v1spec); err != nil {
		t.Fatal(err)
	}
	check("1", "1")
	if n := reloadCopies(t); n != 1 {
		t.Errorf("%d reload copies mapped, want 1", n)
	}

	// Another file.
	if err := op.Reload(ctxFor(t), specFor(v2, "probe")); err != nil {
		t.Fatal(err)
	}
	check("2", "1")
	if n := reloadCopies(t); n != 1 {
		t.Errorf("%d reload copies mapped after two reloads, want 1: the old copy was not unloaded", n)
	}

	// A rebuild renamed over the original path, as build tools do.
	if err := os.Rename(v3, lib); err != nil {
		t.Fatal(err)
	}
	if err := op.Reload(ctxFor(t), v1spec); err != nil {
		t.Fatal(err)
	}
	check("3", "1")

	// Failed reloads keep the old code running.
	for name, spec := range map[string]runtime.OperatorSpec{
		"missing symbol": specFor(buildLib(t, "", "missing_entry.c"), "probe"),
		"init error":     specFor(buildLib(t, "", "init_error.c"), "probe"),
		"missing file":   specFor(filepath.Join(dir, "nope"), "probe"),
		"not a library":  specFor(filepath.Join(dir, "v2"), "probe"), // a directory
	} {
		err := op.Reload(ctxFor(t), spec)
		var oe *runtime.OperatorError
		if !errors.As(err, &oe) || oe.Phase != runtime.PhaseReload {
			t.Errorf("%s: Reload = %v, want a reload-phase OperatorError", name, err)
		}
		check("3", "1")
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if n := reloadCopies(t); n != 0 {
		t.Errorf("%d reload copies still mapped after Close", n)
	}
	if matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "dora-reload-*")); len(matches) > 0 {
		t.Logf("left-over reload folders (maybe from other processes): %v", matches)
	}
}
