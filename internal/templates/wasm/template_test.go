package wasm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"

	wasmloader "github.com/dora-go/dora/loaders/wasm"
)

func TestRenderRefusesBadNamesAndOverwrites(t *testing.T) {
	for _, name := range []string{"", "1op", "a/b", "../x", "has space"} {
		if err := Render(t.TempDir(), name); err == nil {
			t.Errorf("Render(%q) succeeded", name)
		}
	}
	dir := t.TempDir()
	if err := Render(dir, "op"); err != nil {
		t.Fatal(err)
	}
	if err := Render(dir, "op"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Render = %v, want a refusal to overwrite", err)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	if !strings.Contains(string(readme), "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o op.wasm .") {
		t.Errorf("README lacks the build command:\n%s", readme)
	}
}

// TestGeneratedOperatorBuildsAndRuns renders the template inside this
// module (testdata is outside ./... patterns), builds it to wasm as the
// README says, and runs one event through the wasm loader.
func TestGeneratedOperatorBuildsAndRuns(t *testing.T) {
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("testdata", "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := Render(dir, "my-op"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "my-op.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generated operator: %v\n%s", err, b)
	}

	l := wasmloader.New(wasmloader.Config{CacheDir: filepath.Join(os.TempDir(), "dora-wasm-test-cache")})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := runtime.OperatorSpec{
		NodeID:   "node",
		Operator: &descriptor.Operator{ID: "my-op", Source: descriptor.OperatorSource{Kind: descriptor.SourceWASM, Path: out}},
		Path:     out,
	}
	op, err := l.Load(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	st, outs := runtimetest.Event(t, op, runtimetest.Input("in", []byte("hello")))
	if st != runtime.StatusContinue || len(outs) != 1 || outs[0].ID != "out" || string(outs[0].Data) != "hello" {
		t.Fatalf("status %v outputs %+v, want out=hello", st, outs)
	}
	if st, _ := runtimetest.Event(t, op, &runtime.Event{Type: runtime.EventStop}); st != runtime.StatusStop {
		t.Errorf("STOP event: status %v", st)
	}
}
