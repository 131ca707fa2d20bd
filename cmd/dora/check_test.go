package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
)

// fakeProbe makes every loader unavailable except shared-library, so the
// expectations hold whatever this machine has installed.
func fakeProbe(kind descriptor.SourceKind) error {
	if kind == descriptor.SourceSharedLibrary {
		return nil
	}
	return fmt.Errorf("no %s here (test)", kind)
}

func TestCheck(t *testing.T) {
	real := probeLoader
	probeLoader = fakeProbe
	t.Cleanup(func() { probeLoader = real })
	tests := []struct {
		name     string
		file     string
		wantCode int
		// wantOut and wantErr are lines that must appear, in this order.
		wantOut, wantErr []string
	}{
		{
			name:     "files found, no operators",
			file:     filepath.Join("testdata", "ok", "dataflow.yml"),
			wantCode: 0,
			wantOut: []string{
				"✓ testdata/ok/dataflow.yml: 2 nodes, 1 timer",
				"✓ 2 node and operator files found",
				"operator loaders in this build:",
				"  ✓ shared-library  available (not used)",
				"  · python          no python here (test) (not used)",
				"  · wasm            no wasm here (test) (not used)",
			},
		},
		{
			name:     "invalid dataflow",
			file:     filepath.Join("testdata", "invalid.yml"),
			wantCode: 1,
			wantErr: []string{
				"✗ testdata/invalid.yml: 2 problems",
				`testdata/invalid.yml:4: nodes[0] (camera): unknown key "ouputs" (did you mean "outputs"?)`,
				`testdata/invalid.yml:9: nodes[1] (plot): input "image" refers to unknown output "camera/image" (camera has no outputs)`,
			},
		},
		{
			name:     "missing files and loaders",
			file:     filepath.Join("testdata", "missing.yml"),
			wantCode: 1,
			wantOut: []string{
				"✓ testdata/missing.yml: 2 nodes, 2 operators",
				`✗ testdata/missing.yml:3: node "camera": path "build/camera": not found`,
				"(it has a build command: run `dora build` first)",
				`✗ testdata/missing.yml:10: detect/yolo: python operator "yolo": not found`,
				`✗ testdata/missing.yml:16: detect/filter: wasm operator "filter": not found`,
				"  ✓ shared-library  available (not used)",
				"  ✗ python          no python here (test) (used by detect/yolo)",
				"  ✗ wasm            no wasm here (test) (used by detect/filter)",
			},
			wantErr: []string{
				"error: testdata/missing.yml cannot run here: 3 missing files; no usable loader for python, wasm operators",
			},
		},
		{
			name:     "remote nodes are not looked for",
			file:     filepath.Join("testdata", "remote", "dataflow.yml"),
			wantCode: 0,
			wantOut: []string{
				`· far runs on machine "robot", not here: its files are checked there`,
				"✓ 1 node and operator file found",
			},
		},
		{
			name:     "operators of remote nodes are checked on their machine",
			file:     filepath.Join("testdata", "remote", "operators.yml"),
			wantCode: 0,
			wantOut: []string{
				"  · python          no python here (test) (used on other machines by far/op)",
			},
		},
		{
			name:     "unreadable file",
			file:     filepath.Join("testdata", "nope.yml"),
			wantCode: 1,
			wantErr:  []string{"error: reading dataflow: open testdata/nope.yml: no such file or directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := dora(t, "check", tt.file)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			containsInOrder(t, "stdout", out, tt.wantOut)
			containsInOrder(t, "stderr", errOut, tt.wantErr)
		})
	}
}

// containsInOrder checks that each of want appears in got, in order.
func containsInOrder(t *testing.T, what, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s lacks (or misorders) %q:\n%s", what, w, got)
			return
		}
		rest = rest[i+len(w):]
	}
}
