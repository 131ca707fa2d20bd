package runtime

import (
	"context"
	"sync"

	"github.com/dora-go/dora/internal/queue"
)

// queued is one event waiting for an operator, with what frees its data.
type queued struct {
	seq     uint64
	ev      Event
	release func()
}

func (q *queued) done() {
	if q.release != nil {
		q.release()
		q.release = nil
	}
}

type opInput struct {
	ring     *queue.Ring[queued]
	size     int
	internal bool // fed by another operator of this runtime node
	closed   bool
}

// opQueue is an operator's inbox: one drop-oldest ring per input, served
// oldest first, so a slow operator never holds up its neighbours and
// always gets the newest data.
type opQueue struct {
	mu      sync.Mutex
	wake    chan struct{}
	inputs  map[string]*opInput
	seq     uint64
	open    int
	stop    bool // Stop is due once nothing is queued and internal inputs closed
	reload  bool
	dropped map[string]uint64
}

func newOpQueue(inputs map[string]*opInput) *opQueue {
	return &opQueue{wake: make(chan struct{}, 1), inputs: inputs, open: len(inputs)}
}

func (q *opQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues an input event; it returns false (and frees the event) when
// the input is unknown or closed.
func (q *opQueue) push(id string, ev queued) bool {
	q.mu.Lock()
	in := q.inputs[id]
	if in == nil || in.closed {
		q.mu.Unlock()
		ev.done()
		return false
	}
	q.seq++
	ev.seq = q.seq
	old, dropped := in.ring.Push(ev, in.size)
	if dropped {
		if q.dropped == nil {
			q.dropped = make(map[string]uint64)
		}
		q.dropped[id]++
	}
	q.mu.Unlock()
	if dropped {
		old.done()
	}
	q.signal()
	return true
}

// closeInput queues InputClosed for one input; when every input is closed
// the operator gets Stop after its queued events.
func (q *opQueue) closeInput(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	in := q.inputs[id]
	if in == nil || in.closed {
		return
	}
	in.closed = true
	q.seq++
	in.ring.Push(queued{seq: q.seq, ev: Event{Type: EventInputClosed, ID: id}}, in.size+1)
	q.open--
	if q.open == 0 {
		q.stop = true
	}
	q.signal()
}

// requestStop is the node's Stop: inputs from outside the node close now;
// inputs from other operators close when those operators finish, so their
// last outputs still arrive.
func (q *opQueue) requestStop() {
	q.mu.Lock()
	ids := make([]string, 0, len(q.inputs))
	for id, in := range q.inputs {
		if !in.internal {
			ids = append(ids, id)
		}
	}
	q.stop = true
	q.mu.Unlock()
	for _, id := range ids {
		q.closeInput(id)
	}
	q.signal()
}

// closeAll closes every input, internal ones included.
func (q *opQueue) closeAll() {
	q.mu.Lock()
	ids := make([]string, 0, len(q.inputs))
	for id := range q.inputs {
		ids = append(ids, id)
	}
	q.mu.Unlock()
	for _, id := range ids {
		q.closeInput(id)
	}
}

func (q *opQueue) requestReload() {
	q.mu.Lock()
	q.reload = true
	q.mu.Unlock()
	q.signal()
}

// next waits for the operator's next event: stop reports that the event
// is the final Stop, reload that the operator's code changed.
func (q *opQueue) next(ctx context.Context) (ev queued, reload, stop bool, err error) {
	for {
		q.mu.Lock()
		if q.reload {
			q.reload = false
			q.mu.Unlock()
			return queued{}, true, false, nil
		}
		var best *opInput
		var bestSeq uint64
		internalOpen := false
		for _, in := range q.inputs {
			if h, ok := in.ring.Peek(); ok && (best == nil || h.seq < bestSeq) {
				best, bestSeq = in, h.seq
			}
			internalOpen = internalOpen || (in.internal && !in.closed)
		}
		if best != nil {
			ev, _ = best.ring.Pop()
			q.mu.Unlock()
			return ev, false, false, nil
		}
		if q.stop && !internalOpen {
			q.mu.Unlock()
			return queued{ev: Event{Type: EventStop}}, false, true, nil
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return queued{}, false, false, ctx.Err()
		}
	}
}

// drain frees everything still queued.
func (q *opQueue) drain() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, in := range q.inputs {
		in.closed = true
		for e, ok := in.ring.Pop(); ok; e, ok = in.ring.Pop() {
			e.done()
		}
	}
}

func newRing(size int) *queue.Ring[queued] {
	// One spare slot for the closed marker, which is never dropped.
	return queue.NewRing[queued](size + 1)
}
