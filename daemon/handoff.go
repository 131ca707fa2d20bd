package daemon

import (
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

// routesOf lists where n's outputs go on this machine. An output may be
// handed off when it feeds exactly one input, of another local node, and
// nothing elsewhere: with several receivers, one could answer a message
// to another that has not got the message itself yet.
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
		if dst := o.nodes[0]; len(o.subs) == 1 && o.remote == nil && dst != n && len(fds) < wire.MaxFDs {
			route.Direct, route.Input = true, o.subs[0].id
			fds = append(fds, dst.events.FD())
			dst.mu.Lock()
			dst.handoff = true
			dst.mu.Unlock()
		}
		r.Outputs = append(r.Outputs, route)
	}
	return r, fds
}
