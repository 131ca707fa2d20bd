package runtime

import (
	"context"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/apis/go/node"
)

// NodeLink connects a runtime to its daemon through the Go node API.
type NodeLink struct{ N *node.Node }

var _ Daemon = NodeLink{}

var eventTypes = map[node.EventType]EventType{
	node.Input: EventInput, node.InputClosed: EventInputClosed, node.Stop: EventStop, node.Error: EventError,
}

// Next implements Daemon.
func (l NodeLink) Next(ctx context.Context) (Incoming, error) {
	ev, err := l.N.Recv(ctx)
	if err != nil {
		return Incoming{}, err
	}
	in := Incoming{Event: Event{Type: eventTypes[ev.Type], ID: ev.ID, Data: ev.Data, Metadata: ev.Metadata}, Release: ev.Release}
	if ev.Err != nil {
		in.Error = ev.Err.Error()
	}
	return in, nil
}

// Send implements Daemon.
func (l NodeLink) Send(id string, data []byte, md wire.Metadata) error {
	return l.N.SendOutputWithMetadata(id, data, md)
}

// CloseOutputs implements Daemon.
func (l NodeLink) CloseOutputs(ids ...string) error { return l.N.CloseOutputs(ids...) }

// StopDataflow implements Daemon.
func (l NodeLink) StopDataflow(reason string) error { return l.N.StopDataflow(reason) }
