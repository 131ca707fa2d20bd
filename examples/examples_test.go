// Package examples_test runs every example dataflow end to end, the way
// its README says: `dora build`, then `dora run`.
package examples_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var root, dora string

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	root = filepath.Dir(wd)
	dora = filepath.Join(root, "bin", "dora")
	// The examples link bin/libdora_node_api_c.a and run bin/dora, exactly
	// as a user would after `make build`.
	build := exec.Command("make", "-s", "build")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("make build: " + err.Error())
	}
	os.Exit(m.Run())
}

type example struct {
	dir string
	// file is the dataflow in dir; dataflow.yml when empty.
	file string
	env  []string
	// want lines must all appear in the combined output.
	want []string
}

func runExample(t *testing.T, ex example) string {
	t.Helper()
	name := ex.file
	if name == "" {
		name = "dataflow.yml"
	}
	file := filepath.Join(root, "examples", ex.dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"build", file},
		{"run", "--log-dir", t.TempDir(), file},
	} {
		cmd := exec.CommandContext(ctx, dora, args...)
		cmd.Env = append(os.Environ(), ex.env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("dora %s: %v\n%s", args[0], err, out.String())
		}
		if args[0] == "run" {
			for _, w := range ex.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			return out.String()
		}
	}
	return ""
}

func TestGoDataflow(t *testing.T) {
	runExample(t, example{dir: "go-dataflow", want: []string{
		"sink: sink: all 100 values received and checked",
		"finished: 2 nodes succeeded",
	}})
}

func TestCDataflow(t *testing.T) {
	runExample(t, example{dir: "c-dataflow", want: []string{
		"runtime-node: C operator received message `loop iteration 99`, counter: 100",
		"c_sink: [c sink] received: The current counter value is 100",
		"c_sink: [c sink] received 100 messages",
		"finished: 3 nodes succeeded",
	}})
}

func TestBenchmark(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "bench.csv")
	runExample(t, example{dir: "benchmark", env: []string{"BENCH_COUNT=10", "BENCH_CSV=" + csv}, want: []string{
		"finished: 2 nodes succeeded",
	}})
	checkBenchCSV(t, csv)
}

// checkBenchCSV checks a benchmark run with BENCH_COUNT=10 wrote one CSV
// line per size and mode.
func checkBenchCSV(t *testing.T, csv string) {
	t.Helper()
	data, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 20 {
		t.Fatalf("%d CSV lines, want 10 sizes × 2 modes:\n%s", len(lines), data)
	}
	for _, l := range lines {
		if f := strings.Split(l, ","); len(f) != 11 || f[3] != "10" {
			t.Errorf("bad CSV line %q", l)
		}
	}
}

func TestWASMDataflow(t *testing.T) {
	runExample(t, example{dir: "wasm-dataflow", want: []string{
		"check: check: all 50 summaries match",
		"finished: 3 nodes succeeded",
	}})
}

// TestCheckAndGraphEveryExample runs `dora check` and `dora graph` on every
// example, built, as a user would before running it.
func TestCheckAndGraphEveryExample(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "examples", "*", "dataflow*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		t.Run(rel, func(t *testing.T) {
			dir := filepath.Dir(file)
			doraCmd(t, dir, "build", file)
			out := doraCmd(t, dir, "check", file)
			if !strings.Contains(out, "✓") {
				t.Errorf("check output:\n%s", out)
			}
			mermaid := doraCmd(t, dir, "graph", file)
			if !strings.HasPrefix(mermaid, "flowchart") {
				t.Errorf("graph is not Mermaid:\n%s", mermaid)
			}
			html := filepath.Join(t.TempDir(), "graph.html")
			doraCmd(t, dir, "graph", "--html", html, file)
			if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "<svg") {
				t.Errorf("no HTML graph: %v", err)
			}
		})
	}
}
