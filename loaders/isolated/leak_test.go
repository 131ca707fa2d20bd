package isolated

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/proctest"
)

// wantNoFiles checks that dir (a Config.SocketDir) is empty.
func wantNoFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in the socket folder: %s", e.Name())
	}
}

// openFDs lists this process's descriptors and what they point at.
func openFDs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the descriptor ReadDir itself used
		}
		out = append(out, e.Name()+" -> "+target)
	}
	slices.Sort(out)
	return out
}

// children lists the pids whose parent is this process.
func children() []int {
	var out []int
	for _, c := range proctest.Children() {
		out = append(out, c.PID)
	}
	return out
}

// TestNothingLeftBehind runs a clean life, a crash, a hang, a crash in
// the operator's drop and a failed handshake: afterwards the test
// process has the descriptors it had before, no child (no zombie), and
// the socket folder is empty.
func TestNothingLeftBehind(t *testing.T) {
	dir := socketDir(t)
	l := newTestLoader(t, func(c *Config) { c.SocketDir = dir; c.Restarts = -1 })
	// Warm up what is created once per process (the spawner thread, the
	// netpoller, the C fixture's build).
	misbehaving(t, l, "warm-up").Close()
	before := openFDs(t)
	kids := children()

	scenarios := map[string]func(t *testing.T) int{
		"clean": func(t *testing.T) int {
			op := misbehaving(t, l, "clean")
			echoes(t, op, "big", make([]byte, 1<<20))
			echoes(t, op, "burst-free", []byte("x"))
			pid := op.pid()
			if err := op.Close(); err != nil {
				t.Error(err)
			}
			return pid
		},
		"segv": func(t *testing.T) int {
			op := misbehaving(t, l, "segv")
			pid := op.pid()
			send(t, op, "segv", nil)
			op.Close()
			return pid
		},
		"hang": func(t *testing.T) int {
			op := misbehaving(t, l, "hang")
			pid := op.pid()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			op.OnEvent(ctx, nilInput("hang"), discard{})
			op.Close()
			return pid
		},
		"drop": func(t *testing.T) int {
			op := misbehaving(t, l, "drop")
			pid := op.pid()
			echoes(t, op, "segv_on_drop", nil)
			op.Close()
			return pid
		},
		"mock exit": func(t *testing.T) int {
			op := load(t, l, mockSpec("exit", "mock:exit-on-1"))
			pid := op.pid()
			send(t, op, "x", nil)
			op.Close()
			return pid
		},
		"handshake": func(t *testing.T) int {
			bad := New(childLoaders(), helperConfig("garbage", dir))
			if _, err := bad.Load(ctxFor(t, 30*time.Second), mockSpec("x", "mock:echo")); err == nil {
				t.Error("Load succeeded")
			}
			return 0
		},
	}
	for name, run := range scenarios {
		t.Run(name, func(t *testing.T) {
			pid := run(t)
			if pid != 0 && !reaped(pid) {
				t.Errorf("child %d is still there (a zombie?)", pid)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for after := openFDs(t); !slices.Equal(before, after); after = openFDs(t) {
		if time.Now().After(deadline) {
			t.Errorf("descriptors before:\n\t%s\nafter:\n\t%s", strings.Join(before, "\n\t"), strings.Join(after, "\n\t"))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := children(); !slices.Equal(got, kids) {
		t.Errorf("children %v, want %v", got, kids)
	}
	wantNoFiles(t, dir)
}

// TestChildDiesWithItsHost SIGKILLs a host (the test binary as a runtime
// node) with an isolated operator: the operator host dies too, and the
// socket folder is empty (the socket is removed once connected).
func TestChildDiesWithItsHost(t *testing.T) {
	dir := socketDir(t)
	host := exec.Command(os.Args[0])
	host.Env = append(os.Environ(), envChild+"=host", "DORA_ISOLATED_TEST_SOCKETS="+dir,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer host.Process.Kill()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var pid int
	select {
	case s := <-line:
		if pid, err = strconv.Atoi(s); err != nil || pid <= 0 {
			t.Fatalf("host printed %q, want the operator host's pid", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the host did not load its operator within 30s")
	}
	if gone(pid) {
		t.Fatalf("operator host %d is not running", pid)
	}
	host.Process.Signal(syscall.SIGKILL)
	host.Wait()
	eventually(t, fmt.Sprintf("operator host %d dies with its host", pid), func() bool { return gone(pid) })
	wantNoFiles(t, dir)
}
