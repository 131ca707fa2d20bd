package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/control"
)

// start runs a coordinator on free ports for the test.
func start(t *testing.T, cfg Config) *Coordinator {
	t.Helper()
	cfg.ControlAddr, cfg.DaemonAddr = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeDaemon speaks the daemon side of the protocol by hand.
type fakeDaemon struct {
	t    *testing.T
	conn *control.Conn
}

func register(t *testing.T, c *Coordinator, machine string, running ...control.RunningDataflow) (*fakeDaemon, control.RegisterReply) {
	t.Helper()
	conn, err := control.Dial(context.Background(), c.DaemonAddr(), control.RoleDaemon, control.Credentials{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d := &fakeDaemon{t: t, conn: conn}
	d.send(control.KindRegister, control.Register{MachineID: machine, Dataflows: running})
	var rep control.RegisterReply
	d.expect(control.KindRegisterReply, &rep)
	return d, rep
}

func (d *fakeDaemon) send(k control.Kind, v any) {
	d.t.Helper()
	if err := d.conn.Send(k, v); err != nil {
		d.t.Fatal(err)
	}
}

// expect reads frames, skipping PINGs, until one of kind k.
func (d *fakeDaemon) expect(k control.Kind, v any) {
	d.t.Helper()
	for {
		d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, body, err := d.conn.Recv()
		if err != nil {
			d.t.Fatalf("waiting for %s: %v", k, err)
		}
		if got == control.KindPing {
			continue
		}
		if got != k {
			d.t.Fatalf("got %s (%s), want %s", got, body, k)
		}
		if err := control.Decode(got, body, v); err != nil {
			d.t.Fatal(err)
		}
		return
	}
}

// request sends one CLI request.
func request(t *testing.T, c *Coordinator, k control.Kind, v any) *control.Conn {
	t.Helper()
	conn, err := control.Dial(context.Background(), c.ControlAddr(), control.RoleCLI, control.Credentials{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Send(k, v); err != nil {
		t.Fatal(err)
	}
	return conn
}

func answer(t *testing.T, conn *control.Conn, k control.Kind, v any) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, body, err := conn.Recv()
	if err != nil {
		t.Fatalf("waiting for %s: %v", k, err)
	}
	if got != k {
		t.Fatalf("got %s (%s), want %s", got, body, k)
	}
	if err := control.Decode(got, body, v); err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, c *Coordinator) control.ListReply {
	t.Helper()
	var rep control.ListReply
	answer(t, request(t, c, control.KindList, nil), control.KindListReply, &rep)
	return rep
}

const twoMachines = `
nodes:
  - id: source
    path: /bin/true
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: /bin/true
    inputs: {data: source/data}
    deploy: {machine: B}
`

func startReq(yml string) control.StartRequest {
	return control.StartRequest{File: "/tmp/df/dataflow.yml", YAML: []byte(yml), Name: "two", Attach: true}
}

// TestStartBarrierAndResult walks one dataflow through SPAWN, the
// barrier, output forwarding and the merged result.
func TestStartBarrierAndResult(t *testing.T) {
	c := start(t, Config{})
	a, rep := register(t, c, "A")
	if rep.Error != "" || rep.NATSPort == 0 || rep.HeartbeatTimeout != DefaultHeartbeatTimeout {
		t.Fatalf("REGISTER_REPLY %+v", rep)
	}
	b, _ := register(t, c, "B")
	cli := request(t, c, control.KindStart, startReq(twoMachines))
	var spA, spB control.Spawn
	a.expect(control.KindSpawn, &spA)
	b.expect(control.KindSpawn, &spB)
	if fmt.Sprint(spA.Nodes, spB.Nodes, spA.Machines) != "[source] [sink] [A B]" || spA.UUID != spB.UUID || !spA.ForwardOutput {
		t.Fatalf("SPAWN A %+v, B %+v", spA, spB)
	}
	a.send(control.KindReady, control.DataflowRef{UUID: spA.UUID})
	if d := list(t, c).Dataflows; len(d) != 1 || d[0].Status != control.StatusStarting {
		t.Fatalf("before B is ready: %+v", d)
	}
	b.send(control.KindReady, control.DataflowRef{UUID: spA.UUID})
	var ref control.DataflowRef
	a.expect(control.KindAllNodesReady, &ref)
	b.expect(control.KindAllNodesReady, &ref)
	var st control.Started
	answer(t, cli, control.KindStarted, &st)
	if st.UUID != spA.UUID || fmt.Sprint(st.Machines) != "[A B]" {
		t.Fatalf("STARTED %+v", st)
	}
	b.send(control.KindNodeOutput, control.Output{UUID: st.UUID, Data: []byte("sink: hello\n")})
	var out control.Output
	answer(t, cli, control.KindOutput, &out)
	if string(out.Data) != "sink: hello\n" {
		t.Fatalf("OUTPUT %q", out.Data)
	}
	a.send(control.KindNodeExited, control.NodeExited{UUID: st.UUID, Node: "source"})
	a.send(control.KindFinished, control.Finished{Result: control.Result{UUID: st.UUID, Nodes: []control.NodeResult{{ID: "source"}}}})
	if d := list(t, c).Dataflows; d[0].Running != 1 || d[0].Total != 2 {
		t.Fatalf("after A finished: %+v", d)
	}
	b.send(control.KindFinished, control.Finished{Result: control.Result{UUID: st.UUID, Nodes: []control.NodeResult{{ID: "sink", ExitCode: 3}}}})
	var res control.Result
	answer(t, cli, control.KindResult, &res)
	if len(res.Nodes) != 2 || res.Nodes[0].ID != "sink" || res.Nodes[0].Machine != "B" || !res.Failed() {
		t.Fatalf("RESULT %+v", res)
	}
	if d := list(t, c).Dataflows; d[0].Status != control.StatusFailed {
		t.Fatalf("after the end: %+v", d)
	}
}

func TestStartRefusals(t *testing.T) {
	c := start(t, Config{})
	register(t, c, "A")
	tests := []struct{ name, yml, want string }{
		{"missing machine", twoMachines, `node "sink" is placed on machine "B" (deploy.machine) but no daemon with that machine id is connected (connected daemons: A)`},
		{"invalid", "nodes: 3", "invalid dataflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e control.ErrorReply
			answer(t, request(t, c, control.KindStart, startReq(tt.yml)), control.KindError, &e)
			if !strings.Contains(e.Message, tt.want) {
				t.Fatalf("ERROR %q; want %q", e.Message, tt.want)
			}
		})
	}
	_, rep := register(t, c, "A")
	if !strings.Contains(rep.Error, "a daemon with machine id A is already connected") {
		t.Fatalf("second daemon A: %+v", rep)
	}
}

// TestSilentDaemonFailsItsDataflows: a daemon that stops sending is
// dropped after the heartbeat timeout; the other machine is told to stop.
func TestSilentDaemonFailsItsDataflows(t *testing.T) {
	c := start(t, Config{Heartbeat: 50 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond})
	a, _ := register(t, c, "A")
	b, _ := register(t, c, "B")
	// A keeps talking; B falls silent after READY.
	stopBeat := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopBeat:
				return
			case <-time.After(50 * time.Millisecond):
				a.conn.Send(control.KindHeartbeat, nil)
			}
		}
	}()
	defer func() { close(stopBeat); wg.Wait() }()
	cli := request(t, c, control.KindStart, startReq(twoMachines))
	var sp control.Spawn
	a.expect(control.KindSpawn, &sp)
	b.expect(control.KindSpawn, &sp)
	b.send(control.KindReady, control.DataflowRef{UUID: sp.UUID})
	var st control.StopDataflow
	a.expect(control.KindStopDataflow, &st)
	if !strings.Contains(st.Reason, "lost the daemon of machine B: no heartbeat for 300ms") {
		t.Fatalf("STOP_DATAFLOW %+v", st)
	}
	a.send(control.KindFinished, control.Finished{Result: control.Result{UUID: sp.UUID, Nodes: []control.NodeResult{{ID: "source", ExitCode: -1, Error: "stopped"}}}})
	var res control.Result
	answer(t, cli, control.KindResult, &res)
	if !strings.Contains(res.StopReason, "no heartbeat") {
		t.Fatalf("RESULT %+v", res)
	}
}

// TestReRegisteringDaemonsRebuildTheState: after a coordinator restart,
// daemons report what they run.
func TestReRegisteringDaemonsRebuildTheState(t *testing.T) {
	c := start(t, Config{})
	register(t, c, "A", control.RunningDataflow{UUID: "u-1", Name: "kept", Machines: []string{"A", "B"}, Nodes: []string{"x", "y"}, Running: []string{"x"}, Ready: true})
	b, _ := register(t, c, "B", control.RunningDataflow{UUID: "u-2", Machines: []string{"B"}, Nodes: []string{"z"}, Running: []string{"z"}, Ready: false})
	var st control.StopDataflow
	b.expect(control.KindStopDataflow, &st)
	if st.UUID != "u-2" || !strings.Contains(st.Reason, "restarted while the dataflow was starting") {
		t.Fatalf("STOP_DATAFLOW %+v", st)
	}
	d := list(t, c).Dataflows
	if len(d) != 1 || d[0].UUID != "u-1" || d[0].Name != "kept" || d[0].Status != control.StatusRunning || d[0].Running != 1 || d[0].Total != 2 {
		t.Fatalf("LIST %+v", d)
	}
}

// TestHammer_ConnectionsUnderLoad: CLIs, garbage and daemons at once;
// the loop survives and answers.
func TestHammer_ConnectionsUnderLoad(t *testing.T) {
	c := start(t, Config{})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			conn, err := control.Dial(context.Background(), c.ControlAddr(), control.RoleCLI, control.Credentials{}, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.Send(control.KindList, nil)
			if k, _, err := conn.Recv(); err != nil || k != control.KindListReply {
				t.Errorf("LIST: %s %v", k, err)
			}
		}()
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", c.DaemonAddr())
			if err != nil {
				t.Error(err)
				return
			}
			nc.Write([]byte("DORA\x01\x00\x02\x00\x00\x00\xff\xff\xff\xff"))
			nc.Close()
		}()
		go func() {
			defer wg.Done()
			conn, err := control.Dial(context.Background(), c.DaemonAddr(), control.RoleDaemon, control.Credentials{}, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			conn.Send(control.KindRegister, control.Register{MachineID: fmt.Sprint("m", i)})
			conn.Recv()
			conn.Close()
		}()
	}
	wg.Wait()
	// The daemons left; the loop notices each connection's end.
	deadline := time.Now().Add(10 * time.Second)
	for d := list(t, c).Daemons; len(d) != 0; d = list(t, c).Daemons {
		if time.Now().After(deadline) {
			t.Fatalf("daemons that left are still listed: %+v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
