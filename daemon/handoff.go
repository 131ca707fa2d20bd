package daemon

import (
	"fmt"
	"slices"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/handoff"
)

// sendRoutes sends ROUTES to every node that asked for the hand-off,
// before any node is told the dataflow started: each learns where its
// outputs go here, and gets the events socket of the receiver of each
// output that may be handed off. Without a table (too many nodes, or no
// memory) everything goes through the daemon, as for nodes that did not
// ask.
func (inst *instance) sendRoutes(running []*nodeState) {
	var senders []*nodeState
	inst.mu.Lock()
	for _, n := range running {
		if n.features&wire.FeatureHandoff != 0 {
			senders = append(senders, n)
		}
	}
	inst.mu.Unlock()
	if len(senders) == 0 || len(inst.nodes) > handoff.MaxSlots {
		return
	}
	t, err := handoff.New(len(inst.nodes))
	if err != nil {
		inst.log.Warn("no hand-off table: every message goes through the daemon", "err", err)
		return
	}
	inst.handoff.Store(t)
	var e wire.Encoder
	for _, n := range senders {
		routes, fds := inst.routesOf(n, t)
		e.Reset()
		if err := n.ctrl.WriteFrame(e.PutRoutes(routes), fds...); err != nil {
			inst.log.Debug("sending ROUTES", "node", n.id, "err", err)
		}
	}
}

// routesOf lists where n's outputs go on this machine.
func (inst *instance) routesOf(n *nodeState, t *handoff.Table) (*wire.Routes, []int) {
	r := &wire.Routes{Self: uint16(n.slot), Slots: uint16(t.Slots())}
	fds := []int{t.FD()}
	ids := make([]string, 0, len(n.outputs))
	for id := range n.outputs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		o := n.outputs[id]
		if len(o.nodes) == 0 {
			continue
		}
		route := wire.OutputRoute{OutputID: id}
		for _, dst := range o.nodes {
			route.Receivers = append(route.Receivers, uint16(dst.slot))
		}
		if q := o.handoff; q != nil && len(fds) < wire.MaxFDs {
			dst := q.node
			route.Direct, route.Input = true, q.id
			fds = append(fds, dst.events.FD())
			dst.mu.Lock()
			dst.handoff = true
			dst.mu.Unlock()
		}
		r.Outputs = append(r.Outputs, route)
	}
	return r, fds
}

// allowHandoffs marks the outputs whose messages may be handed off: those
// that feed exactly one input, of another local node, and nothing
// elsewhere. With several receivers, one could pass on an answer to a
// message to another that has not got the message itself yet.
func (inst *instance) allowHandoffs() {
	for _, n := range inst.nodes {
		for _, o := range n.outputs {
			if len(o.subs) == 1 && o.remote == nil && o.nodes[0] != n {
				o.handoff = o.subs[0]
			}
		}
	}
}

// handedOff is HANDED_OFF: n gave the receiver of an output a message in
// one of its regions. The receiver holds it until it releases it, which
// may already have happened.
func (n *nodeState) handedOff(h *wire.HandedOff, fds []int) error {
	o := n.outputs[string(h.OutputID)]
	if o == nil || o.handoff == nil {
		closeAll(fds)
		return fmt.Errorf("node handed off a message on output %q, which it may not hand off", h.OutputID)
	}
	r, err := n.regionFor(&h.Data, fds)
	if err != nil {
		return err
	}
	m := newMessage(nil, nil, 1)
	m.len = h.Data.Len
	if !r.load(m) {
		m.refs.Store(1)
		m.unref()
		return fmt.Errorf("region %d reused before every receiver released it", h.Data.Region)
	}
	dst := o.handoff.node
	dst.mu.Lock()
	gone := dst.gone
	if !gone && !dst.known[r.key] {
		dst.known[r.key] = true // the sender passed the descriptor
		r.addMapper(dst)
	}
	early := dst.early[r.key] > 0
	switch {
	case gone:
	case early:
		if dst.early[r.key]--; dst.early[r.key] == 0 {
			delete(dst.early, r.key)
		}
	default:
		dst.held[r.key]++
	}
	dst.mu.Unlock()
	if gone || early {
		m.unref()
	}
	return nil
}

// reclaimOffers runs when n is gone: a receiver whose request n had won
// but not recorded as answered may still be waiting for the answer, since
// n may have died before writing it. The daemon answers that request
// itself. If n did write its answer, the receiver gets one EVENTS frame
// more than it asked for, which clients take as the answer to their next
// request (abi/PROTOCOL.md): better than a receiver waiting forever.
func (n *nodeState) reclaimOffers() {
	t := n.inst.handoff.Load()
	if t == nil {
		return
	}
	for _, o := range n.outputs {
		if o.handoff == nil {
			continue
		}
		dst := o.handoff.node
		dst.mu.Lock()
		if t.TakenBy(dst.slot, n.slot) {
			t.Clear(dst.slot)
			if dst.offered {
				dst.offered = false
			} else {
				dst.result.HandedOff-- // counted when the offer was found taken
			}
			dst.pendingMax = dst.lastMax
			dst.deliverLocked()
		}
		dst.mu.Unlock()
	}
}
