package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/testcc"
)

const reloadOperator = `#include <stdio.h>
#include <stdlib.h>
#include "operator_api.h"
DoraInitResult_t dora_init_operator(void) { DoraInitResult_t r = {0}; return r; }
DoraResult_t dora_drop_operator(void *ctx) { DoraResult_t r = {0}; return r; }
OnEventResult_t dora_on_event(const RawEvent_t *ev, const SendOutput_t *send, void *ctx) {
	if (ev->input != NULL) printf("operator VERSION\n");
	OnEventResult_t r = {.status = DORA_STATUS_CONTINUE};
	return r;
}
`

// TestHotReloadOfACOperator rebuilds a C operator while its dataflow runs
// with --hot-reload: the runtime node loads the new library without a
// restart, and the run ends cleanly.
func TestHotReloadOfACOperator(t *testing.T) {
	dir := t.TempDir()
	build := func(version string) {
		t.Helper()
		src := filepath.Join(dir, "op.c")
		if err := os.WriteFile(src, []byte(strings.ReplaceAll(reloadOperator, "VERSION", version)), 0o644); err != nil {
			t.Fatal(err)
		}
		// Build next to the library and rename over it, as build tools do,
		// so the runtime never sees a half-written file.
		tmp := filepath.Join(dir, "libop.so.tmp")
		cc := exec.Command(testcc.Compiler(t), "-shared", "-fPIC", "-Wall", "-I", filepath.Join(root, "abi", "c"), "-o", tmp, src)
		if out, err := cc.CombinedOutput(); err != nil {
			t.Fatalf("cc: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "libop.so")); err != nil {
			t.Fatal(err)
		}
	}
	build("one")
	yml := `nodes:
  - id: runtime-node
    operators:
      - id: op
        shared-library: ./op
        inputs:
          tick: dora/timer/millis/50
`
	if err := os.WriteFile(filepath.Join(dir, "dataflow.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	logs := t.TempDir()
	go func() {
		out, err := doraRun(dir, "run", "--hot-reload", "--stop-after", "6s", "--log-dir", logs, "dataflow.yml")
		done <- result{out, err}
	}()
	waitForLog(t, logs, "operator one") // the first library runs
	build("two")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	out := r.out
	for _, want := range []string{"operator one", `msg="operator reloaded"`, "operator two", "finished: 1 node succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// waitForLog waits until a log file under dir holds want.
func waitForLog(t *testing.T, dir, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		found := false
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), want) {
					found = true
				}
			}
			return nil
		})
		if found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no log under %s says %q", dir, want)
}
