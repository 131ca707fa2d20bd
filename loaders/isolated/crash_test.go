package isolated

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/loaders/python"
	"github.com/dora-go/dora/runtime"
)

// wantCrash checks err is the named operator's *runtime.OperatorError in
// phase, wrapping ErrOperatorCrashed, and that its text has every part.
func wantCrash(t *testing.T, err error, op string, phase runtime.Phase, parts ...string) {
	t.Helper()
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) || oe.Operator != op || oe.Phase != phase {
		t.Fatalf("error %v: want an *OperatorError of operator %q in phase %s", err, op, phase)
	}
	if !errors.Is(err, runtime.ErrOperatorCrashed) {
		t.Fatalf("error %v does not wrap ErrOperatorCrashed", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

func noRestarts(c *Config) { c.Restarts = -1 }

// TestCrash_CFaults has a C operator segfault, exit, abort: the host
// survives each, reports it with the operator id, the signal or status
// and the operator's last stderr lines, and the operator is dead after.
func TestCrash_CFaults(t *testing.T) {
	for _, tt := range []struct {
		input string
		want  []string
	}{
		{"segv", []string{"SIGSEGV: segmentation violation", "addr=0x0", "writing through a NULL pointer on purpose"}},
		{"exit", []string{"exited with status 3", "misbehave: calling exit(3)"}},
		{"abort", []string{"SIGABRT: abort"}},
	} {
		t.Run(tt.input, func(t *testing.T) {
			op := misbehaving(t, newTestLoader(t, noRestarts), "victim")
			echoes(t, op, "before", []byte("fine"))
			pid := op.pid()
			st, outs, err := send(t, op, tt.input, nil)
			if st != runtime.StatusStop || len(outs) != 0 {
				t.Errorf("status %v, %d outputs; want STOP and none", st, len(outs))
			}
			wantCrash(t, err, "victim", runtime.PhaseEvent, append(tt.want, "pid")...)
			if !reaped(pid) {
				t.Errorf("the crashed child %d was not reaped", pid)
			}
			// Dead now: later events say why without a process.
			st, _, err = send(t, op, "after", []byte("x"))
			if st != runtime.StatusStop || !errors.Is(err, runtime.ErrOperatorCrashed) || !strings.Contains(err.Error(), "earlier failure") {
				t.Errorf("after the crash: %v, %v; want STOP and the earlier failure", st, err)
			}
			if err := op.Close(); err != nil {
				t.Errorf("Close after a crash: %v", err)
			}
		})
	}
}

// TestCrash_RestartsOnce has the mock exit the process on every third
// input: the first crash restarts a fresh instance (CONTINUE), the second
// leaves the operator dead (STOP).
func TestCrash_RestartsOnce(t *testing.T) {
	op := load(t, newTestLoader(t), mockSpec("flaky", "mock:exit-on-3"))
	for i := 0; i < 2; i++ {
		echoes(t, op, "x", []byte{byte(i)})
	}
	first := op.pid()
	st, _, err := send(t, op, "x", nil)
	if st != runtime.StatusContinue {
		t.Errorf("first crash: status %v, want CONTINUE (restarted)", st)
	}
	wantCrash(t, err, "flaky", runtime.PhaseEvent, "exited with status 7", "restarted it as pid")
	if op.pid() == 0 || op.pid() == first {
		t.Fatalf("pid %d after a restart of pid %d", op.pid(), first)
	}
	// A fresh instance: it counts from one again.
	for i := 0; i < 2; i++ {
		echoes(t, op, "y", []byte{byte(i)})
	}
	st, _, err = send(t, op, "y", nil)
	if st != runtime.StatusStop {
		t.Errorf("second crash: status %v, want STOP", st)
	}
	wantCrash(t, err, "flaky", runtime.PhaseEvent, "exited with status 7", "not restarted")
	if st, _, _ := send(t, op, "z", nil); st != runtime.StatusStop {
		t.Errorf("after the second crash: status %v, want STOP", st)
	}
}

// TestCrash_Hang has a C operator hang: the event's deadline kills the
// process; the error wraps ErrTimeout, as the runtime expects of a stuck
// operator, and the operator is dead.
func TestCrash_Hang(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "stuck")
	pid := op.pid()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	var st runtime.Status
	var err error
	go func() {
		defer close(done)
		st, err = op.OnEvent(ctx, &runtime.Event{Type: runtime.EventInput, ID: "hang"}, discard{})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("OnEvent ignored its context for 20s")
	}
	var oe *runtime.OperatorError
	if st != runtime.StatusStop || !errors.As(err, &oe) || oe.Operator != "stuck" || !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("OnEvent = %v, %v; want STOP and an ErrTimeout of operator stuck", st, err)
	}
	if !reaped(pid) {
		t.Errorf("the hung child %d was not killed and reaped", pid)
	}
	// A reload revives it with a new process.
	if err := op.Reload(ctxFor(t, 30*time.Second), op.spec); err != nil {
		t.Fatalf("Reload of a dead operator: %v", err)
	}
	echoes(t, op, "revived", []byte("yes"))
}

// TestCrash_GarbageOnStdout has a C operator write junk, some of it
// shaped like a go-plugin handshake, to its stdout: it only reaches the
// runtime's stdout, prefixed with the operator id.
func TestCrash_GarbageOnStdout(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "noisy")
	echoes(t, op, "garbage", []byte("still works"))
	echoes(t, op, "print", []byte("and prints"))
	echoes(t, op, "after", []byte("fine"))
	stdout, stderr := op.spec.Stdout.(*syncbuf.Buffer), op.spec.Stderr.(*syncbuf.Buffer)
	eventually(t, "forwarded output", func() bool {
		return strings.Contains(stdout.String(), "noisy: hello from C") && strings.Contains(stderr.String(), "noisy: warning from C")
	})
	if !strings.Contains(stdout.String(), "noisy: \x00\xff\xfe 1|1|unix|/nowhere|grpc|") {
		t.Errorf("the junk was not forwarded as the operator's stdout:\n%q", stdout.String())
	}
}

// TestCrash_DuringInit has a C operator crash in dora_init_operator.
func TestCrash_DuringInit(t *testing.T) {
	lib := buildLib(t, filepath.Join("testdata", "misbehave.c"), "crash_in_init", "-DCRASH_IN_INIT")
	_, err := newTestLoader(t).Load(ctxFor(t, 30*time.Second), cSpec("early", lib))
	wantCrash(t, err, "early", runtime.PhaseLoad, "SIGSEGV: segmentation violation", "writing through a NULL pointer")
}

// TestCrash_DuringClose has a C operator crash in dora_drop_operator.
func TestCrash_DuringClose(t *testing.T) {
	op := misbehaving(t, newTestLoader(t), "late")
	echoes(t, op, "segv_on_drop", nil)
	pid := op.pid()
	wantCrash(t, op.Close(), "late", runtime.PhaseClose, "SIGSEGV: segmentation violation")
	if !reaped(pid) {
		t.Errorf("child %d was not reaped", pid)
	}
	if err := op.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCrash_PythonAbort aborts the embedded interpreter.
func TestCrash_PythonAbort(t *testing.T) {
	if err := python.New().Probe(); err != nil {
		t.Skipf("no usable python: %v", err)
	}
	abs, _ := filepath.Abs(filepath.Join("testdata", "abort.py"))
	spec := runtime.OperatorSpec{
		NodeID:   "runtime-node",
		Operator: &descriptor.Operator{ID: "py", Source: descriptor.OperatorSource{Kind: descriptor.SourcePython, Path: abs}},
		Path:     abs, Stdout: &syncbuf.Buffer{}, Stderr: &syncbuf.Buffer{},
	}
	op := load(t, newTestLoader(t, noRestarts), spec)
	echoes(t, op, "x", []byte("y"))
	_, _, err := send(t, op, "abort", nil)
	wantCrash(t, err, "py", runtime.PhaseEvent, "SIGABRT: abort", "aborting the interpreter on purpose")
}

// TestCrash_GoPanicInTheChild: a panic in the child's Go code (the mock)
// is recovered there and reported as ErrPanic, which the runtime treats
// as fatal for the operator.
func TestCrash_GoPanicInTheChild(t *testing.T) {
	op := load(t, newTestLoader(t), mockSpec("panicky", "mock:panic-on-1"))
	_, _, err := send(t, op, "x", nil)
	var oe *runtime.OperatorError
	if !errors.Is(err, runtime.ErrPanic) || !errors.As(err, &oe) || oe.Operator != "panicky" || !strings.Contains(err.Error(), "scripted panic") {
		t.Fatalf("OnEvent = %v, want the child's ErrPanic", err)
	}
}

// TestStart_Failures covers children that never complete go-plugin's
// handshake: garbage on stdout, an exit, a hang.
func TestStart_Failures(t *testing.T) {
	for _, tt := range []struct {
		mode    string
		timeout time.Duration
		check   func(t *testing.T, err error)
	}{
		{"garbage", 30 * time.Second, func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "Unrecognized remote plugin message") || !strings.Contains(err.Error(), "this is no handshake") {
				t.Errorf("error %q does not show what the child printed", err)
			}
		}},
		{"exit", 30 * time.Second, func(t *testing.T, err error) {
			wantCrash(t, err, "op", runtime.PhaseLoad, "exited with status 3", "helper: giving up before the handshake")
		}},
		{"hang", 500 * time.Millisecond, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap the context's", err)
			}
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			dir := socketDir(t)
			l := New(childLoaders(), helperConfig(tt.mode, dir))
			start := time.Now()
			op, err := l.Load(ctxFor(t, tt.timeout), mockSpec("op", "mock:echo"))
			if err == nil {
				op.Close()
				t.Fatal("Load succeeded")
			}
			if time.Since(start) > 20*time.Second {
				t.Errorf("Load took %s", time.Since(start))
			}
			var oe *runtime.OperatorError
			if !errors.As(err, &oe) || oe.Operator != "op" || oe.Phase != runtime.PhaseLoad {
				t.Fatalf("Load = %v, want an *OperatorError in phase load", err)
			}
			tt.check(t, err)
			wantNoFiles(t, dir)
		})
	}
}

// TestStart_MissingCommand reports an operator host that cannot start.
func TestStart_MissingCommand(t *testing.T) {
	l := New(childLoaders(), Config{Command: func() (*exec.Cmd, error) {
		return exec.Command(filepath.Join(t.TempDir(), "no-such-dora"), Subcommand), nil
	}})
	if err := l.Probe(); err == nil || !strings.Contains(err.Error(), "no-such-dora") {
		t.Errorf("Probe = %v, want the missing executable named", err)
	}
	_, err := l.Load(ctxFor(t, 30*time.Second), mockSpec("op", "mock:echo"))
	if err == nil || !strings.Contains(err.Error(), "no-such-dora") {
		t.Errorf("Load = %v, want the missing executable named", err)
	}
}

type discard struct{}

func (discard) Send(runtime.Output) error { return nil }
