package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/arrowconv"
	"github.com/dora-go/dora/shm"
	"golang.org/x/sys/unix"
)

// EventType says what an Event is.
type EventType int

const (
	// Input carries a message on one of the node's inputs.
	Input EventType = iota + 1
	// InputClosed says an input will receive nothing more.
	InputClosed
	// Stop asks the node to finish; it is the last event.
	Stop
	// Error reports a problem the daemon saw on the node's behalf.
	Error
)

func (t EventType) String() string {
	switch t {
	case Input:
		return "INPUT"
	case InputClosed:
		return "INPUT_CLOSED"
	case Stop:
		return "STOP"
	case Error:
		return "ERROR"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// maxBatch is how many events one NEXT_EVENTS asks for. The node only
// asks when its caller wants an event, so messages wait (and are dropped
// oldest-first) in the daemon's per-input queues, never in this process.
const maxBatch = 256

// Event is one event for the node.
//
// Data (and the array from Array) may point into shared memory or into a
// receive buffer: it stays valid until Release is called. Release it as
// soon as possible: a large message's region goes back to its sender only
// when every receiver released it. Events from Recv that are never
// released are released when the garbage collector finds them.
type Event struct {
	Type EventType
	// ID is the input id, for Input and InputClosed.
	ID       string
	Metadata Metadata
	// Data is the message payload, for Input.
	Data []byte
	// Err describes an Error event.
	Err error

	// hold points at own (RecvInto, no allocation) or at a separate hold
	// that a GC cleanup can release (Recv).
	hold *hold
	own  hold
}

// hold is what an event keeps alive until it is released.
type hold struct {
	r        *receiver
	b        *batch
	region   uint64
	released bool
}

func (h *hold) release() {
	if h.released {
		return
	}
	h.released = true
	if h.b != nil {
		h.b.unref()
	}
	if h.region != 0 {
		h.r.releaseRegion(h.region)
	}
}

// Release gives the event's data back. It is safe to call more than once.
func (e *Event) Release() {
	if e.hold != nil {
		e.hold.release()
		e.hold = nil
	}
}

// InSharedMemory reports whether Data is a view of a shared-memory region
// (and so outside the Go heap) rather than of a receive buffer.
func (e *Event) InSharedMemory() bool { return e.hold != nil && e.hold.region != 0 }

// Array returns the data as an Arrow array, without copying: raw bytes
// become a uint8 array. It is valid until Release.
func (e *Event) Array() (arrow.Array, error) {
	if e.Type != Input {
		return nil, fmt.Errorf("dora: %s event has no data", e.Type)
	}
	arr, err := arrowconv.Read(e.Data, e.Metadata.Type)
	if err != nil {
		return nil, fmt.Errorf("dora: input %q: %w", e.ID, err)
	}
	return arr, nil
}

// batch is one EVENTS frame, kept until every event that points into it is
// released.
type batch struct {
	buf  []byte
	fds  []int
	refs atomic.Int32
}

var batchPool = sync.Pool{New: func() any { return &batch{buf: make([]byte, 0, 4096)} }}

func (b *batch) unref() {
	if b.refs.Add(-1) == 0 {
		for _, fd := range b.fds {
			unix.Close(fd)
		}
		b.fds = b.fds[:0]
		batchPool.Put(b)
	}
}

// mapping is a receiver's read-only view of a sender's region.
type mapping struct {
	region   *shm.Region
	refs     int
	unmapped bool
}

type receiver struct {
	n    *Node
	next []byte // the NEXT_EVENTS frame, encoded once
	pfd  [1]unix.PollFd

	mu        sync.Mutex // one receiving caller at a time
	requested bool
	cur       *batch
	dec       wire.Decoder
	left      int
	ended     bool
	err       error

	mapsMu sync.Mutex
	maps   map[uint64]*mapping
}

func (r *receiver) init(n *Node) {
	r.n = n
	var e wire.Encoder
	r.next = append([]byte(nil), e.PutNextEvents(maxBatch)...)
	r.pfd[0] = unix.PollFd{Fd: int32(n.events.FD()), Events: unix.POLLIN}
	r.maps = make(map[uint64]*mapping)
}

// pollSlice is how often a receive whose context can end checks it.
const pollSlice = 50 * time.Millisecond

// fetch asks for events, unless a request is already outstanding, and
// reads the answer. It runs on the caller's goroutine: the kernel wakes the
// blocked thread directly when the answer arrives, with no hand-off to
// another thread on the way (which cost tens of microseconds per message).
// When ctx can end, the wait polls in slices to notice; a request that
// ctx abandons stays outstanding and its answer is read by the next call.
func (r *receiver) fetch(ctx context.Context) (*batch, error) {
	if !r.requested {
		if err := r.n.events.WriteFrame(r.next); err != nil {
			return nil, err
		}
		r.requested = true
	}
	for ctx.Done() != nil && r.n.events.Buffered() == 0 {
		wait := pollSlice
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			wait = max(time.Until(d), 0)
		}
		n, err := unix.Poll(r.pfd[:], int(wait/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("polling the events socket: %w", err)
		}
		if n > 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	f, fds, err := r.n.events.ReadFrame()
	if err != nil {
		return nil, err
	}
	r.requested = false
	b := batchPool.Get().(*batch)
	b.buf = append(b.buf[:0], f...)
	b.fds = fds
	b.refs.Store(1)
	if wire.Kind(f[4]) != wire.KindEvents {
		b.unref()
		return nil, fmt.Errorf("daemon answered NEXT_EVENTS with %s", wire.Kind(f[4]))
	}
	return b, nil
}

// Recv waits for the next event. It returns io.EOF after the last event
// (Stop), and ctx's error if ctx ends first.
func (n *Node) Recv(ctx context.Context) (*Event, error) {
	ev := new(Event)
	if err := n.RecvInto(ctx, ev); err != nil {
		return nil, err
	}
	if ev.hold != nil {
		// The cleanup's argument must not point into ev, or ev would
		// never become unreachable.
		h := &hold{r: ev.own.r, b: ev.own.b, region: ev.own.region}
		ev.hold, ev.own = h, hold{}
		runtime.AddCleanup(ev, (*hold).release, h)
	}
	return ev, nil
}

// RecvInto is Recv without allocating: it releases whatever ev held and
// fills it with the next event.
func (n *Node) RecvInto(ctx context.Context, ev *Event) error {
	ev.Release()
	if n.closed.Load() {
		return ErrClosed
	}
	r := &n.recv
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.cur != nil && r.left > 0 {
			r.left--
			if done, err := r.decode(ev); err != nil || done {
				return err
			}
			continue
		}
		if r.cur != nil {
			r.cur.unref()
			r.cur = nil
		}
		if r.ended {
			return io.EOF
		}
		if r.err != nil {
			return r.err
		}
		b, err := r.fetch(ctx)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return err
			}
			r.err = r.streamError(err)
			continue
		}
		r.cur = b
		r.dec.Reset(b.buf)
		r.left = r.dec.EventCount()
	}
}

func (r *receiver) streamError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return fmt.Errorf("dora node %q: the daemon closed the connection without a STOP event (did it crash?)", r.n.cfg.NodeID)
	}
	return fmt.Errorf("dora node %q: receiving events: %w", r.n.cfg.NodeID, err)
}

// decode fills ev from the next event of the current batch. done is false
// for events handled here and not shown to the caller.
func (r *receiver) decode(ev *Event) (done bool, err error) {
	var we wire.Event
	if err := r.dec.Event(&we); err != nil {
		r.err = fmt.Errorf("dora node %q: %w", r.n.cfg.NodeID, err)
		r.left = 0
		return true, r.err
	}
	*ev = Event{}
	switch we.Type {
	case wire.EventInput:
		ev.Type, ev.ID = Input, r.inputID(we.ID)
		if err := wire.DecodeMetadata(we.Metadata, &ev.Metadata); err != nil {
			return true, fmt.Errorf("dora node %q: input %q: %w", r.n.cfg.NodeID, ev.ID, err)
		}
		return true, r.attachData(ev, &we.Data)
	case wire.EventInputClosed:
		ev.Type, ev.ID = InputClosed, r.inputID(we.ID)
	case wire.EventStop:
		ev.Type = Stop
		r.ended = true
	case wire.EventError:
		ev.Type, ev.Err = Error, errors.New(string(we.Message))
	case wire.EventUnmap:
		r.unmap(we.Region)
		return false, nil
	}
	return true, nil
}

func (r *receiver) inputID(b []byte) string {
	if id, ok := r.n.inputs[string(b)]; ok {
		return id
	}
	return string(b)
}

func (r *receiver) attachData(ev *Event, d *wire.Data) error {
	switch d.Where {
	case wire.DataInline:
		ev.Data = d.Inline
		r.cur.refs.Add(1)
		ev.own = hold{r: r, b: r.cur}
		ev.hold = &ev.own
	case wire.DataShm:
		r.mapsMu.Lock()
		defer r.mapsMu.Unlock()
		m := r.maps[d.Region]
		if d.FDAttached {
			if len(r.cur.fds) == 0 {
				return fmt.Errorf("dora node %q: input %q: region %d announced without its descriptor", r.n.cfg.NodeID, ev.ID, d.Region)
			}
			fd := r.cur.fds[0]
			r.cur.fds = r.cur.fds[1:]
			if m != nil {
				unix.Close(fd)
			} else {
				region, err := shm.MapReadOnly(fd, d.RegionSize)
				if err != nil {
					return fmt.Errorf("dora node %q: input %q: %w", r.n.cfg.NodeID, ev.ID, err)
				}
				m = &mapping{region: region}
				r.maps[d.Region] = m
			}
		}
		if m == nil || d.Len > uint64(m.region.Size()) {
			return fmt.Errorf("dora node %q: input %q: unknown shared-memory region %d", r.n.cfg.NodeID, ev.ID, d.Region)
		}
		m.refs++
		ev.Data = m.region.Bytes()[:d.Len:d.Len]
		ev.own = hold{r: r, region: d.Region}
		ev.hold = &ev.own
	}
	return nil
}

// releaseRegion hands a region back to the daemon, and unmaps it if the
// daemon already retired it.
func (r *receiver) releaseRegion(key uint64) {
	r.mapsMu.Lock()
	if m := r.maps[key]; m != nil {
		m.refs--
		if m.refs == 0 && m.unmapped {
			m.region.Close()
			delete(r.maps, key)
		}
	}
	r.mapsMu.Unlock()
	if r.n.closed.Load() {
		return
	}
	keys := [1]uint64{key}
	_ = r.n.sendControl(func(e *wire.Encoder) []byte { return e.PutRegions(wire.KindRelease, keys[:]) })
}

func (r *receiver) unmap(key uint64) {
	r.mapsMu.Lock()
	defer r.mapsMu.Unlock()
	if m := r.maps[key]; m != nil {
		m.unmapped = true
		if m.refs == 0 {
			m.region.Close()
			delete(r.maps, key)
		}
	}
}

func (r *receiver) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		r.cur.unref()
		r.cur = nil
	}
	r.mapsMu.Lock()
	defer r.mapsMu.Unlock()
	for k, m := range r.maps {
		m.region.Close()
		delete(r.maps, k)
	}
}

// Events iterates over events until the last one (Stop) or an error, which
// Err then reports. Each event should be released when done with.
func (n *Node) Events(ctx context.Context) iter.Seq[*Event] {
	return func(yield func(*Event) bool) {
		for {
			ev, err := n.Recv(ctx)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				n.iterErr.Store(&err)
				return
			}
			if !yield(ev) {
				return
			}
		}
	}
}

// Err is the error that ended the last Events loop, or nil after a normal
// end.
func (n *Node) Err() error {
	if p := n.iterErr.Load(); p != nil {
		return *p
	}
	return nil
}
