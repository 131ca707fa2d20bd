package runtime_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

type sent struct {
	id   string
	data string
}

// fakeDaemon feeds the runtime scripted events and records what it sends.
type fakeDaemon struct {
	in chan runtime.Incoming

	mu       sync.Mutex
	sent     []sent
	closed   []string
	stopWhy  string
	released atomic.Int32
}

func newFakeDaemon() *fakeDaemon { return &fakeDaemon{in: make(chan runtime.Incoming, 1000)} }

func (d *fakeDaemon) Next(ctx context.Context) (runtime.Incoming, error) {
	select {
	case in, ok := <-d.in:
		if !ok {
			return runtime.Incoming{}, io.EOF
		}
		return in, nil
	case <-ctx.Done():
		return runtime.Incoming{}, ctx.Err()
	}
}

func (d *fakeDaemon) Send(id string, data []byte, md wire.Metadata) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, sent{id, string(data)})
	return nil
}

func (d *fakeDaemon) CloseOutputs(ids ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = append(d.closed, ids...)
	return nil
}

func (d *fakeDaemon) StopDataflow(reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopWhy = reason
	return nil
}

func (d *fakeDaemon) input(id, data string) {
	d.in <- runtime.Incoming{
		Event:   runtime.Event{Type: runtime.EventInput, ID: id, Data: []byte(data)},
		Release: func() { d.released.Add(1) },
	}
}

func (d *fakeDaemon) stop() {
	d.in <- runtime.Incoming{Event: runtime.Event{Type: runtime.EventStop}}
	close(d.in)
}

func (d *fakeDaemon) snapshot() ([]sent, []string, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]sent(nil), d.sent...), append([]string(nil), d.closed...), d.stopWhy
}

// setup parses a runtime node "rt" from YAML whose python: paths name
// scripts of the mock loader (files are created so paths resolve).
func setup(t *testing.T, yml string, scripts map[string]runtimetest.Script) runtime.Config {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "dataflow.yml")
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	df, err := descriptor.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	loader := &runtimetest.MockLoader{Scripts: map[string]runtimetest.Script{}}
	node := df.Node("rt")
	for _, op := range node.Operators {
		p := filepath.Join(dir, op.Source.Path)
		if err := os.WriteFile(p, []byte("# mock"), 0o644); err != nil {
			t.Fatal(err)
		}
		loader.Scripts[p] = scripts[op.ID]
	}
	return runtime.Config{
		Node: node, DataflowDir: dir, StopTimeout: time.Second, Logger: slog.New(slog.DiscardHandler),
		Loaders: map[descriptor.SourceKind]runtime.Loader{descriptor.SourcePython: loader},
	}
}

const twoOperators = `
nodes:
  - id: src
    path: /bin/true
    outputs: [x, y]
  - id: rt
    operators:
      - id: a
        python: a.py
        inputs: {x: src/x}
        outputs: [x, count]
      - id: b
        python: b.py
        inputs: {x: rt/a/x, y: {source: src/y, queue_size: 200}}
        outputs: [x, y]
  - id: sink
    path: /bin/true
    inputs: {bx: rt/b/x, by: rt/b/y}
`

func run(t *testing.T, d *fakeDaemon, cfg runtime.Config) <-chan error {
	done := make(chan error, 1)
	go func() { done <- runtime.Run(context.Background(), d, cfg) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("runtime did not finish")
		return nil
	}
}

func TestOperatorsEchoAndFeedEachOtherInProcess(t *testing.T) {
	d := newFakeDaemon()
	done := run(t, d, setup(t, twoOperators, nil))
	d.input("a/x", "hello")
	d.input("b/y", "direct")
	d.stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	got, closed, _ := d.snapshot()
	want := map[sent]bool{{"a/x", "hello"}: true, {"b/x", "hello"}: true, {"b/y", "direct"}: true}
	for _, s := range got {
		delete(want, s)
	}
	if len(want) > 0 {
		t.Errorf("missing outputs %v; sent %v", want, got)
	}
	if strings.Join(closed, ",") == "" || !contains(closed, "a/x") || !contains(closed, "b/y") {
		t.Errorf("closed outputs %v", closed)
	}
	if d.released.Load() != 2 {
		t.Errorf("%d of 2 daemon events released", d.released.Load())
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestAHungOperatorDoesNotStallItsNeighbour(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	d := newFakeDaemon()
	cfg := setup(t, twoOperators, map[string]runtimetest.Script{"a": {HangOn: 1, Release: release}})
	done := run(t, d, cfg)
	d.input("a/x", "stuck forever")
	for i := 0; i < 100; i++ {
		d.input("b/y", "ok")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _, _ := d.snapshot()
		if len(got) == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b sent %d of 100 while a hung", len(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.stop()
	err := wait(t, done)
	if err == nil || !strings.Contains(err.Error(), `operator "a"`) || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("Run = %v, want a's abandonment reported", err)
	}
}

func TestAPanickingOperatorIsIsolated(t *testing.T) {
	d := newFakeDaemon()
	done := run(t, d, setup(t, twoOperators, map[string]runtimetest.Script{"a": {PanicOn: 1}}))
	d.input("a/x", "boom")
	d.input("b/y", "still fine")
	d.stop()
	err := wait(t, done)
	if !errors.Is(err, runtime.ErrPanic) || !strings.Contains(err.Error(), `operator "a"`) {
		t.Fatalf("Run = %v", err)
	}
	got, closed, _ := d.snapshot()
	if !contains(closed, "a/x") {
		t.Errorf("a's outputs were not closed: %v", closed)
	}
	found := false
	for _, s := range got {
		found = found || s == sent{"b/y", "still fine"}
	}
	if !found {
		t.Errorf("b did not keep working: %v", got)
	}
}

func TestStatusStopEndsOnlyThatOperator(t *testing.T) {
	d := newFakeDaemon()
	cfg := setup(t, `
nodes:
  - id: src
    path: /bin/true
    outputs: [stop, y]
  - id: rt
    operators:
      - id: a
        python: a.py
        inputs: {stop: src/stop}
        outputs: [x]
      - id: b
        python: b.py
        inputs: {y: src/y}
        outputs: [y]
`, nil)
	done := run(t, d, cfg)
	d.input("a/stop", "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, closed, _ := d.snapshot(); contains(closed, "a/x") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's outputs did not close after STOP")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.input("b/y", "after a stopped")
	d.stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	got, _, _ := d.snapshot()
	if len(got) != 1 || got[0] != (sent{"b/y", "after a stopped"}) {
		t.Errorf("sent %v", got)
	}
}

func TestStopAllAsksTheDaemon(t *testing.T) {
	d := newFakeDaemon()
	cfg := setup(t, `
nodes:
  - id: src
    path: /bin/true
    outputs: [stop_all]
  - id: rt
    operators:
      - id: a
        python: a.py
        inputs: {stop_all: src/stop_all}
        outputs: [x]
`, nil)
	done := run(t, d, cfg)
	d.input("a/stop_all", "")
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	_, closed, why := d.snapshot()
	if !strings.Contains(why, "rt/a returned STOP_ALL") {
		t.Errorf("stop reason %q", why)
	}
	if !contains(closed, "a/x") {
		t.Errorf("outputs not closed: %v", closed)
	}
}

func TestInitFailureLeavesTheOthersRunning(t *testing.T) {
	d := newFakeDaemon()
	done := run(t, d, setup(t, twoOperators, map[string]runtimetest.Script{"a": {FailInit: true}}))
	d.input("b/y", "alive")
	d.stop()
	err := wait(t, done)
	if err == nil || !strings.Contains(err.Error(), "init failed on purpose") {
		t.Fatalf("Run = %v", err)
	}
	got, _, _ := d.snapshot()
	if len(got) != 1 || got[0] != (sent{"b/y", "alive"}) {
		t.Errorf("b sent %v", got)
	}
}

func TestStopWaitsForInternalInputs(t *testing.T) {
	d := newFakeDaemon()
	// a is slow: when Stop arrives its outputs are still due, and b must
	// not stop before they reach it.
	done := run(t, d, setup(t, twoOperators, map[string]runtimetest.Script{"a": {Delay: 50 * time.Millisecond}}))
	for i := 0; i < 5; i++ {
		d.input("a/x", "m")
	}
	d.stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	got, _, _ := d.snapshot()
	var bx int
	for _, s := range got {
		if s.id == "b/x" {
			bx++
		}
	}
	if bx != 5 {
		t.Errorf("b forwarded %d of a's 5 outputs", bx)
	}
}

func TestHotReloadOnFileChange(t *testing.T) {
	var reloads atomic.Int32
	d := newFakeDaemon()
	cfg := setup(t, twoOperators, map[string]runtimetest.Script{"a": {Reloads: &reloads}})
	cfg.HotReload = true
	done := run(t, d, cfg)
	path := filepath.Join(cfg.DataflowDir, "a.py")
	time.Sleep(600 * time.Millisecond)
	if err := os.WriteFile(path, []byte("# changed, and longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for reloads.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if reloads.Load() == 0 {
		t.Fatal("operator was not reloaded")
	}
	d.input("a/count", "")
	d.stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}
