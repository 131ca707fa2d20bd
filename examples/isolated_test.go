package examples_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestIsolatedDataflow runs examples/isolated: an isolated C operator
// segfaults on its 5th tick (and, restarted once, on the 5th tick of its
// second life) while its in-process neighbour in the same runtime node
// counts to 50 and stops the dataflow. The run fails, naming the crashed
// operator, its signal and its last words; the neighbour got to the end.
func TestIsolatedDataflow(t *testing.T) {
	dir := filepath.Join(root, "examples", "isolated")
	file := filepath.Join(dir, "dataflow.yml")
	doraCmd(t, dir, "build", file)
	out, err := doraRun(dir, "run", "--log-dir", t.TempDir(), file)
	// doraRun's error is "dora run ...: exit status N", then the output.
	if err == nil || !strings.Contains(strings.SplitN(err.Error(), "\n", 2)[0], ": exit status 1") {
		t.Fatalf("dora run = %v, want exit status 1 (a failed operator)\n%s", err, out)
	}
	for _, want := range []string{
		// The neighbour kept working until the end.
		"runtime-node: counter: tick 50",
		"runtime-node: counter: done, stopping the dataflow",
		// The isolated operator's output, forwarded with its id.
		"runtime-node: crasher: tick 4",
		"runtime-node: crasher: tick 5: writing through a NULL pointer",
		// The report: operator, phase, signal, what it printed last.
		`operator "crasher" (shared-library): on_event: operator process crashed`,
		"SIGSEGV: segmentation violation",
		"restarted it as pid",
		"not restarted: it was restarted 1 time(s) already",
		"| tick 5: writing through a NULL pointer",
		`failed: runtime-node (exit status 1)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Neither the node nor the neighbour crashed with it.
	if strings.Contains(out, "counter: SIG") || regexp.MustCompile(`runtime-node \(killed by`).MatchString(out) {
		t.Errorf("the crash spread beyond its process")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
