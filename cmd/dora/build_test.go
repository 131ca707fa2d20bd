package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// writeDataflow writes a dataflow into a fresh folder and returns its path.
func writeDataflow(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dataflow.yml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestBuild_RunsEveryCommandInOrder(t *testing.T) {
	file := writeDataflow(t, `nodes:
  - id: talker
    path: talker
    env:
      GREETING: hello
    build: echo "$GREETING from $(basename "$PWD")"; echo to stderr >&2
  - id: rt
    build: printf 'no newline'
    operators:
      - id: op
        python: op.py
        build: echo operator
  - id: sink
    path: /bin/true
`)
	dir := filepath.Base(filepath.Dir(file))
	code, out, errOut := dora(t, "build", file)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	wantOut := strings.Join([]string{
		`▸ talker: echo "$GREETING from $(basename "$PWD")"; echo to stderr >&2`,
		"[talker] hello from " + dir,
		"▸ rt: printf 'no newline'",
		"[rt] no newline",
		"▸ rt/op: echo operator",
		"[rt/op] operator",
		"✓ built 3 steps",
	}, "\n") + "\n"
	if out != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, wantOut)
	}
	if errOut != "[talker] to stderr\n" {
		t.Errorf("stderr = %q", errOut)
	}
}

func TestBuild_StopsAtTheFirstFailure(t *testing.T) {
	file := writeDataflow(t, `nodes:
  - id: a
    path: a
    build: echo first
  - id: b
    path: b
    build: echo failing; exit 3
  - id: c
    path: c
    build: echo never
`)
	code, out, errOut := dora(t, "build", file)
	if code != 3 {
		t.Errorf("exit %d, want the failing command's 3", code)
	}
	if strings.Contains(out, "never") {
		t.Errorf("a command after the failure ran:\n%s", out)
	}
	if !strings.Contains(out, "[b] failing\n") {
		t.Errorf("stdout lacks the failing command's output:\n%s", out)
	}
	if want := "error: build of b failed with exit code 3: echo failing; exit 3\n"; errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
}

func TestBuild_UsesWorkingDir(t *testing.T) {
	file := writeDataflow(t, `nodes:
  - id: a
    _unstable_deploy:
      working_dir: sub
    path: a
    build: pwd
`)
	sub := filepath.Join(filepath.Dir(file), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := dora(t, "build", file)
	if code != 0 || !strings.Contains(out, "[a] "+sub+"\n") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant the build to run in %s", code, out, errOut, sub)
	}
}

func TestBuild_NothingToBuild(t *testing.T) {
	file := writeDataflow(t, "nodes:\n  - id: a\n    path: a\n")
	code, out, _ := dora(t, "build", file)
	if code != 0 || !strings.HasPrefix(out, "nothing to build") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

func TestPrefixWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &prefixWriter{mu: &sync.Mutex{}, w: &buf, prefix: "> "}
	for _, chunk := range []string{"one\ntw", "o\n", "", "three"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	w.flush()
	if want := "> one\n> two\n> three\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}

	buf.Reset()
	w.Write(bytes.Repeat([]byte("x"), maxLine+10))
	w.flush()
	if lines := strings.Count(buf.String(), "\n"); lines != 2 {
		t.Errorf("a %d-byte line became %d lines, want 2", maxLine+10, lines)
	}
}
