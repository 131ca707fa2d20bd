package isolated

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// TestOutputsKeepTheirOrder has a C operator send ten outputs in one
// event, the small ones inline and the large ones through the shared
// region: they arrive in order, each intact.
func TestOutputsKeepTheirOrder(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "bursty")
	for round := 0; round < 3; round++ {
		_, outs, err := send(t, op, "burst", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 10 {
			t.Fatalf("%d outputs, want 10", len(outs))
		}
		for i, o := range outs {
			if o.ID != "burst" || !bytes.Equal(o.Data, bytes.Repeat([]byte{byte(i)}, i*16384)) {
				t.Fatalf("round %d: output %d is %s with %d bytes, want burst with %d bytes of %d", round, i, o.ID, len(o.Data), i*16384, i)
			}
		}
	}
}

// TestASendErrorReachesTheOperator: the host Sender's error is what the
// operator's send_output returns, during the call.
func TestASendErrorReachesTheOperator(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "bursty")
	rec := runtimetest.Recorder{Err: errors.New("the daemon is gone")}
	_, err := op.OnEvent(ctxFor(t, 30e9), runtimetest.Input("burst", nil), &rec)
	if err == nil || !strings.Contains(err.Error(), "the daemon is gone") {
		t.Fatalf("OnEvent = %v, want the send error", err)
	}
	if n := len(rec.Take()); n != 1 {
		t.Errorf("the operator sent %d outputs after its first send failed, want it to stop at 1", n)
	}
	echoes(t, op, "after", []byte("still fine"))
}

// TestRegionsGrowAndAreReused checks the input region is created once
// per size class and kept.
func TestRegionsGrowAndAreReused(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "big")
	region := func() uint64 {
		if op.c.in.cur == nil {
			return 0
		}
		return op.c.in.cur.id
	}
	sizes := []int{inlineMax - 1, inlineMax, 100 << 10, 3 << 20, 100 << 10, 8}
	want := []uint64{0, 1, 2, 3, 3, 3}
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i + 1)}, n)
		echoes(t, op, "blob", data)
		if got := region(); got != want[i] {
			t.Errorf("after %d bytes: input region %d, want %d", n, got, want[i])
		}
	}
	if op.c.out.id == 0 {
		t.Error("large outputs did not come through a region")
	}
}

// TestRegionsAreSealed checks a reader refuses a memfd that could shrink
// under it, and that the regions a writer makes cannot shrink.
func TestRegionsAreSealed(t *testing.T) {
	fd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(fd)
	unix.Ftruncate(fd, 1<<16)
	if _, err := mapSealed(fd, 1<<16); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("mapSealed of an unsealed memfd = %v, want a refusal", err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	w := regionWriter{sock: pair[0], role: roleOutput, name: "test"}
	defer w.close()
	if _, err := w.ensure(1 << 17); err != nil {
		t.Fatal(err)
	}
	r := regionReader{sock: pair[1], role: roleOutput}
	defer r.close()
	view, err := r.view(1, 1<<17)
	if err != nil || len(view) != 1<<17 {
		t.Fatalf("view = %d bytes, %v", len(view), err)
	}
	// Whoever holds a region's descriptor cannot shrink, grow or unseal it.
	sfd, mem, err := newSealed("test", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)
	defer unix.Munmap(mem)
	if err := unix.Ftruncate(sfd, 4096); err == nil {
		t.Error("a sealed region could be shrunk")
	}
	if _, err := unix.FcntlInt(uintptr(sfd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE); err == nil {
		t.Error("a sealed region's seals could be changed")
	}
	wrongRole := regionReader{sock: pair[1], role: roleInput}
	w.ensure(1 << 20)
	if _, err := wrongRole.view(2, 1); err == nil || !strings.Contains(err.Error(), "role") {
		t.Errorf("a region of the wrong role was accepted: %v", err)
	}
}

// TestChildLogsReachTheHostLogger checks the child's JSON logs come out
// of the operator's slog.Logger with node=, operator=, loader= and pid=.
func TestChildLogsReachTheHostLogger(t *testing.T) {
	var buf syncbuf.Buffer
	spec := mockSpec("chatty", "mock:echo")
	spec.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", "node", "operator", "chatty")
	op := load(t, newTestLoader(t), spec)
	var rec map[string]any
	eventually(t, "the child's \"operator loaded\" log", func() bool {
		for _, line := range strings.Split(buf.String(), "\n") {
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "operator loaded in its own process" {
				return true
			}
		}
		return false
	})
	want := map[string]any{"node": "node", "operator": "chatty", "loader": "mock", "pid": float64(op.pid()), "level": "INFO"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v in %v", k, rec[k], v, rec)
		}
	}
	if strings.Count(buf.String(), `"node":`) != strings.Count(buf.String(), "\n") {
		t.Errorf("a record names its node twice or not at all:\n%s", buf.String())
	}
}

// TestReloadGoesToTheChild reloads a C operator with other code.
func TestReloadGoesToTheChild(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "swapped")
	_, outs, _ := send(t, op, "count", []byte("echoed"))
	if len(outs) != 1 || string(outs[0].Data) != "echoed" {
		t.Fatalf("before reload: %+v", outs)
	}
	spec := op.spec
	spec.Path = buildLib(t, filepath.Join("..", "sharedlib", "testdata", "echo.c"), "echo")
	if err := op.Reload(ctxFor(t, 30e9), spec); err != nil {
		t.Fatal(err)
	}
	_, outs, _ = send(t, op, "count", []byte("echoed"))
	if len(outs) != 1 || string(outs[0].Data) != "1" {
		t.Fatalf("after reload: %+v, want echo.c's count", outs)
	}
	// A loader that cannot reload says so, and the operator goes on.
	spec = mockSpec("fixed", "noop")
	spec.Operator.Source.Kind = kindNoop
	noop := load(t, newTestLoader(t), spec)
	if err := noop.Reload(ctxFor(t, 30e9), spec); err == nil || !strings.Contains(err.Error(), "cannot reload") {
		t.Errorf("Reload = %v, want the loader's refusal", err)
	}
	if st, _, err := send(t, noop, "x", nil); err != nil || st != runtime.StatusContinue {
		t.Errorf("after a refused reload: %v, %v", st, err)
	}
}

// TestHammer_IsolatedOperators runs several isolated operators at once
// (small and shared-memory payloads, one that keeps crashing) under
// -race: the healthy ones are not disturbed.
func TestHammer_IsolatedOperators(t *testing.T) {
	l := newTestLoader(t)
	const healthy, events = 4, 60
	var wg sync.WaitGroup
	for i := 0; i < healthy; i++ {
		op := load(t, l, mockSpec(fmt.Sprintf("op%d", i), "mock:echo"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec runtimetest.Recorder
			for j := 0; j < events; j++ {
				n := []int{8, 1000, inlineMax, 300 << 10}[j%4]
				data := bytes.Repeat([]byte{byte(j)}, n)
				if _, err := op.OnEvent(ctxFor(t, 30e9), runtimetest.Input("x", data), &rec); err != nil {
					t.Error(err)
					return
				}
				outs := rec.Take()
				if len(outs) != 1 || !bytes.Equal(outs[0].Data, data) {
					t.Errorf("%s event %d: echo differs", op.id, j)
					return
				}
			}
		}()
	}
	crasher := load(t, l, mockSpec("crasher", "mock:exit-on-3"))
	wg.Add(1)
	go func() {
		defer wg.Done()
		crashes := 0
		for j := 0; j < events; j++ {
			st, err := crasher.OnEvent(ctxFor(t, 30e9), runtimetest.Input("x", []byte("y")), discard{})
			if errors.Is(err, runtime.ErrOperatorCrashed) && !strings.Contains(err.Error(), "earlier failure") {
				crashes++
			}
			if st == runtime.StatusStop {
				break
			}
		}
		if crashes != 2 {
			t.Errorf("the crasher crashed %d times, want 2 (once restarted, then dead)", crashes)
		}
	}()
	wg.Wait()
}
