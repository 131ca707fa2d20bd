package node

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/handoff"
	"golang.org/x/sys/unix"
)

// handoffFake is a fake daemon that routes output "out" of the node (slot
// 0) to input "x" of one receiver (slot 1), whose end of the events
// socket the test reads.
type handoffFake struct {
	*fakeDaemon
	node     *Node
	table    *handoff.Table
	receiver *wire.Conn
}

func newHandoffFake(t testing.TB) *handoffFake {
	t.Helper()
	table, err := handoff.New(2)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDaemon{
		routes: &wire.Routes{Self: 0, Slots: 2, Outputs: []wire.OutputRoute{
			{OutputID: "out", Receivers: []uint16{1}, Direct: true, Input: "x"},
		}},
		routeFDs:  []int{table.FD(), pair[0]},
		handedOff: make(chan handedOffNotice, 16),
	}
	d, n := startFake(t, d)
	unix.Close(pair[0]) // the node has its own copy now
	f := &handoffFake{fakeDaemon: d, node: n, table: table, receiver: wire.NewConn(pair[1])}
	t.Cleanup(func() {
		f.receiver.Close()
		table.Close()
	})
	return f
}

// answer reads one frame from the receiver's socket: it must be an EVENTS
// frame with one INPUT on "x".
func (f *handoffFake) answer(t testing.TB) (wire.Event, []int) {
	t.Helper()
	frame, fds, err := f.receiver.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if k := wire.Kind(frame[4]); k != wire.KindEvents {
		t.Fatalf("receiver got %s", k)
	}
	d := wire.NewDecoder(frame)
	if n := d.EventCount(); n != 1 {
		t.Fatalf("%d events in a hand-off", n)
	}
	var ev wire.Event
	if err := d.Event(&ev); err != nil || d.Done() != nil {
		t.Fatalf("decoding the hand-off: %v %v", err, d.Done())
	}
	if ev.Type != wire.EventInput || string(ev.ID) != "x" {
		t.Fatalf("hand-off of %v on %q", ev.Type, ev.ID)
	}
	return ev, fds
}

func send8(t testing.TB, n *Node, i uint64) {
	if err := n.SendOutputRaw("out", 8, func(b []byte) { binary.LittleEndian.PutUint64(b, i) }); err != nil {
		t.Fatal(err)
	}
}

func TestHandOffOnlyWhenNothingIsInTheDaemon(t *testing.T) {
	f := newHandoffFake(t)
	// Not waiting: through the daemon.
	send8(t, f.node, 1)
	waitFor(t, func() bool { return f.sent.Load() == 1 })

	// Waiting, but the daemon has not routed message 1 yet: a hand-off
	// could overtake it.
	f.table.Offer(1)
	send8(t, f.node, 2)
	waitFor(t, func() bool { return f.sent.Load() == 2 })
	if !f.table.Withdraw(1) {
		t.Fatal("the offer was taken while messages were still in the daemon")
	}

	f.table.AddRouted(0, 1)
	f.table.AddRouted(0, 1)
	f.table.Offer(1)
	send8(t, f.node, 3)
	ev, _ := f.answer(t)
	if got := binary.LittleEndian.Uint64(ev.Data.Inline); got != 3 {
		t.Errorf("handed off message %d, want 3", got)
	}
	if f.table.Withdraw(1) {
		t.Error("the offer is still there after the hand-off")
	}
	if f.sent.Load() != 2 {
		t.Errorf("the daemon got %d messages, want 2", f.sent.Load())
	}
}

func TestHandOffInSharedMemory(t *testing.T) {
	f := newHandoffFake(t)
	for round := range 2 {
		f.table.Offer(1)
		sendBig(t, f.node)
		ev, fds := f.answer(t)
		if ev.Data.Where != wire.DataShm || ev.Data.Len != bigMessage {
			t.Fatalf("round %d: handed off %+v", round, ev.Data)
		}
		// The descriptor goes to the receiver the first time only.
		if want := round == 0; ev.Data.FDAttached != want || (len(fds) == 1) != want {
			t.Errorf("round %d: descriptor attached %t with %d fds, want %t", round, ev.Data.FDAttached, len(fds), want)
		}
		if want := wire.RegionKey(0, ev.Data.Region&wire.MaxRegionID); ev.Data.Region != want || ev.Data.Region>>32 != 1 {
			t.Errorf("round %d: region key %#x is not the daemon's key for slot 0", round, ev.Data.Region)
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		// The daemon is told, with the region's descriptor the first time.
		notice := <-f.handedOff
		if want := ev.Data.Region & wire.MaxRegionID; notice.region != want || (notice.fds == 1) != (round == 0) {
			t.Errorf("round %d: HANDED_OFF %+v, want region %d", round, notice, want)
		}
		ids := [1]uint64{notice.region}
		var e wire.Encoder
		f.ctrl.WriteFrame(e.PutRegions(wire.KindReleased, ids[:]))
	}
}

// TestHandOffDoesNotAllocate: the steady state of handing off small
// messages allocates nothing.
func TestHandOffDoesNotAllocate(t *testing.T) {
	f := newHandoffFake(t)
	step := func() {
		f.table.Offer(1)
		send8(t, f.node, 7)
		if _, _, err := f.receiver.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		step()
	}
	if allocs := testing.AllocsPerRun(1000, step); allocs > 0 {
		t.Errorf("%.1f allocations per message", allocs)
	}
}

func BenchmarkHandOff8B(b *testing.B) {
	f := newHandoffFake(b)
	b.ReportAllocs()
	for b.Loop() {
		f.table.Offer(1)
		send8(b, f.node, 7)
		if _, _, err := f.receiver.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
