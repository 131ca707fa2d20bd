package sharedlib

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// mapped reports whether path is mapped into this process.
func mapped(t *testing.T, path string) bool {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	return strings.Contains(string(b), path)
}

// TestLoadReturnsWhenCtxIsDoneDuringInit: dora_init_operator sleeps 2 s;
// Load returns at its 50 ms deadline, long before init ends (the bound is
// loose on purpose), and the late-finishing load is dropped and unloaded in
// the background.
func TestLoadReturnsWhenCtxIsDoneDuringInit(t *testing.T) {
	lib := buildLib(t, t.TempDir(), "probe.c")
	t.Setenv("PROBE_INIT_SLEEP_MS", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	op, err := New(nil).Load(ctx, specFor(lib, "slow"))
	if err == nil {
		op.Close()
		t.Fatal("Load outlived its context")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Load took %v, its context expired after 50ms", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for mapped(t, lib) {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned load was never unloaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
