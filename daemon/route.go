package daemon

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/queue"
	"golang.org/x/sys/unix"
)

// message is one sent output, shared by every queue it was routed to. Its
// references are the queue entries and deliveries not yet released.
type message struct {
	refs   atomic.Int32
	buf    []byte // metadata, then inline data
	meta   []byte
	inline []byte
	region *region
	len    uint64
}

var messagePool = sync.Pool{New: func() any { return &message{buf: make([]byte, 0, 256)} }}

// newMessage copies what a SEND_OUTPUT frame carries, since the frame's
// buffer is reused for the next read.
func newMessage(meta, inline []byte, refs int) *message {
	m := messagePool.Get().(*message)
	m.buf = append(append(m.buf[:0], meta...), inline...)
	m.meta = m.buf[:len(meta):len(meta)]
	m.inline = m.buf[len(meta):]
	m.len = uint64(len(inline))
	m.refs.Store(int32(refs))
	return m
}

func (m *message) unref() {
	if n := m.refs.Add(-1); n > 0 {
		return
	}
	if r := m.region; r != nil {
		m.region = nil
		r.freed()
	}
	m.meta, m.inline = nil, nil
	messagePool.Put(m)
}

// entry is one queued event of an input: a message, or (msg == nil) the
// marker that the input's source closed.
type entry struct {
	seq uint64
	msg *message
}

// inputQueue holds an input's messages until its node asks for events.
// When it is full the oldest message is dropped, so a slow node always
// gets the newest data. Guarded by its node's mu.
type inputQueue struct {
	node    *nodeState
	id      string
	size    int
	ring    *queue.Ring[entry]
	closed  bool
	dropped uint64
}

func newInputQueue(node *nodeState, id string, size int) *inputQueue {
	// One spare slot for the closed marker, which is never dropped.
	return &inputQueue{node: node, id: id, size: size, ring: queue.NewRing[entry](size + 1)}
}

// maxBatchBytes bounds one EVENTS frame; inline data is small, so this
// only matters for hostile or unusual senders.
const maxBatchBytes = 4 << 20

// writeTimeout is how long a write to a node may block on its full socket
// before the node is disconnected as stuck.
var writeTimeout = 10 * time.Second

// deliverLocked answers the node's outstanding NEXT_EVENTS, if any, with
// the oldest queued events across its inputs. Called with n.mu held.
func (n *nodeState) deliverLocked() {
	if n.pendingMax == 0 || n.stopSent || n.gone {
		return
	}
	if !n.withdrawLocked() {
		return
	}
	e := &n.enc
	e.Reset()
	e.BeginEvents()
	count, fds := 0, n.fds[:0]
	for count < int(n.pendingMax) && e.Len() < maxBatchBytes {
		q := n.oldestQueue()
		if q == nil {
			break
		}
		head, _ := q.ring.Peek()
		m := head.msg
		switch {
		case m == nil:
			q.ring.Pop()
			e.PutIDEvent(wire.EventInputClosed, q.id)
		case m.region != nil:
			r := m.region
			attach := !n.known[r.key]
			if attach && len(fds) == wire.MaxFDs {
				goto full
			}
			q.ring.Pop()
			e.PutInputEvent(q.id, m.meta, &wire.Data{Where: wire.DataShm, FDAttached: attach, Region: r.key, RegionSize: r.size, Len: m.len})
			if attach {
				fds = append(fds, r.fd)
				n.known[r.key] = true
				r.addMapper(n)
			}
			n.held[r.key]++
		default:
			q.ring.Pop()
			data := wire.Data{Where: wire.DataInline, Inline: m.inline}
			if len(m.inline) == 0 {
				data.Where = wire.DataNone
			}
			e.PutInputEvent(q.id, m.meta, &data)
			m.unref() // its bytes are in the frame now
		}
		count++
	}
full:
	if count < int(n.pendingMax) && n.stopDue && n.oldestQueue() == nil {
		e.PutStopEvent()
		count++
		n.stopSent = true
	}
	// Retired regions ride along with real events rather than waking the
	// node on their own, except for a node that senders may hand messages
	// to: it could go on without events from the daemon, and so keep
	// mapped what every sender has let go.
	if count > 0 || n.handoff {
		n.unmapMu.Lock()
		for _, key := range n.unmaps {
			if n.known[key] {
				delete(n.known, key)
				e.PutUnmapEvent(key)
				count++
			}
		}
		n.unmaps = n.unmaps[:0]
		n.unmapMu.Unlock()
	}
	if count == 0 {
		if n.handoff {
			n.inst.handoff.Load().Offer(n.slot)
			n.offered = true
		}
		return
	}
	n.fds = fds
	n.pendingMax = 0
	if err := n.events.WriteFrame(e.EndEvents(count, len(fds)), fds...); err != nil {
		n.disconnect(fmt.Errorf("writing its events: %w", err))
	}
}

// withdrawLocked takes the node's request off offer, so that nothing is
// handed off while anything is queued for it: a hand-off must not overtake
// a queued message. False means a sender answered the request first.
// Called with n.mu held.
func (n *nodeState) withdrawLocked() bool {
	if !n.offered {
		return true
	}
	n.offered = false
	if n.inst.handoff.Load().Withdraw(n.slot) {
		return true
	}
	n.pendingMax = 0
	n.result.HandedOff++
	return false
}

// disconnect cuts a node off after a failed write: a partly written frame
// leaves its connection unusable, so the node cannot work any more and is
// killed; its outputs close as if it had exited.
func (n *nodeState) disconnect(err error) {
	if n.gone || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return // it is already going away
	}
	n.inst.log.Error("disconnecting and killing a node that does not read its sockets", "node", n.id, "err", err)
	n.setErr(fmt.Errorf("disconnected and killed: %w", err))
	n.ctrl.Shutdown()
	n.events.Shutdown()
	n.kill()
}

// oldestQueue is the input whose head entry was queued first.
func (n *nodeState) oldestQueue() *inputQueue {
	var best *inputQueue
	var bestSeq uint64
	for _, q := range n.queues {
		if h, ok := q.ring.Peek(); ok && (best == nil || h.seq < bestSeq) {
			best, bestSeq = q, h.seq
		}
	}
	return best
}

// push queues m on q and delivers at once if the node is waiting.
func (n *nodeState) push(q *inputQueue, m *message) {
	n.mu.Lock()
	unref := n.enqueueLocked(q, m)
	n.mu.Unlock()
	if unref != nil {
		unref.unref()
	}
	n.deliver()
}

// fanOut queues m on every input of subs, then wakes their nodes: the
// distinct owners of subs, in slot order, the order their locks are
// taken in. They are all locked while m is queued, so no receiver can be
// given m, and answer it to another, before m is queued for every one.
func fanOut(subs []*inputQueue, nodes []*nodeState, m *message) {
	for _, n := range nodes {
		n.mu.Lock()
	}
	var stack [8]*message
	unrefs := stack[:0]
	for _, q := range subs {
		if u := q.node.enqueueLocked(q, m); u != nil {
			unrefs = append(unrefs, u)
		}
	}
	for _, n := range nodes {
		n.mu.Unlock()
	}
	for _, u := range unrefs {
		u.unref()
	}
	for _, n := range nodes {
		n.deliver()
	}
}

// enqueueLocked queues m on q, dropping the oldest message if q is full,
// and returns the message whose reference the caller must drop once it
// has unlocked n.mu: the dropped one, or m if it has nowhere to go.
func (n *nodeState) enqueueLocked(q *inputQueue, m *message) *message {
	if n.gone || n.stopDue || q.closed {
		return m
	}
	n.seq++
	old, dropped := q.ring.Push(entry{seq: n.seq, msg: m}, q.size)
	n.withdrawLocked()
	if !dropped {
		return nil
	}
	q.dropped++
	if q.dropped == 1 {
		n.inst.log.Warn("input queue full: dropping the oldest messages (counted in the summary)", "node", n.id, "input", q.id, "queue_size", q.size)
	}
	return old.msg
}

// deliver answers the node's outstanding request, if any.
func (n *nodeState) deliver() {
	n.mu.Lock()
	n.deliverLocked()
	n.mu.Unlock()
}

// closeInput queues q's closed marker; once every input is closed the node
// gets Stop after its queued events.
func (n *nodeState) closeInput(q *inputQueue) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if q.closed || n.gone {
		return
	}
	q.closed = true
	n.seq++
	q.ring.Push(entry{seq: n.seq}, q.size+1)
	n.openInputs--
	if n.openInputs == 0 {
		n.stopDue = true
	}
	n.deliverLocked()
}

// requestStop makes Stop the node's next event after those already
// queued; nothing new is queued after it.
func (n *nodeState) requestStop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopDue = true
	n.deliverLocked()
}

// nextEvents records a NEXT_EVENTS request.
func (n *nodeState) nextEvents(max uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offered {
		// Only an answered request lets the node ask again: a sender
		// took the offer.
		n.offered = false
		n.inst.handoff.Load().Clear(n.slot)
		n.result.HandedOff++
	}
	n.pendingMax, n.lastMax = max, max
	n.deliverLocked()
}

// release handles RELEASE: the node is done with one delivery per key.
func (n *nodeState) release(keys []uint64) {
	for _, key := range keys {
		n.mu.Lock()
		ok := n.held[key] > 0
		early := !ok && n.handoff && key>>63 == 0
		if ok {
			n.held[key]--
			if n.held[key] == 0 {
				delete(n.held, key)
			}
		} else if early {
			// A message handed off to this node, whose HANDED_OFF
			// the daemon has not read yet.
			n.early[key]++
		}
		n.mu.Unlock()
		if !ok {
			if !early {
				n.inst.log.Warn("node released a region it does not hold", "node", n.id, "region", key)
			}
			continue
		}
		if r := n.inst.regions.get(key); r != nil {
			r.msgUnref()
		}
	}
}

// drain drops everything queued for or held by a node that is gone.
func (n *nodeState) drain() {
	n.mu.Lock()
	n.gone = true
	n.withdrawLocked()
	var msgs []*message
	for _, q := range n.queues {
		for e, ok := q.ring.Pop(); ok; e, ok = q.ring.Pop() {
			if e.msg != nil {
				msgs = append(msgs, e.msg)
			}
		}
	}
	held := n.held
	n.held = map[uint64]int{}
	n.mu.Unlock()
	for _, m := range msgs {
		m.unref()
	}
	for key, c := range held {
		if r := n.inst.regions.get(key); r != nil {
			for ; c > 0; c-- {
				r.msgUnref()
			}
		}
	}
}
