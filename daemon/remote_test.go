package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/syncbuf"
	"github.com/dora-go/dora/internal/transport"
)

// memTransport carries streams between instances of one test process.
type memTransport struct {
	mu   sync.Mutex
	subs map[transport.Stream][]*memSub
	// lossy drops end markers and every message after the first keep.
	lossy bool
	keep  int
	// delay makes every Publish take this long: a slow link.
	delay time.Duration
	// streams records every stream published or subscribed to.
	streams []string
}

type memSub struct {
	h    transport.Handler
	ch   chan func()
	done chan struct{}
	once sync.Once
}

func newMemTransport() *memTransport {
	return &memTransport{subs: make(map[transport.Stream][]*memSub)}
}

func (t *memTransport) Publisher(s transport.Stream, subscribers int) transport.Publisher {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams = append(t.streams, fmt.Sprintf("publish %s/%s to %d", s.Node, s.Output, subscribers))
	return &memPub{t: t, s: s}
}

func (t *memTransport) Subscribe(s transport.Stream, h transport.Handler) (transport.Subscription, error) {
	sub := &memSub{h: h, ch: make(chan func(), 1<<16), done: make(chan struct{})}
	go func() {
		for {
			select {
			case f := <-sub.ch:
				f()
			case <-sub.done:
				return
			}
		}
	}()
	t.mu.Lock()
	t.subs[s] = append(t.subs[s], sub)
	t.streams = append(t.streams, "subscribe "+s.Node+"/"+s.Output)
	t.mu.Unlock()
	return sub, nil
}

func (t *memTransport) Retarget(string) error { return nil }
func (t *memTransport) Close() error          { return nil }

func (s *memSub) Unsubscribe() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

type memPub struct {
	t    *memTransport
	s    transport.Stream
	sent int
}

func (p *memPub) send(f func(transport.Handler)) {
	p.t.mu.Lock()
	subs := p.t.subs[p.s]
	p.t.mu.Unlock()
	for _, sub := range subs {
		sub.ch <- func() { f(sub.h) }
	}
}

func (p *memPub) Publish(meta, data []byte) error {
	time.Sleep(p.t.delay)
	if p.sent++; p.t.lossy && p.sent > p.t.keep {
		return nil
	}
	meta, data = bytes.Clone(meta), bytes.Clone(data)
	p.send(func(h transport.Handler) { h.Message(meta, data) })
	return nil
}

func (p *memPub) End() error {
	if p.t.lossy {
		return nil
	}
	p.send(func(h transport.Handler) { h.Closed() })
	return nil
}

// fakeCoordinator holds the start barrier and relays stops between the
// instances of one dataflow, as the coordinator would.
type fakeCoordinator struct {
	mu    sync.Mutex
	insts map[string]*instance
	ready map[string]bool
}

type fakeLink struct {
	c       *fakeCoordinator
	machine string
}

func (l fakeLink) ready(string) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready[l.machine] = true
	if len(c.ready) == len(c.insts) {
		for _, inst := range c.insts {
			inst.cl.markReady()
		}
	}
}

func (l fakeLink) askStop(_, reason string) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	for m, inst := range l.c.insts {
		if m != l.machine {
			go inst.stopFromCoordinator(reason, 0)
		}
	}
}

func (fakeLink) nodeExited(string, string) {}

func (l fakeLink) outputClosed(s transport.Stream, sent uint64) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	for m, inst := range l.c.insts {
		if m != l.machine {
			inst.cl.remoteClosed(s, sent)
		}
	}
}

// runMachines runs df split over machines (deploy.machine) in one process.
func runMachines(t *testing.T, yml string) (map[string]*Result, string) {
	return runMachinesOver(t, newMemTransport(), yml)
}

func runMachinesOver(t *testing.T, tr *memTransport, yml string) (map[string]*Result, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "dataflow.yml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(yml, "TESTNODE", testnode)), 0o644); err != nil {
		t.Fatal(err)
	}
	df, err := descriptor.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	placed := make(map[string][]string)
	placement := make(map[string]string)
	for _, n := range df.Nodes {
		placed[n.Deploy.Machine] = append(placed[n.Deploy.Machine], n.ID)
		placement[n.ID] = n.Deploy.Machine
	}
	fdsBefore := openFDs(t)
	coord := &fakeCoordinator{insts: make(map[string]*instance), ready: make(map[string]bool)}
	var out syncbuf.Buffer
	for m, nodes := range placed {
		opts := Options{DataflowID: "df-1", LogDir: filepath.Join(dir, m), Output: &out, Grace: 2 * time.Second}
		opts.fill()
		inst := newInstance(df, opts, newCluster("df-1", nodes, placement, tr, fakeLink{c: coord, machine: m}))
		if err := os.MkdirAll(inst.logDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := inst.cl.subscribe(); err != nil {
			t.Fatal(err)
		}
		coord.insts[m] = inst
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results := make(map[string]*Result)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for m, inst := range coord.insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := inst.run(ctx)
			mu.Lock()
			results[m] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	if after := openFDs(t); after > fdsBefore {
		t.Errorf("the instances leaked %d descriptors", after-fdsBefore)
	}
	return results, out.String()
}

func TestMessagesCrossMachines(t *testing.T) {
	for _, size := range []int{8, 4095, 4096, 40960, 4096000} {
		t.Run(strconv.Itoa(size)+"B", func(t *testing.T) {
			tr := newMemTransport()
			results, out := runMachinesOver(t, tr, `
nodes:
  - id: source
    path: TESTNODE
    args: source 30 `+strconv.Itoa(size)+`
    inputs: {tick: dora/timer/millis/2}
    outputs: [data]
    deploy: {machine: A}
  - id: local-sink
    path: TESTNODE
    args: sink 30
    inputs: {data: {source: source/data, queue_size: 1000}}
    deploy: {machine: A}
  - id: sink-b
    path: TESTNODE
    args: sink 30
    inputs: {data: {source: source/data, queue_size: 1000}}
    deploy: {machine: B}
  - id: sink-c1
    path: TESTNODE
    args: sink 30
    inputs: {data: {source: source/data, queue_size: 1000}}
    deploy: {machine: C}
  - id: sink-c2
    path: TESTNODE
    args: sink 30
    inputs: {data: {source: source/data, queue_size: 1000}}
    deploy: {machine: C}
`)
			for m, res := range results {
				wantSuccess(t, res, out)
				if len(res.Nodes) == 0 {
					t.Errorf("machine %s ran nothing", m)
				}
			}
			for _, sink := range []string{"local-sink", "sink-b", "sink-c1", "sink-c2"} {
				if !strings.Contains(out, sink+": received 30 messages, last 29") || !strings.Contains(out, sink+": closed data") {
					t.Errorf("%s did not get every message and the close:\n%s", sink, out)
				}
			}
			// One publisher, told of the two machines (B and C) it feeds.
			if got := slices.DeleteFunc(slices.Clone(tr.streams), func(s string) bool { return strings.HasPrefix(s, "subscribe") }); !slices.Equal(got, []string{"publish source/data to 2"}) {
				t.Errorf("publishers: %q", got)
			}
		})
	}
}

func TestStartFailureOnOneMachineStopsTheOthers(t *testing.T) {
	results, out := runMachines(t, `
nodes:
  - id: ghost
    path: ./no-such-binary
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: TESTNODE
    args: sink 0
    inputs: {data: ghost/data}
    deploy: {machine: B}
`)
	a, b := results["A"], results["B"]
	if a.Err() == nil || !strings.Contains(a.Err().Error(), "no-such-binary") {
		t.Fatalf("machine A: %v", a.Err())
	}
	if !strings.Contains(b.StopReason, `node "ghost" could not start`) {
		t.Fatalf("machine B stopped for %q; output:\n%s", b.StopReason, out)
	}
}

// TestInputsCloseWhenTheEndMarkerIsLost: the transport loses the tail of
// a stream and its end marker; the coordinator's INPUT_CLOSED still
// closes the input, and the missing messages are counted.
func TestInputsCloseWhenTheEndMarkerIsLost(t *testing.T) {
	tr := newMemTransport()
	tr.lossy, tr.keep = true, 25
	results, out := runMachinesOver(t, tr, `
nodes:
  - id: source
    path: TESTNODE
    args: source 30 100
    inputs: {tick: dora/timer/millis/2}
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: TESTNODE
    args: sink 25
    inputs: {data: {source: source/data, queue_size: 100}}
    deploy: {machine: B}
`)
	b := results["B"]
	wantSuccess(t, b, out)
	if !strings.Contains(out, "sink: closed data") {
		t.Errorf("the input did not close:\n%s", out)
	}
	if lost := b.Nodes[0].Lost["data"]; lost != 5 {
		t.Errorf("lost %d messages, want 5; summary:\n%s", lost, b.Summary())
	}
}

// TestOnlyCrossMachineTrafficUsesTheTransport: outputs read only on
// their own machine are never published.
func TestOnlyCrossMachineTrafficUsesTheTransport(t *testing.T) {
	tr := newMemTransport()
	results, out := runMachinesOver(t, tr, `
nodes:
  - id: source
    path: TESTNODE
    args: source 10 40960
    inputs: {tick: dora/timer/millis/2}
    outputs: [data]
    deploy: {machine: A}
  - id: near
    path: TESTNODE
    args: sink 10
    inputs: {data: {source: source/data, queue_size: 100}}
    deploy: {machine: A}
  - id: far-source
    path: TESTNODE
    args: source 10 8
    inputs: {tick: dora/timer/millis/2}
    outputs: [data]
    deploy: {machine: B}
  - id: far
    path: TESTNODE
    args: sink 10
    inputs: {data: {source: far-source/data, queue_size: 100}}
    deploy: {machine: B}
`)
	for _, res := range results {
		wantSuccess(t, res, out)
	}
	if len(tr.streams) != 0 {
		t.Errorf("same-machine traffic went through the transport: %v", tr.streams)
	}
}

// TestASlowLinkDropsTheOldestAtTheSender: the network is slower than the
// sender; the messages for the other machine queue at the sender with the
// subscriber's queue_size and the oldest are dropped and counted, so the
// newest still arrives and nothing piles up in the transport.
func TestASlowLinkDropsTheOldestAtTheSender(t *testing.T) {
	tr := newMemTransport()
	tr.delay = 2 * time.Millisecond
	results, out := runMachinesOver(t, tr, `
nodes:
  - id: source
    path: TESTNODE
    args: burst 300 8
    outputs: [data]
    deploy: {machine: A}
  - id: local-sink
    path: TESTNODE
    args: sink 300
    inputs: {data: {source: source/data, queue_size: 1000}}
    deploy: {machine: A}
  - id: far-sink
    path: TESTNODE
    args: sink 1
    inputs: {data: {source: source/data, queue_size: 5}}
    deploy: {machine: B}
`)
	for _, res := range results {
		wantSuccess(t, res, out)
	}
	var dropped uint64
	for _, n := range results["A"].Nodes {
		if n.ID == "source" {
			dropped = n.RemoteDropped["data"]
		}
	}
	if dropped == 0 {
		t.Fatalf("no message was dropped at the sender:\n%s", out)
	}
	if !regexp.MustCompile(`far-sink: received \d+ messages, last 299`).MatchString(out) {
		t.Errorf("the far sink did not get the newest message:\n%s", out)
	}
	if !strings.Contains(results["A"].Summary(), `node "source" output "data" dropped`) {
		t.Errorf("summary does not report the drops:\n%s", results["A"].Summary())
	}
}
