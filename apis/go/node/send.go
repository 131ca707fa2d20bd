package node

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/arrowconv"
	"github.com/dora-go/dora/shm"
)

// SendOption adjusts the metadata of one message.
type SendOption func(*Metadata)

// WithParameters attaches user parameters to a message.
func WithParameters(p map[string]Parameter) SendOption {
	return func(md *Metadata) { md.Parameters = p }
}

// WithOpenTelemetryContext propagates a trace context with a message.
func WithOpenTelemetryContext(ctx string) SendOption {
	return func(md *Metadata) { md.OpenTelemetryContext = ctx }
}

// SendOutputRaw sends size bytes that fill writes in place: for large
// messages buf is shared memory that receivers map directly, so the data
// is written once and never copied. fill must not call methods of n.
func (n *Node) SendOutputRaw(id string, size int, fill func(buf []byte), opts ...SendOption) error {
	return n.send(id, size, opts, func(buf []byte) (*wire.ArrayInfo, error) {
		fill(buf)
		return nil, nil
	})
}

// SendOutputBytes sends a copy of data.
func (n *Node) SendOutputBytes(id string, data []byte, opts ...SendOption) error {
	return n.send(id, len(data), opts, func(buf []byte) (*wire.ArrayInfo, error) {
		copy(buf, data)
		return nil, nil
	})
}

// SendOutput sends an Arrow array; receivers get an array of the same type
// that views the message buffer.
func (n *Node) SendOutput(id string, arr arrow.Array, opts ...SendOption) error {
	return n.send(id, arrowconv.Size(arr), opts, func(buf []byte) (*wire.ArrayInfo, error) {
		return arrowconv.Write(buf, arr)
	})
}

// SendOutputWithMetadata sends a copy of data with the caller's metadata:
// Type, when set, describes data as an Arrow array; a zero Timestamp is
// set to now. Runtimes forwarding operator outputs use it.
func (n *Node) SendOutputWithMetadata(id string, data []byte, md Metadata) error {
	return n.sendMetadata(id, len(data), &md, func(buf []byte) (*wire.ArrayInfo, error) {
		copy(buf, data)
		return md.Type, nil
	})
}

func (n *Node) send(id string, size int, opts []SendOption, write func([]byte) (*wire.ArrayInfo, error)) error {
	var md Metadata
	if len(opts) > 0 {
		md = applyOptions(opts)
	}
	return n.sendMetadata(id, size, &md, write)
}

// applyOptions is apart from send so that only messages with options pay
// for the metadata escaping to the heap.
func applyOptions(opts []SendOption) Metadata {
	var md Metadata
	for _, o := range opts {
		o(&md)
	}
	return md
}

func (n *Node) sendMetadata(id string, size int, md *Metadata, write func([]byte) (*wire.ArrayInfo, error)) error {
	if !n.outputs[id] {
		return fmt.Errorf("dora node %q: output %q is not declared in the dataflow (declared: %v)", n.cfg.NodeID, id, n.cfg.Outputs)
	}
	if n.closed.Load() {
		return ErrClosed
	}
	if size < n.cfg.ShmThreshold {
		return n.sendInline(id, size, md, write)
	}
	return n.sendShm(id, size, md, write)
}

func (n *Node) sendInline(id string, size int, md *Metadata, write func([]byte) (*wire.ArrayInfo, error)) error {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	if cap(n.scratch) < size {
		n.scratch = make([]byte, n.cfg.ShmThreshold)
	}
	buf := n.scratch[:size]
	info, err := write(buf)
	if err != nil {
		return fmt.Errorf("dora node %q: output %q: %w", n.cfg.NodeID, id, err)
	}
	md.Type = info
	stampNow(md)
	data := wire.Data{Where: wire.DataInline, Inline: buf}
	if size == 0 {
		data.Where = wire.DataNone
	}
	if o, ok := n.handoff.take(id); ok {
		if err := n.handoff.handOff(o, md, &data); err != nil {
			return fmt.Errorf("dora node %q: handing %q to its receiver: %w", n.cfg.NodeID, id, err)
		}
		return nil
	}
	e := &n.sendEnc
	e.Reset()
	e.PutSendOutputHeader(id, md)
	e.PutData(&data)
	if err := n.ctrl.WriteFrame(e.End(0)); err != nil {
		return fmt.Errorf("dora node %q: sending %q: %w", n.cfg.NodeID, id, err)
	}
	return nil
}

func (n *Node) sendShm(id string, size int, md *Metadata, write func([]byte) (*wire.ArrayInfo, error)) error {
	r, err := n.pool.Get(size)
	if err != nil {
		return fmt.Errorf("dora node %q: output %q: %w", n.cfg.NodeID, id, err)
	}
	info, err := write(r.Bytes()[:size])
	if err != nil {
		n.pool.Put(r.ID)
		return fmt.Errorf("dora node %q: output %q: %w", n.cfg.NodeID, id, err)
	}
	md.Type = info
	stampNow(md)

	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	e := &n.sendEnc
	n.announceDropped(e)
	if o, ok := n.handoff.take(id); ok {
		return n.handOffShm(id, o, r, size, md)
	}
	e.Reset()
	e.PutSendOutputHeader(id, md)
	e.U8(uint8(wire.DataShm))
	e.PutShm(!r.Announced, r.ID, uint64(r.Size()), uint64(size))
	if r.Announced {
		err = n.ctrl.WriteFrame(e.End(0))
	} else {
		err = n.ctrl.WriteFrame(e.End(1), r.FD())
	}
	if err != nil {
		n.pool.Abandon(r.ID)
		return fmt.Errorf("dora node %q: sending %q: %w", n.cfg.NodeID, id, err)
	}
	r.Announced = true
	return nil
}

// handOffShm hands a message in region r to the receiver of output id,
// then tells the daemon (with the region's descriptor the first time), so
// that it can give the region back to this node once the receiver has
// released it, or died. The daemon takes a release that overtakes the
// notice. The receiver gets the descriptor the first time this node
// hands it the region; it may have got it from the daemon before, and
// closes a descriptor of a region it has mapped. Called with sendMu held.
func (n *Node) handOffShm(id string, o *outputRoute, r *shm.PoolRegion, size int, md *Metadata) error {
	data := wire.Data{Where: wire.DataShm, Region: wire.RegionKey(n.handoff.self, r.ID), RegionSize: uint64(r.Size()), Len: uint64(size)}
	var fds []int
	if !o.given[r.ID] {
		data.FDAttached, fds = true, []int{r.FD()}
	}
	if err := n.handoff.handOff(o, md, &data, fds...); err != nil {
		n.pool.Abandon(r.ID)
		return fmt.Errorf("dora node %q: handing %q to its receiver: %w", n.cfg.NodeID, id, err)
	}
	e := &n.sendEnc
	e.Reset()
	f := e.PutHandedOff(id, !r.Announced, r.ID, uint64(r.Size()), uint64(size))
	var err error
	if r.Announced {
		err = n.ctrl.WriteFrame(f)
	} else {
		err = n.ctrl.WriteFrame(f, r.FD())
	}
	if err != nil {
		n.pool.Abandon(r.ID)
		return fmt.Errorf("dora node %q: sending %q: %w", n.cfg.NodeID, id, err)
	}
	r.Announced = true
	o.given[r.ID] = true
	return nil
}

// stampNow sets the send time, unless the caller forwards an older one.
func stampNow(md *Metadata) {
	if md.Timestamp == 0 {
		md.Timestamp = uint64(time.Now().UnixNano())
	}
}

// announceDropped tells the daemon about regions the pool retired, so it
// can close them too. Called with sendMu held.
func (n *Node) announceDropped(e *wire.Encoder) {
	n.dropMu.Lock()
	defer n.dropMu.Unlock()
	if len(n.dropped) == 0 {
		return
	}
	e.Reset()
	if err := n.ctrl.WriteFrame(e.PutRegions(wire.KindDropRegions, n.dropped)); err == nil {
		n.dropped = n.dropped[:0]
	}
}
