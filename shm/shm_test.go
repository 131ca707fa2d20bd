package shm

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestRegionIsSharedAndReadOnlyForReceivers(t *testing.T) {
	w, err := Create("test", 100000)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	copy(w.Bytes(), "zero copy")
	fd, err := Dup(w.FD())
	if err != nil {
		t.Fatal(err)
	}
	r, err := MapReadOnly(fd, uint64(w.Size()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !bytes.HasPrefix(r.Bytes(), []byte("zero copy")) {
		t.Fatal("receiver does not see the sender's bytes")
	}
	copy(w.Bytes(), "rewritten")
	if !bytes.HasPrefix(r.Bytes(), []byte("rewritten")) {
		t.Fatal("mapping is not shared")
	}
}

func TestMapReadOnlyRejectsOversizedClaims(t *testing.T) {
	w, err := Create("test", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd, _ := Dup(w.FD())
	if _, err := MapReadOnly(fd, 1<<30); err == nil {
		t.Fatal("mapped beyond the file's size")
	}
}

func TestPoolReusesRegions(t *testing.T) {
	p := NewPool("test")
	defer p.Close()
	a, err := p.Get(4096000)
	if err != nil {
		t.Fatal(err)
	}
	if a.Size() != 4<<20 {
		t.Errorf("size %d, want 4 MiB", a.Size())
	}
	if dropped := p.Put(a.ID); dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	b, _ := p.Get(4000000)
	if b.ID != a.ID {
		t.Error("a fitting idle region was not reused")
	}
	c, _ := p.Get(5000)
	if c.ID == a.ID || c.Size() != MinRegionSize {
		t.Errorf("small payload got region %d of %d bytes", c.ID, c.Size())
	}
	p.Put(b.ID)
	d, _ := p.Get(100)
	if d.ID == b.ID {
		t.Error("a 4 MiB region was lent for 100 bytes")
	}
}

func TestPoolBoundsIdleRegions(t *testing.T) {
	p := NewPool("test")
	defer p.Close()
	var ids []uint64
	for i := 0; i < maxFree+3; i++ {
		r, err := p.Get(MinRegionSize)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	var dropped int
	for _, id := range ids {
		if p.Put(id) != 0 {
			dropped++
		}
	}
	if free, lent := p.Stats(); free != maxFree || lent != 0 || dropped != 3 {
		t.Fatalf("free %d lent %d dropped %d", free, lent, dropped)
	}
}

func TestNothingAppearsInDevShm(t *testing.T) {
	before, _ := os.ReadDir("/dev/shm")
	r, err := Create("dora-visible?", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir("/dev/shm")
	r.Close()
	if len(after) != len(before) {
		t.Fatalf("/dev/shm went from %d to %d entries", len(before), len(after))
	}
}

func TestPoolWaitsForAReturnBeforeGrowing(t *testing.T) {
	p := NewPool("test")
	defer p.Close()
	var lent []*PoolRegion
	for i := 0; i < maxInFlight; i++ {
		r, err := p.Get(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		lent = append(lent, r)
	}
	go func() {
		time.Sleep(time.Millisecond)
		p.Put(lent[3].ID)
	}()
	r, err := p.Get(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != lent[3].ID {
		t.Fatalf("got a new region %d instead of waiting for %d", r.ID, lent[3].ID)
	}
	// Nothing comes back: after the bounded wait, the pool grows.
	r2, err := p.Get(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, lentNow := p.Stats(); lentNow != maxInFlight+1 || r2.ID <= lent[len(lent)-1].ID {
		t.Fatalf("pool did not grow: lent %d, id %d", lentNow, r2.ID)
	}
}
