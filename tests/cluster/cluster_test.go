// Package cluster holds the black-box tests of dora's distributed mode:
// a coordinator and several daemons as separate processes of bin/dora,
// driven through the CLI, on one machine or across network namespaces.
package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/syncbuf"
)

// Built once per test binary.
var (
	doraBin  string
	testnode string
	tally    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dora-cluster-test")
	if err != nil {
		panic(err)
	}
	doraBin, testnode, tally = filepath.Join(dir, "dora"), filepath.Join(dir, "testnode"), filepath.Join(dir, "tally")
	for _, b := range []struct{ out, pkg string }{
		{doraBin, "../../cmd/dora"},
		{testnode, "../../daemon/testdata/testnode"},
		{tally, "./testdata/tally"},
	} {
		build := exec.Command("go", "build", "-o", b.out, b.pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a background dora process (coordinator, daemon, attached CLI).
type proc struct {
	name string
	cmd  *exec.Cmd
	out  syncbuf.Buffer
	done chan struct{}
	err  error
}

// command runs bin/dora, inside network namespace ns unless it is empty.
func command(ctx context.Context, ns string, env []string, args ...string) *exec.Cmd {
	var c *exec.Cmd
	if ns == "" {
		c = exec.CommandContext(ctx, doraBin, args...)
	} else {
		c = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, doraBin}, args...)...)
	}
	c.Env = append(os.Environ(), env...)
	return c
}

// start runs a background process killed (by its pid) when the test ends;
// its output is shown if the test failed.
func start(t *testing.T, name, ns string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = command(context.Background(), ns, env, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s (%s):\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit, at most d.
func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s still runs after %s; output:\n%s", p.name, d, p.out.String())
	}
}

func (p *proc) exitCode() int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// children lists the pids of p's child processes (a daemon's nodes).
func (p *proc) children() []int {
	pid := p.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// result of one CLI command.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// cluster is a coordinator and its daemons, reachable from the CLI.
type cluster struct {
	t *testing.T
	// ns is the CLI's network namespace; empty: the test's own.
	ns          string
	ctrl        string // the coordinator's control address, for the CLI
	daemonAddr  string // the coordinator's daemon address, for daemons
	env         []string
	coordinator *proc
	daemons     map[string]*proc
}

// coordOpts place a coordinator.
type coordOpts struct {
	ns                      string // namespace; empty: the test's own
	bind                    string // interface; empty: 127.0.0.1
	controlPort, port, nats int
	extra                   []string
}

// freePorts are n distinct ports free a moment ago, for a coordinator that
// must come back on the same ports. Others let the coordinator pick
// (port 0), which nothing else can take first.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// newCluster starts a coordinator on ports of 127.0.0.1 it picks.
func newCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, daemons: make(map[string]*proc)}
	c.startCoordinator(coordOpts{extra: extra})
	return c
}

// listening is the line where the coordinator says its addresses.
var listening = regexp.MustCompile(`coordinator listening: CLI on (\S+):(\d+), daemons on (\S+):(\d+),`)

// startCoordinator starts a coordinator and waits until it listens; the
// CLI and daemons then reach it on 127.0.0.1 (tests in namespaces set
// ctrl and daemonAddr themselves).
func (c *cluster) startCoordinator(o coordOpts) {
	c.t.Helper()
	bind := o.bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	args := []string{"coordinator", "--interface", bind, "--control-interface", bind,
		"--control-port", strconv.Itoa(o.controlPort), "--port", strconv.Itoa(o.port), "--nats-port", strconv.Itoa(o.nats)}
	c.coordinator = start(c.t, "coordinator", o.ns, c.env, append(args, o.extra...)...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := listening.FindStringSubmatch(c.coordinator.out.String()); m != nil {
			c.ctrl, c.daemonAddr = "127.0.0.1:"+m[2], "127.0.0.1:"+m[4]
			return
		}
		select {
		case <-c.coordinator.done:
			c.t.Fatalf("the coordinator exited: %v\n%s", c.coordinator.err, c.coordinator.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the coordinator does not say it listens:\n%s", c.coordinator.out.String())
		}
	}
}

// daemonAddr is the coordinator's daemon port as a daemon reaches it.
func (c *cluster) startDaemon(machine, ns, coordinator string, extra ...string) *proc {
	args := append([]string{"daemon", "--machine-id", machine, "--coordinator-addr", coordinator}, extra...)
	p := start(c.t, "daemon "+machine, ns, c.env, args...)
	c.daemons[machine] = p
	return p
}

// cli runs one CLI command against the cluster, bounded by a minute.
func (c *cluster) cli(args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.cliCtx(ctx, args...)
}

func (c *cluster) cliCtx(ctx context.Context, args ...string) result {
	cmd := command(ctx, c.ns, c.env, append(args, "--coordinator-addr", c.ctrl)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	begin := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), took: time.Since(begin)}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	} else {
		r.code, r.stderr = -1, r.stderr+err.Error()
	}
	return r
}

// must runs a CLI command that has to succeed.
func (c *cluster) must(args ...string) result {
	c.t.Helper()
	r := c.cli(args...)
	if r.code != 0 {
		c.t.Fatalf("dora %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// attach starts `dora start --attach` in the background.
func (c *cluster) attach(file string, extra ...string) *proc {
	c.t.Helper()
	args := append([]string{"start", file, "--attach", "--coordinator-addr", c.ctrl}, extra...)
	return start(c.t, "dora start --attach", c.ns, c.env, args...)
}

// waitFor polls `dora list` until ok accepts it, for at most 20s.
func (c *cluster) waitFor(what string, ok func(list result) bool) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		r := c.cliCtx(ctx, "list")
		if r.code == 0 && ok(r) {
			return r
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("waiting for %s: %v; last `dora list`:\n%s%s", what, ctx.Err(), r.stdout, r.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitDaemons waits until n daemons are registered.
func (c *cluster) waitDaemons(n int) {
	c.t.Helper()
	want := fmt.Sprintf("%d daemon", n)
	c.waitFor(want+"s", func(r result) bool { return strings.Contains(r.stderr, want) })
}

// writeDataflow writes a dataflow into a new folder; TESTNODE names the
// test node binary.
func writeDataflow(t *testing.T, yml string) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "dataflow.yml")
	yml = strings.NewReplacer("TESTNODE", testnode, "TALLY", tally).Replace(yml)
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// row is the `dora list` line of a dataflow, split in columns.
func row(list result, ref string) []string {
	for _, line := range strings.Split(list.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && (f[0] == ref || f[1] == ref) {
			return f
		}
	}
	return nil
}

// wantContains fails unless s holds every one of subs.
func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}
