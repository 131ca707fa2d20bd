package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemplatesBuildAndRunAsGenerated generates every project template with
// bin/dora, then builds and runs it, unchanged.
func TestTemplatesBuildAndRunAsGenerated(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// stopAfter stops projects that run until Ctrl-C; 0 waits for the
		// dataflow to end by itself.
		stopAfter string
		want      []string
	}{
		{"hello", []string{"new", "hello"}, "", []string{`listener heard "Hello from hello, message 10"`, "finished: 2 nodes succeeded"}},
		{"gonode", []string{"node", "new", "gonode", "--lang", "go"}, "3s", []string{"gonode: gonode: tick 3", "gonode: stopping after"}},
		{"cnode", []string{"node", "new", "cnode", "--lang", "c"}, "3s", []string{"cnode: cnode: tick 3", "cnode: stopping after"}},
		{"cop", []string{"operator", "new", "cop", "--lang", "c"}, "3s", []string{"runtime-node: cop: input 3", "cop: stopping after"}},
		{"wop", []string{"operator", "new", "wop", "--lang", "wasm"}, "5s", []string{`operator loaded" node=runtime-node operator=wop loader=wasm`}},
		{"pynode", []string{"node", "new", "pynode", "--lang", "python"}, "3s", []string{"pynode: pynode: tick 3", "pynode: stopping after"}},
		{"pyop", []string{"operator", "new", "pyop", "--lang", "python"}, "3s", []string{"runtime-node: pyop: input 3", "pyop: stopping after"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			args := append(append([]string(nil), tt.args...), "--dir", dir, "--dora-src", root)
			doraCmd(t, dir, args...)
			project := filepath.Join(dir, tt.name)
			doraCmd(t, project, "build", "dataflow.yml")
			run := []string{"run", "--log-dir", t.TempDir(), "dataflow.yml"}
			if tt.stopAfter != "" {
				run = append(run, "--stop-after", tt.stopAfter)
			}
			out := doraCmd(t, project, run...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func doraCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := doraRun(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// doraRun runs bin/dora in dir; the error includes its output.
func doraRun(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dora, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("dora %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}
