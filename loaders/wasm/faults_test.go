package wasm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// fire sends one INPUT event and returns what came back.
func fire(t testing.TB, op runtime.Operator, id string, data []byte) (runtime.Status, []runtime.Output, error) {
	t.Helper()
	var rec runtimetest.Recorder
	st, err := op.OnEvent(testCtx(t), runtimetest.Input(id, data), &rec)
	return st, rec.Take(), err
}

func TestTrapsStopTheOperatorAndNothingElse(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		guest    func(t *testing.T) string
		want     []string
	}{
		{"go/out of bounds", "oob", func(t *testing.T) string { return goGuest(t, "faults") }, []string{"out of bounds memory access", "dora_on_event"}},
		{"go/proc_exit", "exit", func(t *testing.T) string { return goGuest(t, "faults") }, []string{"exited with code 3", "dora_on_event"}},
		{"c/unreachable", "trap", func(t *testing.T) string { return cGuest(t) }, []string{"unreachable", "dora_on_event"}},
		{"c/out of bounds", "oob", func(t *testing.T) string { return cGuest(t) }, []string{"out of bounds memory access", "dora_on_event"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLoader(t, Config{})
			bystander := load(t, l, specFor(cGuestOrGo(t), "bystander", nil))
			op := load(t, l, specFor(tc.guest(t), "victim", nil))

			st, outs, err := fire(t, op, tc.id, nil)
			oe := wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrTrap)
			wantContains(t, err, tc.want...)
			if oe.Operator != "victim" || st != runtime.StatusStop || len(outs) != 0 {
				t.Errorf("operator %q status %v outputs %d, want victim, STOP and none", oe.Operator, st, len(outs))
			}

			// The operator stays dead, saying why, without running guest code.
			st, _, err = fire(t, op, "x", []byte("y"))
			wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrTrap)
			wantContains(t, err, "stopped after an earlier failure")
			if st != runtime.StatusStop {
				t.Errorf("status after the trap = %v, want STOP", st)
			}
			mustEcho(t, bystander)
			if err := op.Close(); err != nil {
				t.Errorf("Close after a trap: %v", err)
			}
		})
	}
}

// cGuestOrGo is an echo operator: the C one when clang is there (it loads
// faster), else the Go one.
func cGuestOrGo(t *testing.T) string {
	if cc, _ := clang(); cc != "" {
		return cGuest(t)
	}
	return goGuest(t, "echo")
}

func TestGoPanicIsRecoveredAndReported(t *testing.T) {
	op := load(t, newLoader(t, Config{}), specFor(goGuest(t, "faults"), "faults", nil))
	st, _, err := fire(t, op, "nil", nil)
	wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrPanic)
	wantContains(t, err, "nil pointer dereference", "main.(*faults).OnEvent")
	if st != runtime.StatusContinue {
		t.Errorf("status %v, want CONTINUE", st)
	}
	mustEcho(t, op)
}

func TestEventTimeLimitStopsARunawayLoop(t *testing.T) {
	for name, guest := range map[string]func(t *testing.T) string{
		"go": func(t *testing.T) string { return goGuest(t, "faults") },
		"c":  func(t *testing.T) string { return cGuest(t) },
	} {
		t.Run(name, func(t *testing.T) {
			l := newLoader(t, Config{})
			bystander := load(t, l, specFor(cGuestOrGo(t), "bystander", nil))
			op := load(t, l, specFor(guest(t), "spinner", &descriptor.Sandbox{EventTimeout: 100 * time.Millisecond}))
			mustEcho(t, op) // a quick event is well within the limit

			st, _, err := fire(t, op, "loop", nil)
			wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrTimeout)
			wantContains(t, err, "100ms", "dora_on_event")
			if st != runtime.StatusStop {
				t.Errorf("status %v, want STOP", st)
			}
			_, _, err = fire(t, op, "x", nil)
			wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrTimeout)
			mustEcho(t, bystander)
		})
	}
}

func TestCancelledContextInterruptsAnEvent(t *testing.T) {
	op := load(t, newLoader(t, Config{}), specFor(cGuestOrGo(t), "spinner", nil))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var rec runtimetest.Recorder
	// The C echo has no "loop"; the Go faults guest does.
	op2 := load(t, newLoader(t, Config{}), specFor(goGuest(t, "faults"), "spinner", nil))
	_, err := op2.OnEvent(ctx, runtimetest.Input("loop", nil), &rec)
	wantOpErr(t, err, runtime.PhaseEvent, context.DeadlineExceeded)
	if errors.Is(err, runtime.ErrTimeout) {
		t.Errorf("the caller's deadline is reported as the operator's time limit: %v", err)
	}

	// A context that is done before the call does not kill the operator.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = op.OnEvent(done, runtimetest.Input("x", nil), &rec)
	wantOpErr(t, err, runtime.PhaseEvent, context.Canceled)
	mustEcho(t, op)
}

func TestMemoryLimit(t *testing.T) {
	t.Run("go guest growing past the limit stops cleanly", func(t *testing.T) {
		l := newLoader(t, Config{})
		bystander := load(t, l, specFor(cGuestOrGo(t), "bystander", nil))
		spec := specFor(goGuest(t, "faults"), "hog", &descriptor.Sandbox{MemoryLimit: 32 << 20})
		var stderr bytes.Buffer
		spec.Stderr = &stderr
		op := load(t, l, spec)
		st, _, err := fire(t, op, "grow", []byte("64"))
		if !strings.Contains(stderr.String(), "out of memory") {
			t.Errorf("the guest's stderr does not say it ran out of memory:\n%s", stderr.String())
		}
		wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrTrap)
		wantContains(t, err, "32 MiB limit", "Go runtime aborted")
		if st != runtime.StatusStop {
			t.Errorf("status %v, want STOP", st)
		}
		mustEcho(t, bystander)

		roomy := load(t, l, specFor(goGuest(t, "faults"), "roomy", &descriptor.Sandbox{MemoryLimit: 256 << 20}))
		if _, _, err := fire(t, roomy, "grow", []byte("64")); err != nil {
			t.Fatalf("64 MiB within a 256 MiB limit: %v", err)
		}
	})
	t.Run("c guest sees memory.grow fail and goes on", func(t *testing.T) {
		op := load(t, newLoader(t, Config{}), specFor(cGuest(t), "c", &descriptor.Sandbox{MemoryLimit: 4 << 20}))
		_, _, err := fire(t, op, "grow", []byte("8"))
		wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrOperatorError)
		wantContains(t, err, "memory.grow refused")
		mustEcho(t, op)
	})
	t.Run("an input larger than the limit is refused", func(t *testing.T) {
		op := load(t, newLoader(t, Config{}), specFor(cGuest(t), "c", &descriptor.Sandbox{MemoryLimit: 2 << 20}))
		st, _, err := fire(t, op, "big", make([]byte, 4<<20))
		wantOpErr(t, err, runtime.PhaseEvent, ErrMemoryLimit)
		wantContains(t, err, "dora_alloc")
		if st != runtime.StatusContinue {
			t.Errorf("status %v, want CONTINUE", st)
		}
		mustEcho(t, op)
	})
	t.Run("a module needing more than the limit does not load", func(t *testing.T) {
		_, err := newLoader(t, Config{}).Load(testCtx(t), specFor(goGuest(t, "echo"), "echo", &descriptor.Sandbox{MemoryLimit: 1 << 20}))
		wantOpErr(t, err, runtime.PhaseLoad, ErrMemoryLimit)
		wantContains(t, err, "1 MiB limit")
	})
}

func TestMissingExportsAreNamed(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		bin     []byte
		want    []string
		notWant []string
	}{
		{"empty module", module(false, nil), []string{"dora_alloc", "dora_on_event", "memory"}, nil},
		{"no on_event", module(true, nil, fnExport{"dora_alloc", 1, 1}), []string{"dora_on_event"}, []string{"dora_alloc,", "memory"}},
		{"no memory", module(false, nil, fnExport{"dora_alloc", 1, 1}, fnExport{"dora_on_event", 7, 1}), []string{"memory"}, []string{"dora_alloc", "dora_on_event"}},
		{"unknown import", module(true, []string{"env.abort", "dora.send_output"}, fnExport{"dora_alloc", 1, 1}, fnExport{"dora_on_event", 7, 1}), []string{"env.abort"}, []string{"dora.send_output"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := runtimetest.WriteFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".wasm", tc.bin)
			_, err := newLoader(t, Config{}).Load(testCtx(t), specFor(p, "op", nil))
			wantOpErr(t, err, runtime.PhaseLoad, runtime.ErrMissingSymbol)
			wantContains(t, err, tc.want...)
			for _, s := range tc.notWant {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error %q names %q, which is there", err, s)
				}
			}
		})
	}
	t.Run("mistyped export", func(t *testing.T) {
		p := runtimetest.WriteFile(t, dir, "mistyped.wasm", module(true, nil, fnExport{"dora_alloc", 1, 1}, fnExport{"dora_on_event", 1, 1}))
		_, err := newLoader(t, Config{}).Load(testCtx(t), specFor(p, "op", nil))
		wantOpErr(t, err, runtime.PhaseLoad)
		wantContains(t, err, "dora_on_event is (i32) -> (i32), want (i32, i32, i32, i32, i32, i32, i32) -> (i32)")
	})
	t.Run("command instead of reactor", func(t *testing.T) {
		_, err := newLoader(t, Config{}).Load(testCtx(t), specFor(goGuest(t, "echo", "-buildmode=exe"), "op", nil))
		wantOpErr(t, err, runtime.PhaseLoad)
		wantContains(t, err, "WASI command", "-buildmode=c-shared")
	})
}

func TestRejectsFilesThatAreNotModules(t *testing.T) {
	dir := t.TempDir()
	echo, err := os.ReadFile(cGuestOrGo(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"text", []byte("#!/bin/sh\necho hi\n"), `starts with "#!/bin/s"`},
		{"empty", nil, "not a WebAssembly module"},
		{"elf", []byte("\x7fELF\x02\x01\x01\x00rest"), "ELF"},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), "component"},
		{"truncated", echo[:len(echo)/2], "not a WebAssembly module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := runtimetest.WriteFile(t, dir, tc.name+".wasm", tc.data)
			_, err := newLoader(t, Config{}).Load(testCtx(t), specFor(p, "op", nil))
			wantOpErr(t, err, runtime.PhaseLoad, ErrNotWasm)
			wantContains(t, err, p, tc.want)
		})
	}
}

func TestFilesystemSandbox(t *testing.T) {
	guest := goGuest(t, "faults")
	root := t.TempDir()
	shared := filepath.Join(root, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	runtimetest.WriteFile(t, shared, "in.txt", []byte("granted"))
	secret := runtimetest.WriteFile(t, root, "secret.txt", []byte("host secret"))

	read := func(t *testing.T, op runtime.Operator, path string) (string, error) {
		t.Helper()
		_, outs, err := fire(t, op, "read", []byte(path))
		if err != nil {
			return "", err
		}
		if len(outs) != 1 {
			t.Fatalf("read %s: %d outputs", path, len(outs))
		}
		return string(outs[0].Data), nil
	}
	l := newLoader(t, Config{})

	t.Run("no mounts: no files at all", func(t *testing.T) {
		op := load(t, l, specFor(guest, "nofs", nil))
		for _, p := range []string{secret, "/etc/passwd", "secret.txt"} {
			if got, err := read(t, op, p); err == nil {
				t.Errorf("guest read %s without a mount: %q", p, got)
			}
		}
		mustEcho(t, op)
	})
	t.Run("read-write mount", func(t *testing.T) {
		op := load(t, l, specFor(guest, "rw", &descriptor.Sandbox{Mounts: []string{shared + ":/data"}}))
		if got, err := read(t, op, "/data/in.txt"); err != nil || got != "granted" {
			t.Errorf("read /data/in.txt = %q, %v", got, err)
		}
		if _, _, err := fire(t, op, "write", []byte("/data/out.txt")); err != nil {
			t.Errorf("write into a read-write mount: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(shared, "out.txt")); err != nil || string(b) != "x" {
			t.Errorf("host sees %q, %v", b, err)
		}
		for _, p := range []string{"/data/../secret.txt", secret} {
			if got, err := read(t, op, p); err == nil {
				t.Errorf("guest escaped its mount with %s: %q", p, got)
			}
		}
	})
	t.Run("read-only mount", func(t *testing.T) {
		spec := specFor(guest, "ro", &descriptor.Sandbox{Mounts: []string{"shared:/data:ro"}})
		spec.WorkDir = root // the host side is relative to the node's folder
		op := load(t, l, spec)
		if got, err := read(t, op, "/data/in.txt"); err != nil || got != "granted" {
			t.Errorf("read /data/in.txt = %q, %v", got, err)
		}
		_, _, err := fire(t, op, "write", []byte("/data/ro.txt"))
		wantOpErr(t, err, runtime.PhaseEvent, runtime.ErrOperatorError)
		if _, serr := os.Stat(filepath.Join(shared, "ro.txt")); serr == nil {
			t.Error("a write through a read-only mount reached the host")
		}
		mustEcho(t, op)
	})
	t.Run("bad mounts are load errors", func(t *testing.T) {
		for _, m := range []string{"no-colon", filepath.Join(root, "missing") + ":/x", secret + ":/x", shared + ":/x:rx", ":/x"} {
			_, err := l.Load(testCtx(t), specFor(guest, "bad", &descriptor.Sandbox{Mounts: []string{m}}))
			wantOpErr(t, err, runtime.PhaseLoad)
			wantContains(t, err, "sandbox mount")
		}
	})
}

func TestGuestOutputStreamsAndLogs(t *testing.T) {
	var stdout, stderr syncbuf.Buffer
	var logs bytes.Buffer
	spec := specFor(goGuest(t, "faults"), "talker", nil)
	spec.Stdout, spec.Stderr = &stdout, &stderr
	spec.Logger = newTextLogger(&logs)
	op := load(t, newLoader(t, Config{}), spec)
	if _, _, err := fire(t, op, "print", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "stdout: hi") || !strings.Contains(stderr.String(), "stderr: hi") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if _, _, err := fire(t, op, "log", []byte("careful")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "careful") {
		t.Errorf("log output %q", logs.String())
	}
}

func TestUntimedOperatorsRun(t *testing.T) {
	l := newLoader(t, Config{})
	op := load(t, l, specFor(cGuestOrGo(t), "fast", &descriptor.Sandbox{EventTimeout: -1}))
	mustEcho(t, op)
	if op.inst.ectx != nil {
		t.Error("an untimed operator has an event context")
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := op.OnEvent(done, runtimetest.Input("x", nil), &runtimetest.Recorder{})
	wantOpErr(t, err, runtime.PhaseEvent, context.Canceled)
	mustEcho(t, op)
}

func TestLoadCancelledDuringCompilationReturnsAndCleansUp(t *testing.T) {
	// A fresh cache folder forces a compilation, which a 1ms deadline
	// interrupts (a Go guest compiles for far longer).
	spec := specFor(goGuest(t, "faults"), "slow", nil)
	l := New(Config{CacheDir: filepath.Join(t.TempDir(), "cache")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := l.Load(ctx, spec)
	wantOpErr(t, err, runtime.PhaseLoad, context.DeadlineExceeded)
	// The abandoned compilation finishes in the background and hands
	// the loader back; Close then releases everything.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		l.mu.Lock()
		live := l.live
		l.mu.Unlock()
		if live == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the abandoned compilation never released its runtime")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
