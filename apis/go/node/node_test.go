package node

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/shm"
	"golang.org/x/sys/unix"
)

// fakeDaemon serves one node over socket pairs, without allocating per
// message, so benchmarks and allocation counts measure the node API.
type fakeDaemon struct {
	t      testing.TB
	ctrl   *wire.Conn
	events *wire.Conn
	// batch answers every NEXT_EVENTS; fds go with its first answer.
	batch    []byte
	fds      []int
	sent     atomic.Int64
	released atomic.Int64
	lastSent atomic.Value // []byte copy of the last SEND_OUTPUT data
	onSend   func(*wire.SendOutput, []int)
	// routes, when set, is sent to a node that asks for the hand-off,
	// with routeFDs.
	routes    *wire.Routes
	routeFDs  []int
	handedOff chan handedOffNotice
}

type handedOffNotice struct {
	region uint64
	fds    int
}

func newFake(t testing.TB, batch []byte, onSend func(*wire.SendOutput, []int), fds ...int) (*fakeDaemon, *Node) {
	t.Helper()
	return startFake(t, &fakeDaemon{batch: batch, fds: fds, onSend: onSend})
}

func startFake(t testing.TB, d *fakeDaemon) (*fakeDaemon, *Node) {
	t.Helper()
	pair := func() (int, int) {
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return p[0], p[1]
	}
	c0, c1 := pair()
	e0, e1 := pair()
	d.t, d.ctrl, d.events = t, wire.NewConn(c0), wire.NewConn(e0)
	go d.serveControl()
	go d.serveEvents()
	n, err := InitWithConfig(&wire.NodeConfig{
		Version: wire.Version, DataflowID: "df", NodeID: "n", ControlFD: c1, EventsFD: e1,
		Inputs: []wire.InputConfig{{ID: "in", QueueSize: 10}}, Outputs: []string{"out"},
		ShmThreshold: wire.DefaultShmThreshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		d.ctrl.Shutdown()
		d.events.Shutdown()
	})
	return d, n
}

func (d *fakeDaemon) serveControl() {
	var dec wire.Decoder
	var enc wire.Encoder
	var so wire.SendOutput
	var keys []uint64
	for {
		f, fds, err := d.ctrl.ReadFrame()
		if err != nil {
			return
		}
		dec.Reset(f)
		switch wire.Kind(f[4]) {
		case wire.KindRegister:
			if reg, err := dec.Register(); err == nil && reg.Features&wire.FeatureHandoff != 0 && d.routes != nil {
				enc.Reset()
				d.ctrl.WriteFrame(enc.PutRoutes(d.routes), d.routeFDs...)
			}
			enc.Reset()
			d.ctrl.WriteFrame(enc.PutRegisterReply(""))
		case wire.KindHandedOff:
			var h wire.HandedOff
			if err := dec.HandedOff(&h); err != nil {
				d.t.Error(err)
				return
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
			d.handedOff <- handedOffNotice{region: h.Data.Region, fds: len(fds)}
		case wire.KindSendOutput:
			if err := dec.SendOutput(&so); err != nil {
				d.t.Error(err)
				return
			}
			d.sent.Add(1)
			if d.onSend != nil {
				d.onSend(&so, fds)
			}
		case wire.KindRelease:
			keys, _ = dec.Regions(keys)
			d.released.Add(int64(len(keys)))
		}
	}
}

func (d *fakeDaemon) serveEvents() {
	for first := true; ; first = false {
		if _, _, err := d.events.ReadFrame(); err != nil {
			return
		}
		if first {
			d.events.WriteFrame(d.batch, d.fds...)
		} else {
			d.events.WriteFrame(d.batch)
		}
	}
}

func inputBatch(n int, data []byte) []byte {
	var e wire.Encoder
	e.Begin(0)
	e.PutMetadata(&wire.Metadata{Timestamp: 1})
	meta := append([]byte(nil), e.B[wire.HeaderSize:]...)
	e.Reset()
	e.BeginEvents()
	for i := 0; i < n; i++ {
		e.PutInputEvent("in", meta, &wire.Data{Where: wire.DataInline, Inline: data})
	}
	return append([]byte(nil), e.EndEvents(n, 0)...)
}

func TestRecvInputsAndStop(t *testing.T) {
	var e wire.Encoder
	e.BeginEvents()
	e.PutInputEvent("in", mustMeta(t, &wire.Metadata{Timestamp: 42, Parameters: map[string]Parameter{"k": {Kind: wire.ParamInt, Int: 7}}}), &wire.Data{Where: wire.DataInline, Inline: []byte("hello")})
	e.PutIDEvent(wire.EventInputClosed, "in")
	e.PutStopEvent()
	_, n := newFake(t, append([]byte(nil), e.EndEvents(3, 0)...), nil)
	ctx := context.Background()
	ev, err := n.Recv(ctx)
	if err != nil || ev.Type != Input || ev.ID != "in" || string(ev.Data) != "hello" || ev.Metadata.Timestamp != 42 || ev.Metadata.Parameters["k"].Int != 7 {
		t.Fatalf("first event %+v %v", ev, err)
	}
	arr, err := ev.Array()
	if err != nil || arr.Len() != 5 {
		t.Fatalf("Array() = %v %v", arr, err)
	}
	ev.Release()
	ev.Release()
	if ev, _ := n.Recv(ctx); ev.Type != InputClosed || ev.ID != "in" {
		t.Fatalf("second event %+v", ev)
	}
	if ev, _ := n.Recv(ctx); ev.Type != Stop {
		t.Fatalf("third event %+v", ev)
	}
	if _, err := n.Recv(ctx); err != io.EOF {
		t.Fatalf("after Stop: %v, want io.EOF", err)
	}
}

func mustMeta(t *testing.T, md *wire.Metadata) []byte {
	var e wire.Encoder
	e.Begin(0)
	e.PutMetadata(md)
	return append([]byte(nil), e.B[wire.HeaderSize:]...)
}

func TestRecvHonoursTheContext(t *testing.T) {
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	d, n := newFake(t, nil, nil)
	d.events.Shutdown() // the daemon never answers
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := n.Recv(ctx); err == nil {
		t.Fatal("Recv returned without an event")
	}
}

func TestDaemonGoneIsAClearError(t *testing.T) {
	d, n := newFake(t, nil, nil)
	d.events.Shutdown()
	_, err := n.Recv(context.Background())
	if err == nil || !strings.Contains(err.Error(), "daemon closed the connection") {
		t.Fatalf("err = %v", err)
	}
}

func TestSendRejectsUndeclaredOutputs(t *testing.T) {
	_, n := newFake(t, nil, nil)
	err := n.SendOutputBytes("nope", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), `output "nope" is not declared`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSendsInlineAndThroughSharedMemory(t *testing.T) {
	got := make(chan []byte, 2)
	_, n := newFake(t, nil, func(so *wire.SendOutput, fds []int) {
		switch so.Data.Where {
		case wire.DataInline:
			got <- bytes.Clone(so.Data.Inline)
		case wire.DataShm:
			if len(fds) != 1 || !so.Data.FDAttached {
				t.Errorf("first shm send came with %d fds", len(fds))
				return
			}
			r, err := shm.MapReadOnly(fds[0], so.Data.RegionSize)
			if err != nil {
				t.Error(err)
				return
			}
			got <- bytes.Clone(r.Bytes()[:so.Data.Len])
			r.Close()
		}
	})
	if err := n.SendOutputBytes("out", []byte("small")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	if err := n.SendOutputRaw("out", len(big), func(b []byte) { copy(b, big) }); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{[]byte("small"), big} {
		select {
		case b := <-got:
			if !bytes.Equal(b, want) {
				t.Fatalf("daemon got %d bytes, want %d", len(b), len(want))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("nothing arrived")
		}
	}
}

func TestSendOutputArrow(t *testing.T) {
	got := make(chan *wire.ArrayInfo, 1)
	_, n := newFake(t, nil, func(so *wire.SendOutput, _ []int) {
		var md wire.Metadata
		if err := wire.DecodeMetadata(so.Metadata, &md); err != nil {
			t.Error(err)
		}
		got <- md.Type
	})
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{1, 2, 3}, nil)
	arr := b.NewArray()
	defer arr.Release()
	if err := n.SendOutput("out", arr); err != nil {
		t.Fatal(err)
	}
	if info := <-got; info == nil || info.Format != "g" || info.Length != 3 {
		t.Fatalf("type info %+v", info)
	}
}

func TestReceivesAndReleasesSharedMemory(t *testing.T) {
	r, err := shm.Create("test", shm.MinRegionSize)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	copy(r.Bytes(), "shared payload")
	fd, _ := shm.Dup(r.FD())
	var e wire.Encoder
	e.BeginEvents()
	e.PutInputEvent("in", mustMeta(t, &wire.Metadata{}), &wire.Data{Where: wire.DataShm, FDAttached: true, Region: 5, RegionSize: uint64(r.Size()), Len: 14})
	e.PutUnmapEvent(5)
	e.PutStopEvent()
	d, n := newFake(t, append([]byte(nil), e.EndEvents(3, 1)...), nil, fd)
	ev, err := n.Recv(context.Background())
	if err != nil || string(ev.Data) != "shared payload" {
		t.Fatalf("%q %v", ev.Data, err)
	}
	// UNMAP came before the release: the mapping must stay usable.
	if ev2, _ := n.Recv(context.Background()); ev2.Type != Stop {
		t.Fatalf("second event %+v", ev2)
	}
	if string(ev.Data) != "shared payload" {
		t.Fatal("data changed before release")
	}
	ev.Release()
	deadline := time.Now().Add(5 * time.Second)
	for d.released.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d.released.Load() != 1 {
		t.Fatal("RELEASE not sent")
	}
	n.recv.mapsMu.Lock()
	left := len(n.recv.maps)
	n.recv.mapsMu.Unlock()
	if left != 0 {
		t.Fatalf("%d mappings left after release of an unmapped region", left)
	}
}

func TestInitWithoutDaemon(t *testing.T) {
	t.Setenv(wire.EnvNodeConfig, "")
	if _, err := Init(); err == nil {
		t.Fatal("Init with an empty config succeeded")
	}
	_, err := InitWithConfig(&wire.NodeConfig{Version: wire.Version, NodeID: "x", ControlFD: 1000, EventsFD: 1001})
	if err == nil || !strings.Contains(err.Error(), "not open") {
		t.Fatalf("err = %v", err)
	}
}

// TestHotPathDoesNotAllocate checks the steady state of sending and
// receiving small messages: no allocation per message.
func TestHotPathDoesNotAllocate(t *testing.T) {
	_, n := newFake(t, inputBatch(1, make([]byte, 8)), nil)
	payload := make([]byte, 8)
	fill := func(b []byte) { copy(b, payload) }
	var ev Event
	ctx := context.Background()
	step := func() {
		if err := n.SendOutputRaw("out", 8, fill); err != nil {
			t.Fatal(err)
		}
		if err := n.RecvInto(ctx, &ev); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		step()
	}
	if allocs := testing.AllocsPerRun(1000, step); allocs > 0 {
		t.Errorf("%.1f allocations per message", allocs)
	}
}

func BenchmarkSendInline8B(b *testing.B) {
	_, n := newFake(b, nil, nil)
	payload := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := n.SendOutputRaw("out", 8, func(buf []byte) { copy(buf, payload) }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecv8B(b *testing.B) {
	_, n := newFake(b, inputBatch(64, make([]byte, 8)), nil)
	var ev Event
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := n.RecvInto(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// newReleasingFake is a fake daemon that gives regions back at once, as
// receivers would.
func newReleasingFake(tb testing.TB) *Node {
	var enc wire.Encoder
	var d *fakeDaemon
	ready := make(chan struct{})
	d, n := newFake(tb, nil, func(so *wire.SendOutput, fds []int) {
		<-ready
		for _, fd := range fds {
			unix.Close(fd)
		}
		ids := [1]uint64{so.Data.Region}
		enc.Reset()
		d.ctrl.WriteFrame(enc.PutRegions(wire.KindReleased, ids[:]))
	})
	close(ready)
	return n
}

const bigMessage = 4096000

func sendBig(tb testing.TB, n *Node) {
	if err := n.SendOutputRaw("out", bigMessage, func(buf []byte) { buf[0], buf[bigMessage-1] = 1, 2 }); err != nil {
		tb.Fatal(err)
	}
}

// TestSharedMemorySendsDoNotAllocate: sending through regions that come
// back, waiting for them when all are out, allocates nothing per message.
func TestSharedMemorySendsDoNotAllocate(t *testing.T) {
	n := newReleasingFake(t)
	for range 50 {
		sendBig(t, n)
	}
	if allocs := testing.AllocsPerRun(200, func() { sendBig(t, n) }); allocs > 0 {
		t.Errorf("%.1f allocations per message", allocs)
	}
}

func BenchmarkSendShm4MB(b *testing.B) {
	n := newReleasingFake(b)
	b.SetBytes(bigMessage)
	b.ReportAllocs()
	for b.Loop() {
		sendBig(b, n)
	}
}
