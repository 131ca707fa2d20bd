package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledDaemonFailsTheDataflow kills a daemon mid-run: the dataflow
// fails naming the lost machine, and the other daemon stops its nodes.
func TestKilledDaemonFailsTheDataflow(t *testing.T) {
	c := newCluster(t)
	a := c.startDaemon("A", "", c.daemonAddr)
	b := c.startDaemon("B", "", c.daemonAddr)
	c.waitDaemons(2)
	attached := c.attach(writeDataflow(t, longFlow), "--name", "victim")
	c.waitFor("the dataflow to run", func(r result) bool {
		f := row(r, "victim")
		return f != nil && f[2] == "running"
	})
	b.kill(syscall.SIGKILL)
	attached.wait(t, 20*time.Second)
	out := attached.out.String()
	if attached.exitCode() != 1 {
		t.Errorf("dora start --attach: exit %d, want 1", attached.exitCode())
	}
	wantContains(t, "attached output", out,
		"stop reason: lost the daemon of machine B: its connection closed",
		`node "sink" failed: lost with the daemon of machine B`)
	if strings.Contains(out, `node "source" failed`) {
		t.Errorf("the source on A was stopped, not failed:\n%s", out)
	}
	if kids := a.children(); len(kids) != 0 {
		t.Errorf("daemon A still has children %v", kids)
	}
	list := c.must("list")
	if f := row(list, "victim"); f == nil || f[2] != "failed" || !strings.Contains(list.stdout, "lost the daemon of machine B") {
		t.Errorf("dora list:\n%s", list.stdout)
	}
}

// TestSilentDaemonIsDropped freezes a daemon: after the heartbeat timeout
// the coordinator drops it and fails its dataflows; once thawed, it
// registers again and stops its leftover nodes.
func TestSilentDaemonIsDropped(t *testing.T) {
	c := newCluster(t, "--heartbeat-timeout", "1s")
	c.startDaemon("A", "", c.daemonAddr)
	b := c.startDaemon("B", "", c.daemonAddr)
	c.waitDaemons(2)
	attached := c.attach(writeDataflow(t, longFlow), "--name", "frozen")
	c.waitFor("the dataflow to run", func(r result) bool {
		f := row(r, "frozen")
		return f != nil && f[2] == "running"
	})
	b.kill(syscall.SIGSTOP)
	attached.wait(t, 20*time.Second)
	wantContains(t, "attached output", attached.out.String(), "stop reason: lost the daemon of machine B: no heartbeat for 1s")
	b.kill(syscall.SIGCONT)
	c.waitDaemons(2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(b.children()) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("daemon B kept its nodes %v after registering again", b.children())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tallyFlow sends a numbered message every millisecond from A to a sink
// on B that prints every 50th number.
const tallyFlow = `
nodes:
  - id: source
    path: TESTNODE
    args: source 100000000 100
    inputs: {tick: dora/timer/millis/1}
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: TALLY
    args: "50"
    inputs: {data: {source: source/data, queue_size: 1000}}
    deploy: {machine: B}
`

// twoMachines starts a coordinator with extra flags on fixed free ports,
// and daemons A and B, every process with env.
func twoMachines(t *testing.T, env []string, extra ...string) (*cluster, coordOpts) {
	c := &cluster{t: t, env: env, daemons: make(map[string]*proc)}
	free := freePorts(t, 3)
	o := coordOpts{controlPort: free[0], port: free[1], nats: free[2], extra: extra}
	c.startCoordinator(o)
	c.startDaemon("A", "", c.daemonAddr)
	c.startDaemon("B", "", c.daemonAddr)
	c.waitDaemons(2)
	return c, o
}

// firstTally waits until the tally sink has printed a number, and
// returns the highest.
func firstTally(c *cluster, uuid string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if n := lastTally(c, uuid); n >= 0 {
			return n
		}
		select {
		case <-ctx.Done():
			c.t.Fatal("the sink printed nothing")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lastTally is the highest number the tally sink printed.
func lastTally(c *cluster, uuid string) int {
	r := c.cli("logs", uuid, "sink")
	last := -1
	for _, line := range strings.Split(r.stdout, "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "tally %d", &n); err == nil && n > last {
			last = n
		}
	}
	return last
}

// TestCoordinatorRestart kills the coordinator under a running dataflow:
// the daemons keep it running, reconnect with backoff, and the restarted
// coordinator lists it, stops it, and gets its logs; messages between the
// machines flow again through the new NATS server.
func TestCoordinatorRestart(t *testing.T) {
	c, o := twoMachines(t, nil)
	uuid := strings.TrimSpace(c.must("start", writeDataflow(t, tallyFlow), "--name", "survivor").stdout)
	before := firstTally(c, uuid)

	c.coordinator.kill(syscall.SIGKILL)
	c.coordinator.wait(t, 10*time.Second)
	if r := c.cli("list"); r.code != 1 || !strings.Contains(r.stderr, "no coordinator at") {
		t.Fatalf("dora list without coordinator: exit %d, %s", r.code, r.stderr)
	}
	c.startCoordinator(o)
	list := c.waitFor("the daemons to report the dataflow", func(r result) bool {
		f := row(r, "survivor")
		return f != nil && f[0] == uuid && f[2] == "running" && f[3] == "2/2" && f[4] == "A,B"
	})
	_ = list
	// The source numbers its messages once a millisecond: a number a
	// thousand past the last one seen before the kill was sent after it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for lastTally(c, uuid) < before+1000 {
		select {
		case <-ctx.Done():
			t.Fatalf("no message crossed after the restart (last before it: %d, now: %d)", before, lastTally(c, uuid))
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop := c.must("stop", "--name", "survivor", "--grace", "5s")
	wantContains(t, "dora stop", stop.stderr, "finished: 2 nodes succeeded (stopped by `dora stop`)")
	// Whether a message was in flight when the NATS server died is a race,
	// so losses may be zero; what must hold is that every index the sink
	// missed is one the daemons reported.
	got, missed := tallied(t, c.must("logs", uuid, "sink").stdout)
	t.Logf("the sink received %d messages and missed %d", got, missed)
	if reported := reportedMissing(stop.stderr); reported != missed {
		t.Errorf("the sink missed %d messages but the daemons reported %d:\n%s", missed, reported, stop.stderr)
	}
}

// tallied is what the tally sink received and missed, from its output.
func tallied(t *testing.T, out string) (got, missed uint64) {
	t.Helper()
	_, final, _ := strings.Cut(out, "received ")
	if _, err := fmt.Sscanf(final, "%d missed %d", &got, &missed); err != nil {
		t.Fatalf("the sink's final count is missing (%v):\n%s", err, out)
	}
	return got, missed
}

// reportedMissing adds up the messages a run summary says were dropped or
// lost on their way to a node or to another machine.
func reportedMissing(summary string) uint64 {
	var total uint64
	for _, line := range strings.Split(summary, "\n") {
		var node, port string
		var n uint64
		for _, format := range []string{
			"node %q input %q dropped %d messages",
			"node %q input %q lost %d messages",
			"node %q output %q dropped %d messages",
		} {
			if _, err := fmt.Sscanf(strings.TrimSpace(line), format, &node, &port, &n); err == nil {
				total += n
			}
		}
	}
	return total
}

// TestCLIAgainstDeadCoordinator: nothing listening, or something that
// never answers the handshake: a clear error within two seconds.
func TestCLIAgainstDeadCoordinator(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accept, never answer
		}
	}()
	tests := []struct{ name, addr string }{
		{"nothing listens", "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])},
		{"never answers", silent.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cluster{t: t, ctrl: tt.addr}
			for _, cmd := range [][]string{{"list"}, {"stop", "x"}, {"logs", "x", "y"}, {"destroy"}} {
				r := c.cli(cmd...)
				if r.code != 1 || !strings.Contains(r.stderr, "no coordinator at "+tt.addr+": run `dora up` first") {
					t.Errorf("dora %s: exit %d, %s", cmd[0], r.code, r.stderr)
				}
				if r.took > 2*time.Second {
					t.Errorf("dora %s took %s to give up", cmd[0], r.took)
				}
			}
		})
	}
}

// TestTokenAndGarbage: with a token, peers without it are refused with a
// clear message, and garbage on either port crashes nothing.
func TestTokenAndGarbage(t *testing.T) {
	c := &cluster{t: t, env: []string{"DORA_TOKEN=s3cret"}, daemons: make(map[string]*proc)}
	c.startCoordinator(coordOpts{})
	c.startDaemon("A", "", c.daemonAddr)
	c.waitDaemons(1)

	intruder := &cluster{t: t, ctrl: c.ctrl, env: []string{"DORA_TOKEN=guess"}}
	if r := intruder.cli("list"); r.code != 1 || !strings.Contains(r.stderr, "refused the token") {
		t.Errorf("CLI with a wrong token: exit %d, %s", r.code, r.stderr)
	}
	d := start(t, "daemon with a wrong token", "", []string{"DORA_TOKEN=guess"}, "daemon", "--machine-id", "X", "--coordinator-addr", c.daemonAddr)
	d.wait(t, 10*time.Second)
	if d.exitCode() != 1 || !strings.Contains(d.out.String(), "wrong or missing token") {
		t.Errorf("daemon with a wrong token: exit %d, %s", d.exitCode(), d.out.String())
	}
	onDaemonPort := &cluster{t: t, ctrl: c.daemonAddr, env: c.env}
	if r := onDaemonPort.cli("list"); r.code != 1 || !strings.Contains(r.stderr, "is the coordinator's daemon port") {
		t.Errorf("CLI on the daemon port: exit %d, %s", r.code, r.stderr)
	}
	hello := func(role byte) []byte { return []byte("DORA\x01\x00" + string(role) + "\x00\x06\x00s3cret") }
	for _, p := range []struct {
		addr string
		role byte
		own  byte // a kind this role may send
	}{{c.ctrl, 1, 3}, {c.daemonAddr, 2, 64}} {
		garbage := [][]byte{
			[]byte("GET / HTTP/1.1\r\n\r\n"),
			append(hello(p.role), 0xff, 0xff, 0xff, 0x7f, p.own), // oversize frame
			append(hello(p.role), 3, 0, 0, 0, p.own, '{', 'x'),   // bad JSON
			append(hello(p.role), 1, 0, 0, 0, 99),                // a kind of the other direction
			append(hello(p.role), 5, 0, 0, 0, p.own, '{', '}'),   // truncated
		}
		for _, g := range garbage {
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write(g)
			conn.(*net.TCPConn).CloseWrite()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := conn.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("the coordinator kept a connection that sent %q", g)
					}
					break
				}
			}
			conn.Close()
		}
	}
	c.waitDaemons(1)
	if r := c.must("list"); !strings.Contains(r.stderr, "1 daemon connected: A") {
		t.Errorf("after garbage: %s", r.stderr)
	}
}

// TestStoppedDaemonStopsItsDataflows: SIGTERM on a daemon stops its nodes
// gracefully, stops the dataflow on the other machines, and reports the
// results before the daemon exits.
func TestStoppedDaemonStopsItsDataflows(t *testing.T) {
	c := newCluster(t)
	c.startDaemon("A", "", c.daemonAddr)
	b := c.startDaemon("B", "", c.daemonAddr)
	c.waitDaemons(2)
	attached := c.attach(writeDataflow(t, tallyFlow), "--name", "polite")
	list := c.waitFor("the dataflow to run", func(r result) bool {
		f := row(r, "polite")
		return f != nil && f[2] == "running"
	})
	firstTally(c, row(list, "polite")[0]) // messages cross before B stops
	b.kill(syscall.SIGTERM)
	attached.wait(t, 20*time.Second)
	b.wait(t, 20*time.Second)
	out := attached.out.String()
	if attached.exitCode() != 0 || b.exitCode() != 0 {
		t.Errorf("exit codes: attached CLI %d, daemon B %d; want 0, 0", attached.exitCode(), b.exitCode())
	}
	wantContains(t, "attached output", out, "finished: 2 nodes succeeded (machine B: interrupted)")
}
