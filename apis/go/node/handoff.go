package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/handoff"
	"golang.org/x/sys/unix"
)

// handoffRoutes is what ROUTES said: for each output, the local nodes it
// feeds, and for outputs with a single receiver, that receiver's events
// socket, so a message can answer the receiver's pending request without
// waking the daemon (abi/PROTOCOL.md, "Hand-off"). Guarded by Node.sendMu.
type handoffRoutes struct {
	table *handoff.Table
	self  int
	// viaDaemon counts, per receiver slot, the messages sent to it
	// through the daemon; a hand-off waits until the daemon has routed
	// all of them, so it cannot overtake one.
	viaDaemon []uint64
	outputs   map[string]*outputRoute
	enc       wire.Encoder
}

type outputRoute struct {
	receivers []int
	input     string
	events    *wire.Conn // the receiver's events socket; nil unless direct
	// given holds the regions whose descriptor this node passed to the
	// receiver.
	given map[uint64]bool
}

// handoffWriteTimeout bounds a hand-off write. The receiver has read
// everything before asking again, so the write never waits for buffer
// space unless the receiver broke the protocol.
const handoffWriteTimeout = time.Second

// openRoutes takes the ROUTES frame f and its descriptors (it owns them).
func openRoutes(f []byte, fds []int) (*handoffRoutes, error) {
	routes, err := wire.NewDecoder(f).Routes()
	if err == nil && len(fds) != 1+routes.DirectCount() {
		err = fmt.Errorf("%w: ROUTES came with %d descriptors, want %d", wire.ErrMalformed, len(fds), 1+routes.DirectCount())
	}
	if err != nil {
		closeAll(fds)
		return nil, fmt.Errorf("reading ROUTES: %w", err)
	}
	t, err := handoff.Open(fds[0], int(routes.Slots))
	if err != nil {
		closeAll(fds[1:])
		return nil, err
	}
	h := &handoffRoutes{
		table:     t,
		self:      int(routes.Self),
		viaDaemon: make([]uint64, routes.Slots),
		outputs:   make(map[string]*outputRoute, len(routes.Outputs)),
	}
	next := 1
	for _, o := range routes.Outputs {
		r := &outputRoute{input: o.Input, given: make(map[uint64]bool)}
		for _, s := range o.Receivers {
			r.receivers = append(r.receivers, int(s))
		}
		h.outputs[o.OutputID] = r
		if o.Direct {
			unix.CloseOnExec(fds[next])
			r.events = wire.NewConn(fds[next])
			next++
			if err := r.events.SetWriteTimeout(handoffWriteTimeout); err != nil {
				h.close()
				closeAll(fds[next:])
				return nil, err
			}
		}
	}
	return h, nil
}

// take reports whether a message on output id may be handed off, and if
// so wins its receiver's pending request. Otherwise it counts the message
// as going through the daemon.
func (h *handoffRoutes) take(id string) (*outputRoute, bool) {
	if h == nil {
		return nil, false
	}
	o := h.outputs[id]
	if o == nil {
		return nil, false
	}
	if o.events != nil {
		to := o.receivers[0]
		if h.table.Routed(h.self, to) == h.viaDaemon[to] && h.table.Take(to, h.self) {
			return o, true
		}
	}
	for _, to := range o.receivers {
		h.viaDaemon[to]++
	}
	return nil, false
}

// handOff answers the receiver's request with one INPUT event. A receiver
// that is gone loses the message, as it would in the daemon's queue.
func (h *handoffRoutes) handOff(o *outputRoute, md *Metadata, data *wire.Data, fds ...int) error {
	e := &h.enc
	e.Reset()
	e.BeginEvents()
	e.U8(uint8(wire.EventInput))
	e.Str(o.input)
	e.PutMetadata(md)
	e.PutData(data)
	err := o.events.WriteFrame(e.EndEvents(1, len(fds)), fds...)
	h.table.Answered(o.receivers[0], h.self)
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return nil
	}
	return err
}

func (h *handoffRoutes) close() {
	if h == nil {
		return
	}
	for _, o := range h.outputs {
		if o.events != nil {
			o.events.Close()
		}
	}
	h.table.Close()
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
