package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/transport/natstransport"
)

// TestThreeDaemonsExchangeMessages runs a dataflow over three daemons of
// one machine, with messages in both directions and, through a NATS
// server left at its default max payload (1 MiB), 4096000-byte messages
// that cross in chunks.
func TestThreeDaemonsExchangeMessages(t *testing.T) {
	c := newCluster(t, "--nats-max-payload", "1048576")
	for _, m := range []string{"A", "B", "C"} {
		c.startDaemon(m, "", c.daemonAddr)
	}
	c.waitDaemons(3)
	file := writeDataflow(t, `
nodes:
  - id: big
    path: TESTNODE
    args: source 20 4096000
    inputs: {tick: dora/timer/millis/10}
    outputs: [data]
    _unstable_deploy: {machine: A}
  - id: small
    path: TESTNODE
    args: source 50 8
    inputs: {tick: dora/timer/millis/5}
    outputs: [data]
    deploy: {machine: C}
  - id: sink-b
    path: TESTNODE
    args: sink 20
    inputs: {data: {source: big/data, queue_size: 100}}
    deploy: {machine: B}
  - id: sink-c
    path: TESTNODE
    args: sink 20
    inputs: {data: {source: big/data, queue_size: 100}}
    deploy: {machine: C}
  - id: sink-a
    path: TESTNODE
    args: sink 50
    inputs: {data: {source: small/data, queue_size: 100}}
    deploy: {machine: A}
`)
	r := c.must("start", file, "--attach", "--name", "three")
	wantContains(t, "attached output", r.stdout+r.stderr,
		"sink-b: received 20 messages, last 19", "sink-b: closed data",
		"sink-c: received 20 messages, last 19", "sink-c: closed data",
		"sink-a: received 50 messages, last 49", "sink-a: closed data",
		"finished: 5 nodes succeeded")
	uuid := strings.TrimSpace(strings.Split(r.stdout, "\n")[0])
	list := c.must("list")
	if f := row(list, "three"); f == nil || f[0] != uuid || f[2] != "succeeded" || f[3] != "0/5" || f[4] != "A,B,C" {
		t.Errorf("dora list row %q; want %s three succeeded 0/5 A,B,C:\n%s", f, uuid, list.stdout)
	}
	for _, sink := range []string{"sink-a", "sink-b", "sink-c"} {
		logs := c.must("logs", uuid, sink)
		wantContains(t, "dora logs "+sink, logs.stdout, "closed data", "received")
	}
}

// longFlow keeps running until stopped: a source on A, a sink on B.
var longFlow = longFlowOn("deploy: {machine: A}", "deploy: {machine: B}")

func longFlowOn(deploySource, deploySink string) string {
	return `
nodes:
  - id: source
    path: TESTNODE
    args: source 1000000 100
    inputs: {tick: dora/timer/millis/5}
    outputs: [data]
    ` + deploySource + `
  - id: sink
    path: TALLY
    args: "1"
    inputs: {data: source/data}
    ` + deploySink + `
`
}

func TestListStopAndLogsAcrossTwoDaemons(t *testing.T) {
	c := newCluster(t)
	c.startDaemon("A", "", c.daemonAddr)
	c.startDaemon("B", "", c.daemonAddr)
	c.waitDaemons(2)
	file := writeDataflow(t, longFlow)
	uuid := strings.TrimSpace(c.must("start", file, "--name", "flow").stdout)
	if len(uuid) != 36 {
		t.Fatalf("dora start printed %q, not a UUID", uuid)
	}
	list := c.must("list")
	if f := row(list, "flow"); f == nil || f[0] != uuid || f[2] != "running" || f[3] != "2/2" || f[4] != "A,B" {
		t.Fatalf("dora list row %q; want %s flow running 2/2 A,B:\n%s", f, uuid, list.stdout)
	}
	firstTally(c, uuid) // messages cross before anything is stopped
	// A second dataflow at the same time, by UUID prefix later.
	other := strings.TrimSpace(c.must("start", file).stdout)
	follow := start(t, "dora logs --follow", "", nil, "logs", "flow", "sink", "--follow", "--coordinator-addr", c.ctrl)
	if r := c.cli("logs", "flow", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, `has no node "nosuch"`) {
		t.Errorf("logs of an unknown node: exit %d, %s", r.code, r.stderr)
	}
	if r := c.cli("stop"); r.code != 1 || !strings.Contains(r.stderr, "2 dataflows are running") {
		t.Errorf("stop without a name with two running: exit %d, %s", r.code, r.stderr)
	}

	stop := c.must("stop", "--name", "flow", "--grace", "5s")
	wantContains(t, "dora stop", stop.stderr, "finished: 2 nodes succeeded (stopped by `dora stop`)")
	follow.wait(t, 15*time.Second)
	if follow.exitCode() != 0 || !strings.Contains(follow.out.String(), "received ") {
		t.Errorf("dora logs --follow: exit %d, output:\n%s", follow.exitCode(), follow.out.String())
	}
	list = c.must("list")
	if f := row(list, "flow"); f == nil || f[2] != "succeeded" || f[3] != "0/2" || !strings.Contains(list.stdout, "stopped by `dora stop`") {
		t.Errorf("after stop, row %q:\n%s", f, list.stdout)
	}
	if f := row(list, other); f == nil || f[2] != "running" {
		t.Errorf("the other dataflow is not running any more:\n%s", list.stdout)
	}
	c.must("stop", other[:8], "--grace", "5s")
	if logs := c.must("logs", other[:8], "sink"); !strings.Contains(logs.stdout, "received ") {
		t.Errorf("logs of an ended dataflow:\n%s", logs.stdout)
	}
}

func TestStartRefusesWhatCannotRun(t *testing.T) {
	c := newCluster(t)
	c.startDaemon("A", "", c.daemonAddr)
	c.waitDaemons(1)
	tests := []struct {
		name, yml string
		want      string
	}{
		{"missing machine", `
nodes:
  - id: lonely
    path: TESTNODE
    args: sleep
    deploy: {machine: Z}
`, `node "lonely" is placed on machine "Z" (deploy.machine) but no daemon with that machine id is connected (connected daemons: A)`},
		{"relative path on another machine without working_dir", `
nodes:
  - id: far
    path: bin/node
    deploy: {machine: A, local: false}
`, "set deploy.working_dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.cli("start", writeDataflow(t, tt.yml))
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant it to contain %q", r.code, r.stderr, tt.want)
			}
		})
	}
	file := writeDataflow(t, `
nodes:
  - id: idle
    path: TESTNODE
    args: sink 0
    inputs: {tick: dora/timer/secs/1}
`)
	c.must("start", file, "--name", "dup")
	if r := c.cli("start", file, "--name", "dup"); r.code != 1 || !strings.Contains(r.stderr, `a dataflow named "dup" is already running`) {
		t.Errorf("a second dataflow with the same name: exit %d, %s", r.code, r.stderr)
	}
}

func TestUpIsIdempotentAndDestroyStopsEverything(t *testing.T) {
	state := t.TempDir()
	env := []string{"XDG_STATE_HOME=" + state}
	free := freePorts(t, 3)
	ports := []string{"--control-port", fmt.Sprint(free[0]), "--port", fmt.Sprint(free[1]), "--nats-port", fmt.Sprint(free[2])}
	c := &cluster{t: t, env: env, ctrl: "127.0.0.1:" + ports[1]}
	up := func() result {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := command(ctx, "", env, append([]string{"up"}, ports...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dora up: %v\n%s", err, out)
		}
		return result{stderr: string(out)}
	}
	first := up()
	pids := pidsIn(first.stderr)
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	wantContains(t, "first dora up", first.stderr, "started a coordinator (pid", "started a daemon (pid", filepath.Join(state, "dora", "coordinator.log"))
	if len(pids) != 2 {
		t.Fatalf("want two pids in:\n%s", first.stderr)
	}
	second := up()
	wantContains(t, "second dora up", second.stderr, "a coordinator already runs at", "a daemon with machine id (default) is already connected")
	if strings.Contains(second.stderr, "started") {
		t.Errorf("the second dora up started something:\n%s", second.stderr)
	}
	c.must("start", writeDataflow(t, longFlowOn("", ""))) // on the default daemon
	d := c.must("destroy", "--grace", "5s")
	wantContains(t, "dora destroy", d.stderr, "destroyed: stopped 1 dataflow, 1 daemon and the coordinator")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if ctx.Err() != nil {
				t.Fatalf("process %d still runs after dora destroy", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if r := c.cli("list"); r.code != 1 || !strings.Contains(r.stderr, "run `dora up` first") {
		t.Errorf("dora list after destroy: exit %d, %s", r.code, r.stderr)
	}
}

// pidsIn finds the "(pid N" mentions of dora up.
func pidsIn(s string) []int {
	var pids []int
	for _, part := range strings.Split(s, "(pid ")[1:] {
		var pid int
		if _, err := fmt.Sscanf(part, "%d", &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestExternalNATS: with --nats-url the coordinator embeds no server and
// the daemons use the one named, here at NATS's default max payload.
func TestExternalNATS(t *testing.T) {
	srv, err := natstransport.StartServer(natstransport.ServerOptions{Host: "127.0.0.1", MaxPayload: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	c := newCluster(t, "--nats-url", srv.URL())
	c.startDaemon("A", "", c.daemonAddr)
	c.startDaemon("B", "", c.daemonAddr)
	c.waitDaemons(2)
	if out := c.coordinator.out.String(); !strings.Contains(out, "messages between machines: "+srv.URL()) {
		t.Errorf("the coordinator does not say it uses %s:\n%s", srv.URL(), out)
	}
	r := c.must("start", writeDataflow(t, `
nodes:
  - id: source
    path: TESTNODE
    args: source 10 4096000
    inputs: {tick: dora/timer/millis/10}
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: TESTNODE
    args: sink 10
    inputs: {data: {source: source/data, queue_size: 100}}
    deploy: {machine: B}
`), "--attach")
	wantContains(t, "attached output", r.stdout+r.stderr, "sink: received 10 messages, last 9", "finished: 2 nodes succeeded")
}
