package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
)

// dora runs the CLI in-process and returns its exit code and output.
func dora(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

var allCommands = []string{
	"run", "up", "destroy", "start", "stop", "list", "logs", "build", "check", "graph",
	"new", "daemon", "coordinator", "runtime", "operator", "node", "version", "schema",
}

func TestHelp_ListsEveryCommand(t *testing.T) {
	code, out, _ := dora(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range allCommands {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("`dora --help` does not list %q:\n%s", c, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := dora(t, "version")
	want := "dora dev (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, %q; want 0, %q", code, out, want)
	}
}

func TestSchema_PrintsTheDescriptorSchema(t *testing.T) {
	code, out, _ := dora(t, "schema")
	if code != 0 || !json.Valid([]byte(out)) || strings.TrimSpace(out) != string(descriptor.JSONSchema()) {
		t.Errorf("exit %d; output is not JSONSchema():\n%.200s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := dora(t, "check")
	if code != 1 || errOut != "error: accepts 1 arg(s), received 0\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = dora(t, "chek")
	if code != 1 || !strings.Contains(errOut, `unknown command "chek"`) || !strings.Contains(errOut, "check") {
		t.Errorf("exit %d, stderr %q; want a suggestion", code, errOut)
	}
}

// TestBinary builds dora as it ships (no cgo) and runs it as a user would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "dora")
	build := exec.Command(goTool, "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "check") {
		t.Errorf("dora --help: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "dora v0.0.0-test (") {
		t.Errorf("dora --version: %v: %s", err, out)
	}
	out, err = exec.Command(bin, "check", filepath.Join("testdata", "ok", "dataflow.yml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "✓ ") {
		t.Errorf("dora check: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "check", filepath.Join("testdata", "invalid.yml"))
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), `unknown key "ouputs"`) {
		t.Errorf("dora check invalid.yml: %v\n%s", err, out)
	}
}
