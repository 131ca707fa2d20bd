// Package handoff is the table through which a sender hands a small
// message straight to a receiver that is waiting with nothing queued,
// without waking the daemon: the daemon offers a waiting receiver's
// pending NEXT_EVENTS request, and exactly one party (a sender, or the
// daemon taking it back) wins it. abi/PROTOCOL.md ("Hand-off") has the
// byte layout and the rules that keep per-input order.
//
// The table is a memfd the daemon creates and passes to nodes that ask for
// it; every word is accessed atomically by several processes.
package handoff

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/dora-go/dora/shm"
)

const (
	magic      = 0x31484f44 // "DOH1"
	headerSize = 16

	idle     = 0
	offered  = 1
	taken    = 2 // | (sender slot + 1) << 8, until the sender has answered
	answered = 3
)

func takenBy(from int) uint64 { return taken | uint64(from+1)<<8 }

// MaxSlots bounds the nodes of one dataflow on one machine that take part
// (the routed counters grow with its square).
const MaxSlots = 1024

// Table is one dataflow's hand-off table, mapped read-write.
type Table struct {
	region *shm.Region
	slots  int
}

// Size is the byte size of a table for slots nodes.
func Size(slots int) int { return headerSize + 8*slots + 8*slots*slots }

// New creates a table for slots nodes (the daemon).
func New(slots int) (*Table, error) {
	if slots < 1 || slots > MaxSlots {
		return nil, fmt.Errorf("handoff: %d nodes (1..%d)", slots, MaxSlots)
	}
	r, err := shm.Create("dora-handoff", Size(slots))
	if err != nil {
		return nil, err
	}
	mem := r.Bytes()
	binary.LittleEndian.PutUint32(mem[0:], magic)
	binary.LittleEndian.PutUint32(mem[4:], uint32(slots))
	return &Table{region: r, slots: slots}, nil
}

// Open maps the table behind fd (a node) and takes ownership of fd.
func Open(fd, slots int) (*Table, error) {
	if slots < 1 || slots > MaxSlots {
		return nil, fmt.Errorf("handoff: table for %d nodes (1..%d)", slots, MaxSlots)
	}
	r, err := shm.MapReadWrite(fd, uint64(Size(slots)))
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	mem := r.Bytes()
	if m, n := binary.LittleEndian.Uint32(mem[0:]), binary.LittleEndian.Uint32(mem[4:]); m != magic || int(n) != slots {
		r.Close()
		return nil, fmt.Errorf("handoff: not a table for %d nodes (magic %#x, %d nodes)", slots, m, n)
	}
	return &Table{region: r, slots: slots}, nil
}

// FD is the table's descriptor (the daemon's; -1 in nodes).
func (t *Table) FD() int { return t.region.FD() }

// Slots is how many nodes the table has room for.
func (t *Table) Slots() int { return t.slots }

// Close unmaps the table.
func (t *Table) Close() error { return t.region.Close() }

func (t *Table) word(off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&t.region.Bytes()[off]))
}

func (t *Table) offer(to int) *uint64 { return t.word(headerSize + 8*to) }

func (t *Table) routed(from, to int) *uint64 {
	return t.word(headerSize + 8*t.slots + 8*(from*t.slots+to))
}

// Offer lets senders answer receiver to's pending request (the daemon,
// when to waits and nothing is queued for it).
func (t *Table) Offer(to int) { atomic.StoreUint64(t.offer(to), offered) }

// Withdraw takes an offer back before the daemon answers the request
// itself. False means a sender took it first: the request is answered.
func (t *Table) Withdraw(to int) bool {
	return atomic.CompareAndSwapUint64(t.offer(to), offered, idle)
}

// Clear forgets a taken offer once its receiver asks again, or once the
// daemon answers a request whose taker died.
func (t *Table) Clear(to int) { atomic.StoreUint64(t.offer(to), idle) }

// Take wins receiver to's pending request for sender from, who must then
// answer it with one EVENTS frame and call Answered.
func (t *Table) Take(to, from int) bool {
	return atomic.CompareAndSwapUint64(t.offer(to), offered, takenBy(from))
}

// Answered records that sender from has written its answer to to's
// request.
func (t *Table) Answered(to, from int) {
	atomic.CompareAndSwapUint64(t.offer(to), takenBy(from), answered)
}

// TakenBy reports whether sender from took to's request and has not
// answered it yet: if from is dead, it may never have.
func (t *Table) TakenBy(to, from int) bool {
	return atomic.LoadUint64(t.offer(to)) == takenBy(from)
}

// Routed is how many messages from sender from to receiver to the daemon
// has queued (or dropped) so far.
func (t *Table) Routed(from, to int) uint64 { return atomic.LoadUint64(t.routed(from, to)) }

// AddRouted counts one message from from to to as queued; the daemon calls
// it only after the message can no longer be overtaken (see the package
// comment).
func (t *Table) AddRouted(from, to int) { atomic.AddUint64(t.routed(from, to), 1) }
