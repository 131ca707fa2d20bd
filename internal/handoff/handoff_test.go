package handoff

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dora-go/dora/shm"
)

// share opens the daemon's table as a node would: through a duplicate of
// its descriptor.
func share(t *testing.T, d *Table) *Table {
	t.Helper()
	fd, err := shm.Dup(d.FD())
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(fd, d.Slots())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newTable(t *testing.T, slots int) *Table {
	t.Helper()
	d, err := New(slots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOfferIsWonOnce(t *testing.T) {
	daemon := newTable(t, 3)
	node := share(t, daemon)
	if node.Take(2, 0) {
		t.Fatal("took a request that was never offered")
	}
	daemon.Offer(2)
	if !node.Take(2, 0) {
		t.Fatal("could not take an offered request")
	}
	if node.Take(2, 1) || daemon.Withdraw(2) {
		t.Fatal("a taken request was won again")
	}
	if !daemon.TakenBy(2, 0) || daemon.TakenBy(2, 1) {
		t.Fatal("TakenBy does not name the sender that took the request")
	}
	node.Answered(2, 1) // not the taker: no effect
	if !daemon.TakenBy(2, 0) {
		t.Fatal("another sender marked the request answered")
	}
	node.Answered(2, 0)
	if daemon.TakenBy(2, 0) || node.Take(2, 0) || daemon.Withdraw(2) {
		t.Fatal("an answered request is still taken, or could be won again")
	}
	daemon.Clear(2)
	daemon.Offer(2)
	if !daemon.Withdraw(2) || node.Take(2, 0) {
		t.Fatal("a withdrawn request could be taken")
	}
	if node.Take(1, 0) {
		t.Fatal("an offer for one receiver was taken for another")
	}
}

func TestRoutedCountsAreShared(t *testing.T) {
	daemon := newTable(t, 2)
	node := share(t, daemon)
	daemon.AddRouted(0, 1)
	daemon.AddRouted(0, 1)
	daemon.AddRouted(1, 0)
	if got := node.Routed(0, 1); got != 2 {
		t.Errorf("Routed(0, 1) = %d, want 2", got)
	}
	if got := node.Routed(1, 0); got != 1 {
		t.Errorf("Routed(1, 0) = %d, want 1", got)
	}
	if got := node.Routed(1, 1); got != 0 {
		t.Errorf("Routed(1, 1) = %d, want 0", got)
	}
}

// Senders race each other and the daemon for every offer: exactly one
// party may win each.
func TestExactlyOneWinsEachOffer(t *testing.T) {
	daemon := newTable(t, 1)
	const rounds, senders = 2000, 3
	nodes := make([]*Table, senders)
	for i := range nodes {
		nodes[i] = share(t, daemon)
	}
	for range rounds {
		daemon.Offer(0)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() {
				if n.Take(0, 0) {
					wins.Add(1)
				}
			})
		}
		if daemon.Withdraw(0) {
			wins.Add(1)
		}
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d parties won one offer", w)
		}
		daemon.Clear(0)
	}
}

func TestOpenChecksTheTable(t *testing.T) {
	daemon := newTable(t, 2)
	fd, err := shm.Dup(daemon.FD())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fd, 1); err == nil || !strings.Contains(err.Error(), "not a table for 1 nodes") {
		t.Errorf("opening a 2-node table as a 1-node one: %v", err)
	}
	region, err := shm.Create("not-a-table", Size(2))
	if err != nil {
		t.Fatal(err)
	}
	defer region.Close()
	if fd, err = shm.Dup(region.FD()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fd, 2); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("opening a region that is not a table: %v", err)
	}
	for _, slots := range []int{0, MaxSlots + 1} {
		if _, err := New(slots); err == nil {
			t.Errorf("New(%d) succeeded", slots)
		}
	}
}
