package shm

import (
	"fmt"
	"math/bits"
	"sync"
	"time"
)

// MinRegionSize is the smallest region a Pool creates: smaller payloads
// travel inline, and rounding up lets a region serve many sizes.
const MinRegionSize = 64 << 10

// maxFree bounds how many idle regions a pool keeps mapped.
const maxFree = 16

// Creating a region costs far more than reusing one: every page of a new
// region faults on first write (about 4.5 ms for 4 MB on a VM, against
// 0.1 ms to copy into a reused one), while a lent region usually comes back
// within a fraction of a millisecond. So when regions of the size are lent,
// Get first waits for one to come back: up to shortWait, or maxWait once
// maxInFlight of them are out. The waits are bounded, so a receiver that
// keeps its data cannot stall a sender for longer than that.
const (
	maxInFlight = 8
	shortWait   = 2 * time.Millisecond
	maxWait     = 20 * time.Millisecond
)

// PoolRegion is a region lent by a Pool.
type PoolRegion struct {
	*Region
	// ID names the region to the daemon; unique within its pool.
	ID uint64
	// Announced reports whether the daemon already has the region's fd.
	Announced bool
}

// Pool is a sender's set of regions. A region is lent for one message and
// comes back (Put) when every receiver has released it, so the steady state
// maps nothing new.
type Pool struct {
	name string

	mu       sync.Mutex
	nextID   uint64
	free     []*PoolRegion
	lent     map[uint64]*PoolRegion
	closed   bool
	returned chan struct{} // signalled by Put
}

// NewPool makes an empty pool; name labels its memfds.
func NewPool(name string) *Pool {
	return &Pool{name: name, lent: make(map[uint64]*PoolRegion), returned: make(chan struct{}, 1)}
}

// waitTimers spares a sender that waits for its regions an allocation per
// message. Since Go 1.23 a stopped timer delivers nothing stale after a
// Reset, so they can be reused.
var waitTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// SizeFor is the size of the region Get creates for an n-byte payload.
func SizeFor(n int) int {
	if n <= MinRegionSize {
		return MinRegionSize
	}
	return 1 << bits.Len(uint(n-1))
}

// Get lends a region of at least n bytes: the smallest idle one that fits
// without wasting more than half of it, or a new one.
func (p *Pool) Get(n int) (*PoolRegion, error) {
	var deadline time.Time
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("shm: pool %s is closed", p.name)
		}
		if r := p.takeFree(n); r != nil {
			p.mu.Unlock()
			return r, nil
		}
		busy := p.lentOfSize(SizeFor(n))
		p.mu.Unlock()
		if busy == 0 {
			break
		}
		if deadline.IsZero() {
			wait := shortWait
			if busy >= maxInFlight {
				wait = maxWait
			}
			deadline = time.Now().Add(wait)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		t := waitTimers.Get().(*time.Timer)
		t.Reset(wait)
		select {
		case <-p.returned:
		case <-t.C:
		}
		t.Stop()
		waitTimers.Put(t)
	}
	reg, err := Create(p.name, SizeFor(n))
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	r := &PoolRegion{Region: reg, ID: p.nextID}
	p.lent[r.ID] = r
	return r, nil
}

// takeFree lends the best idle region for n bytes, or returns nil.
func (p *Pool) takeFree(n int) *PoolRegion {
	best := -1
	for i, r := range p.free {
		if r.Size() >= n && r.Size() <= 2*SizeFor(n) && (best < 0 || r.Size() < p.free[best].Size()) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	r := p.free[best]
	p.free = append(p.free[:best], p.free[best+1:]...)
	p.lent[r.ID] = r
	return r
}

func (p *Pool) lentOfSize(size int) int {
	c := 0
	for _, r := range p.lent {
		if r.Size() == size {
			c++
		}
	}
	return c
}

// Put takes back a lent region. When the pool already holds enough idle
// regions it unmaps one instead and returns its id, which the caller
// announces as dropped; otherwise it returns 0.
func (p *Pool) Put(id uint64) (dropped uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.lent[id]
	if !ok {
		return 0
	}
	delete(p.lent, id)
	if p.closed || len(p.free) >= maxFree {
		r.Close()
		return id
	}
	p.free = append(p.free, r)
	select {
	case p.returned <- struct{}{}:
	default:
	}
	return 0
}

// Abandon forgets a lent region that could not be sent, unmapping it.
func (p *Pool) Abandon(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.lent[id]; ok {
		delete(p.lent, id)
		r.Close()
	}
}

// Stats reports idle and lent regions.
func (p *Pool) Stats() (free, lent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free), len(p.lent)
}

// Close unmaps idle regions now and lent ones as they come back.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, r := range p.free {
		r.Close()
	}
	p.free = nil
}
