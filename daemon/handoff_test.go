package daemon

import (
	"log/slog"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/handoff"
	"golang.org/x/sys/unix"
)

// A node that senders hand messages to may never hear from the daemon
// again; a region retired meanwhile must still reach it as UNMAP, or it
// keeps the region mapped.
func TestWaitingNodeGetsUnmapsAlone(t *testing.T) {
	table, err := handoff.New(1)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	inst := &instance{log: slog.New(slog.DiscardHandler)}
	inst.handoff.Store(table)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	node := wire.NewConn(pair[1])
	defer node.Close()
	n := &nodeState{inst: inst, id: "sink", events: wire.NewConn(pair[0]), handoff: true,
		known: map[uint64]bool{7: true}, held: map[uint64]int{}, early: map[uint64]int{}}
	defer n.events.Close()

	n.nextEvents(16) // nothing queued: the request goes on offer
	if !n.offered {
		t.Fatal("the waiting node's request is not on offer")
	}
	n.unmaps = append(n.unmaps, 99) // never mapped by this node: nothing to say
	n.queueUnmap(7)
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(pair[1], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	f, _, err := node.ReadFrame()
	if err != nil {
		t.Fatalf("no answer carrying the UNMAP: %v", err)
	}
	d := wire.NewDecoder(f)
	var ev wire.Event
	if c := d.EventCount(); c != 1 || d.Event(&ev) != nil || ev.Type != wire.EventUnmap || ev.Region != 7 {
		t.Fatalf("got %d events, first %+v; want UNMAP 7 alone", c, ev)
	}
	n.mu.Lock() // the flush is over before the table goes
	n.mu.Unlock()
}
