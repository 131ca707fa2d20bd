package daemon

import (
	"fmt"
	"sync"

	"github.com/dora-go/dora/abi/wire"
	"golang.org/x/sys/unix"
)

// region is a sender's shared-memory region as the daemon tracks it: the
// daemon holds its descriptor to pass to receivers, never maps it.
type region struct {
	inst    *instance
	key     uint64
	owner   *nodeState
	localID uint64
	fd      int
	size    uint64

	mu      sync.Mutex
	msg     *message // the message the region holds now, if any
	retired bool
	mappers []*nodeState
	// view is the daemon's read-only mapping, made to publish the region's
	// messages to other machines.
	view []byte
	// recycle takes back a region the daemon owns (messages from other
	// machines) instead of returning it to a sending node.
	recycle func(*region)
}

// regionTable finds regions by daemon key.
type regionTable struct {
	mu    sync.Mutex
	next  uint64
	byKey map[uint64]*region
}

// add gives r its key: a node's region the one its sender can compute
// (wire.RegionKey), so that it can hand messages in it off; the daemon's
// own regions a key with bit 63 set.
func (t *regionTable) add(r *region) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byKey == nil {
		t.byKey = make(map[uint64]*region)
	}
	if r.owner == nil {
		t.next++
		r.key = 1<<63 | t.next
	} else {
		if r.localID > wire.MaxRegionID {
			return fmt.Errorf("region id %d is above %d", r.localID, uint64(wire.MaxRegionID))
		}
		r.key = wire.RegionKey(r.owner.slot, r.localID)
		if t.byKey[r.key] != nil {
			return fmt.Errorf("region id %d announced twice", r.localID)
		}
	}
	t.byKey[r.key] = r
	return nil
}

func (t *regionTable) get(key uint64) *region {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[key]
}

func (t *regionTable) remove(key uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byKey, key)
}

// closeAll releases every descriptor still held, when the dataflow ends.
func (t *regionTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, r := range t.byKey {
		r.unmapView()
		unix.Close(r.fd)
		delete(t.byKey, k)
	}
}

// load puts m in the region; false if the sender reused a region it had
// not got back yet.
func (r *region) load(m *message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msg != nil || r.retired {
		return false
	}
	r.msg = m
	m.region = r
	return true
}

// msgUnref drops one delivery of the region's current message.
func (r *region) msgUnref() {
	r.mu.Lock()
	m := r.msg
	r.mu.Unlock()
	if m != nil {
		m.unref()
	}
}

// freed runs when the region's message has no references left: the sender
// gets the region back, or, if it retired it, the region goes away.
func (r *region) freed() {
	r.mu.Lock()
	r.msg = nil
	retired := r.retired
	r.mu.Unlock()
	if retired {
		r.close()
		return
	}
	if r.recycle != nil {
		r.recycle(r)
		return
	}
	r.owner.sendReleased(r.localID)
}

func (r *region) addMapper(n *nodeState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mappers = append(r.mappers, n)
}

// retire is DROP_REGIONS or the owner's exit: the region goes away once
// its message is released.
func (r *region) retire() {
	r.mu.Lock()
	already := r.retired
	r.retired = true
	busy := r.msg != nil
	r.mu.Unlock()
	if !already && !busy {
		r.close()
	}
}

func (r *region) close() {
	r.inst.regions.remove(r.key)
	r.unmapView()
	unix.Close(r.fd)
	r.mu.Lock()
	mappers := r.mappers
	r.mappers = nil
	r.mu.Unlock()
	for _, n := range mappers {
		n.queueUnmap(r.key)
	}
}

// sendReleased tells the node its region is free again.
func (n *nodeState) sendReleased(localID uint64) {
	n.relMu.Lock()
	defer n.relMu.Unlock()
	n.relEnc.Reset()
	ids := [1]uint64{localID}
	if err := n.ctrl.WriteFrame(n.relEnc.PutRegions(wire.KindReleased, ids[:])); err != nil {
		n.mu.Lock()
		n.disconnect(fmt.Errorf("writing RELEASED: %w", err))
		n.mu.Unlock()
	}
}

func (n *nodeState) queueUnmap(key uint64) {
	n.unmapMu.Lock()
	n.unmaps = append(n.unmaps, key)
	n.unmapMu.Unlock()
	// Apart, since the caller may hold another node's lock.
	go n.flushUnmaps()
}

// flushUnmaps answers the pending request of a node that is handed its
// messages, so that it unmaps retired regions now (see deliverLocked).
func (n *nodeState) flushUnmaps() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handoff && n.withdrawLocked() {
		n.deliverLocked()
	}
}
