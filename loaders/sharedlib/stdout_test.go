package sharedlib

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/dora-go/dora/runtime/runtimetest"
)

// TestHelperProcess is not a test: the tests below re-run the test binary
// with SHAREDLIB_HELPER set, so that a C operator prints into a pipe and
// the process ends with os.Exit, which flushes nothing.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("SHAREDLIB_HELPER")
	if mode == "" {
		return
	}
	lib := os.Getenv("SHAREDLIB_HELPER_LIB")
	op, err := New(nil).Load(ctxFor(t), specFor(lib, "printer"))
	if err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(3)
	}
	switch mode {
	case "event":
		// printf without newline inside dora_on_event.
		if _, err := op.OnEvent(ctxFor(t), runtimetest.Input("print", []byte("printed in on_event, no newline;")), discard{}); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
	case "thread", "thread-noflush":
		// printf without newline from a C thread, outside of any call.
		h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			os.Exit(3)
		}
		fn, err := purego.Dlsym(h, "probe_print_from_thread")
		if err != nil {
			os.Exit(3)
		}
		purego.SyscallN(fn)
		if mode == "thread" {
			FlushC()
		}
	}
	os.Exit(0)
}

func runHelper(t *testing.T, mode string) string {
	t.Helper()
	lib := buildLib(t, "", "probe.c")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SHAREDLIB_HELPER="+mode, "SHAREDLIB_HELPER_LIB="+lib, "PROBE_PRINT_INIT=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // stdout is a pipe: C stdio would be fully buffered
	if err != nil {
		t.Fatalf("helper %s: %v\nstdout: %s\nstderr: %s", mode, err, out, stderr.String())
	}
	return string(out)
}

// TestCStdoutSurvivesOsExit: what a C operator prints without newline or
// fflush, in dora_init_operator and dora_on_event, reaches a pipe although
// the process ends with os.Exit right after.
func TestCStdoutSurvivesOsExit(t *testing.T) {
	out := runHelper(t, "event")
	for _, want := range []string{"probe init, no newline;", "printed in on_event, no newline;"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
}

// TestFlushCFlushesThreadOutput: output a C thread printed outside of any
// call sits in C's buffer until FlushC; without FlushC it is lost at
// os.Exit (the control, which shows the test can see a loss).
func TestFlushCFlushesThreadOutput(t *testing.T) {
	const want = "printed by a C thread, no newline;"
	if out := runHelper(t, "thread"); !strings.Contains(out, want) {
		t.Errorf("with FlushC: stdout %q lacks %q", out, want)
	}
	if out := runHelper(t, "thread-noflush"); strings.Contains(out, want) {
		t.Logf("without FlushC the text still arrived (%q): the C library flushed on its own", out)
	}
}
