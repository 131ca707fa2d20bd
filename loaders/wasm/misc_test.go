package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func sampleWire() wire.Metadata {
	return wire.Metadata{
		Timestamp:            1234567890,
		OpenTelemetryContext: "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Parameters: map[string]wire.Parameter{
			"n":     {Kind: wire.ParamInt, Int: -3},
			"names": {Kind: wire.ParamStringList, Strings: []string{"a", "b"}},
		},
		Type: &wire.ArrayInfo{Format: "+l", Length: 2, Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 0, Len: 12}},
			Children: []wire.ArrayInfo{{Format: "g", Length: 4, Buffers: []wire.BufferSpan{{Absent: true}, {Offset: 16, Len: 32}}}}},
	}
}

func TestMetadataReachesTheGuestAndBack(t *testing.T) {
	op := load(t, newLoader(t, Config{}), specFor(goGuest(t, "faults"), "meta", nil))
	ev := runtimetest.Input("meta", []byte("payload"))
	ev.Metadata = sampleWire()
	var rec runtimetest.Recorder
	if _, err := op.OnEvent(testCtx(t), ev, &rec); err != nil {
		t.Fatal(err)
	}
	outs := rec.Take()
	want := sampleWire()
	want.Timestamp = 0
	if len(outs) != 1 || string(outs[0].Data) != "payload" || !reflect.DeepEqual(outs[0].Metadata, want) {
		t.Fatalf("outputs %+v, want payload with metadata %+v", outs, want)
	}

	c := load(t, newLoader(t, Config{}), specFor(cGuest(t), "c", nil))
	ev = runtimetest.Input("ts", nil)
	if _, err := c.OnEvent(testCtx(t), ev, &rec); err != nil {
		t.Fatal(err)
	}
	outs = rec.Take()
	if len(outs) != 1 || len(outs[0].Data) != 8 || binary.LittleEndian.Uint64(outs[0].Data) != ev.Metadata.Timestamp {
		t.Fatalf("C guest read timestamp %v, want %d", outs, ev.Metadata.Timestamp)
	}
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestCompilationCachePersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	guest := cGuestOrGo(t)

	l1 := New(Config{CacheDir: dir})
	if l1.CacheDir() != dir {
		t.Fatalf("CacheDir = %q, want %q", l1.CacheDir(), dir)
	}
	op := load(t, l1, specFor(guest, "first", nil))
	mustEcho(t, op)
	op.Close()
	l1.Close()
	first := cacheFiles(t, dir)
	if len(first) == 0 {
		t.Fatalf("no compiled module in %s after a load", dir)
	}

	// A new loader (a restarted process) finds the entry and adds none.
	l2 := newLoader(t, Config{CacheDir: dir})
	mustEcho(t, load(t, l2, specFor(guest, "second", nil)))
	if again := cacheFiles(t, dir); !reflect.DeepEqual(again, first) {
		t.Errorf("second load changed the cache: %v, then %v", first, again)
	}
}

func TestCacheDirDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvCacheDir, dir)
	if got, err := DefaultCacheDir(); err != nil || got != filepath.Join(dir, "wazero") {
		t.Fatalf("DefaultCacheDir = %q, %v; want %s/wazero", got, err, dir)
	}
	l := New(Config{})
	defer l.Close()
	if l.CacheDir() != filepath.Join(dir, "wazero") {
		t.Errorf("CacheDir = %q", l.CacheDir())
	}
	t.Setenv(EnvCacheDir, "")
	ucd, err := os.UserCacheDir()
	if err == nil {
		if got, _ := DefaultCacheDir(); got != filepath.Join(ucd, "dora", "wazero") {
			t.Errorf("DefaultCacheDir = %q without %s", got, EnvCacheDir)
		}
	}
}

func TestProbe(t *testing.T) {
	l := newLoader(t, Config{})
	if err := l.Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if l.Engine() != "compiler" && l.Engine() != "interpreter" {
		t.Errorf("Engine = %q", l.Engine())
	}

	// A cache folder that cannot be made: operators still run, and Probe says what is wrong.
	blocker := runtimetest.WriteFile(t, t.TempDir(), "file", []byte("x"))
	l = newLoader(t, Config{CacheDir: filepath.Join(blocker, "cache")})
	err := l.Probe()
	if err == nil || !strings.Contains(err.Error(), "not cached") {
		t.Errorf("Probe with an unusable cache folder = %v", err)
	}
	mustEcho(t, load(t, l, specFor(cGuestOrGo(t), "echo", nil)))
}

func TestInterpreterRunsTheSameGuest(t *testing.T) {
	l := newLoader(t, Config{Interpreter: true, NoPersistentCache: true})
	if l.Engine() != "interpreter" {
		t.Fatalf("Engine = %q", l.Engine())
	}
	op := load(t, l, specFor(cGuestOrGo(t), "echo", nil))
	runtimetest.Event(t, op, runtimetest.Input("count", nil))
	mustEcho(t, op)
}

func TestReload(t *testing.T) {
	l := newLoader(t, Config{})
	goEcho := goGuest(t, "echo")
	op := load(t, l, specFor(goEcho, "echo", nil))
	for i := 0; i < 3; i++ {
		runtimetest.Event(t, op, runtimetest.Input("x", nil))
	}
	count := func() string {
		_, outs := runtimetest.Event(t, op, runtimetest.Input("count", nil))
		if len(outs) != 1 {
			t.Fatalf("count: %+v", outs)
		}
		return string(outs[0].Data)
	}

	// Same module, new instance: the Go SDK carries the state over.
	if err := op.Reload(testCtx(t), specFor(goEcho, "echo", nil)); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != "4" {
		t.Errorf("count after a reload with state hooks = %s, want 4", got)
	}

	// A broken file: the old code keeps running.
	bad := runtimetest.WriteFile(t, t.TempDir(), "bad.wasm", []byte("nope"))
	err := op.Reload(testCtx(t), specFor(bad, "echo", nil))
	wantOpErr(t, err, runtime.PhaseReload, ErrNotWasm)
	if got := count(); got != "5" {
		t.Errorf("count after a failed reload = %s, want 5", got)
	}
	err = op.Reload(testCtx(t), specFor(goGuest(t, "initerror"), "echo", nil))
	wantOpErr(t, err, runtime.PhaseReload)
	wantContains(t, err, "init failed on purpose")

	// A module without state hooks starts afresh.
	if cc, _ := clang(); cc != "" {
		if err := op.Reload(testCtx(t), specFor(cGuest(t), "echo", nil)); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != "1" {
			t.Errorf("count after reloading into a stateless module = %s, want 1", got)
		}
	}

	// A dead operator comes back with a reload.
	faults := load(t, l, specFor(goGuest(t, "faults"), "faults", nil))
	if _, _, err := fire(t, faults, "oob", nil); err == nil {
		t.Fatal("no trap")
	}
	if err := faults.Reload(testCtx(t), specFor(goGuest(t, "faults"), "faults", nil)); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, faults)
}

func TestCloseReleasesTheLoader(t *testing.T) {
	l := New(Config{NoPersistentCache: true})
	op := load(t, l, specFor(cGuestOrGo(t), "echo", nil))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Operators loaded before Close keep working until they are closed.
	mustEcho(t, op)
	if _, err := l.Load(testCtx(t), specFor(cGuestOrGo(t), "late", nil)); err == nil {
		t.Error("Load after Close succeeded")
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHammer_LoadEventCloseConcurrently(t *testing.T) {
	l := newLoader(t, Config{})
	guest := goGuest(t, "echo")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				op, err := l.Load(testCtx(t), specFor(guest, "echo", nil))
				if err != nil {
					t.Error(err)
					return
				}
				var rec runtimetest.Recorder
				for j := 0; j < 20; j++ {
					if _, err := op.OnEvent(testCtx(t), runtimetest.Input("x", bytes.Repeat([]byte{byte(j)}, j*100)), &rec); err != nil {
						t.Error(err)
					}
				}
				if n := len(rec.Take()); n != 20 {
					t.Errorf("%d outputs, want 20", n)
				}
				if err := op.Close(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestGoGuestAllocatesNothingPerEvent(t *testing.T) {
	op := load(t, newLoader(t, Config{}), specFor(goGuest(t, "echo"), "echo", nil))
	mallocs := func() uint64 {
		_, outs := runtimetest.Event(t, op, runtimetest.Input("mallocs", nil))
		n, err := strconv.ParseUint(string(outs[0].Data), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	data := bytes.Repeat([]byte("8 bytes!"), 1)
	runtimetest.Event(t, op, runtimetest.Input("x", data)) // warm up
	mallocs()
	before := mallocs()
	const events = 1000
	var rec discard
	for i := 0; i < events; i++ {
		for _, id := range []string{"noop", "x"} {
			if _, err := op.OnEvent(testCtx(t), runtimetest.Input(id, data), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := mallocs(); after-before > 10 {
		t.Errorf("the Go guest allocated %d times in %d events", after-before, 2*events)
	}
}

func TestCompileGateLetsOneCompilationRunAtATime(t *testing.T) {
	g := compileGate{busy: map[[32]byte]chan struct{}{}}
	key := [32]byte{1}
	leave, err := g.enter(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	// A second compilation of the same module waits for the first...
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.enter(ctx, key); err == nil {
		t.Fatal("a second compilation entered while the first was running")
	}
	// ... another module does not.
	other, err := g.enter(context.Background(), [32]byte{2})
	if err != nil {
		t.Fatal(err)
	}
	other()
	entered := make(chan struct{})
	go func() {
		l, err := g.enter(context.Background(), key)
		if err == nil {
			l()
		}
		close(entered)
	}()
	leave()
	<-entered
}
