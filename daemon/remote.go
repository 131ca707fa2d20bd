package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/internal/queue"
	"github.com/dora-go/dora/internal/transport"
	"github.com/dora-go/dora/shm"
	"golang.org/x/sys/unix"
)

// cluster is what an instance running part of a distributed dataflow needs
// beyond `dora run`: which nodes are its own, the transport to the other
// machines, and the coordinator. Its methods accept a nil receiver (a
// `dora run` instance) and then do nothing.
type cluster struct {
	dataflow string
	local    map[string]bool
	// placement is the machine of every node of the dataflow.
	placement map[string]string
	tr        transport.Transport
	coord     coordinatorLink
	// allReady is closed when the coordinator says every machine's nodes
	// have connected.
	allReady  chan struct{}
	readyOnce sync.Once
	// quiet is set when the coordinator asked for the stop, so it is not
	// asked back.
	quiet atomic.Bool

	streams map[transport.Stream]*remoteStream
	subs    []transport.Subscription
	pool    recvPool
	remotes []*remoteOutput

	// mu is held (shared) by stream handlers while they queue a message,
	// and exclusively by close, after which nothing more is queued.
	mu     sync.RWMutex
	closed bool
}

// coordinatorLink is how an instance reports to the coordinator.
type coordinatorLink interface {
	ready(dataflow string)
	askStop(dataflow, reason string)
	nodeExited(dataflow, node string)
	// outputClosed backs up the transport's end-of-stream marker.
	outputClosed(s transport.Stream, sent uint64)
}

func newCluster(dataflow string, local []string, placement map[string]string, tr transport.Transport, coord coordinatorLink) *cluster {
	cl := &cluster{
		dataflow:  dataflow,
		placement: placement,
		local:     make(map[string]bool, len(local)),
		tr:        tr,
		coord:     coord,
		allReady:  make(chan struct{}),
		streams:   make(map[transport.Stream]*remoteStream),
	}
	for _, id := range local {
		cl.local[id] = true
	}
	return cl
}

func (cl *cluster) runsHere(node string) bool { return cl == nil || cl.local[node] }

// feedFromRemote makes q receive the stream of an output on another
// machine.
func (cl *cluster) feedFromRemote(src descriptor.InputSource, q *inputQueue) {
	s := transport.Stream{Dataflow: cl.dataflow, Node: src.Node, Output: src.OutputID()}
	rs := cl.streams[s]
	if rs == nil {
		rs = &remoteStream{cl: cl, stream: s}
		cl.streams[s] = rs
	}
	rs.queues = append(rs.queues, q)
	if !containsNode(rs.nodes, q.node) {
		rs.nodes = append(rs.nodes, q.node)
	}
}

func containsNode(ns []*nodeState, n *nodeState) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

// publishToRemote gives a publisher to every output of a local node that
// a node on another machine subscribes to.
func (cl *cluster) publishToRemote(inst *instance, local map[string]*nodeState) {
	if cl == nil {
		return
	}
	type feed struct {
		sender   *nodeState
		output   *outputState
		limit    int
		machines map[string]bool
	}
	var feeds []*feed
	byOutput := make(map[*outputState]*feed)
	for _, spec := range inst.df.Nodes {
		if cl.local[spec.ID] {
			continue
		}
		for _, in := range nodeInputs(spec) {
			src := findInput(spec, in.ID).Source
			sender := local[src.Node]
			if src.IsTimer() || sender == nil {
				continue
			}
			o := sender.outputs[src.OutputID()]
			if o == nil {
				continue
			}
			f := byOutput[o]
			if f == nil {
				f = &feed{sender: sender, output: o, limit: 1, machines: make(map[string]bool)}
				byOutput[o] = f
				feeds = append(feeds, f)
			}
			f.limit = max(f.limit, in.QueueSize)
			f.machines[cl.machineOf(spec.ID)] = true
		}
	}
	for _, f := range feeds {
		s := transport.Stream{Dataflow: cl.dataflow, Node: f.sender.id, Output: f.output.id}
		f.output.remote = newRemoteOutput(s, cl.tr.Publisher(s, len(f.machines)), cl.coord, f.sender, f.limit)
		cl.remotes = append(cl.remotes, f.output.remote)
	}
}

// machineOf names the machine of a node of another machine; without a
// placement (an older coordinator) each node counts as a machine.
func (cl *cluster) machineOf(node string) string {
	if m, ok := cl.placement[node]; ok {
		return m
	}
	return "node " + node
}

// needsTransport reports whether any message crosses machines.
func needsTransport(inst *instance) bool {
	if len(inst.cl.streams) > 0 {
		return true
	}
	for _, n := range inst.nodes {
		for _, o := range n.outputs {
			if o.remote != nil {
				return true
			}
		}
	}
	return false
}

// subscribe subscribes to every stream a local input needs; once it
// returns, nothing published from then on is missed.
func (cl *cluster) subscribe() error {
	for s, rs := range cl.streams {
		sub, err := cl.tr.Subscribe(s, rs)
		if err != nil {
			return err
		}
		cl.subs = append(cl.subs, sub)
	}
	return nil
}

// close ends the subscriptions and frees the daemon's regions once every
// node has exited, and records what was lost on the way.
func (cl *cluster) close() {
	if cl == nil {
		return
	}
	for _, sub := range cl.subs {
		_ = sub.Unsubscribe()
	}
	// Publishers read regions the daemon closes next: let them finish,
	// all at once, since each may wait for a machine that went away.
	for _, ro := range cl.remotes {
		ro.end(nil)
	}
	for _, ro := range cl.remotes {
		ro.stop()
	}
	cl.mu.Lock()
	cl.closed = true
	cl.mu.Unlock()
	cl.pool.close()
	for _, rs := range cl.streams {
		lost := rs.lost.Load()
		if lost == 0 {
			continue
		}
		for _, q := range rs.queues {
			n := q.node
			if n.result.Lost == nil {
				n.result.Lost = make(map[string]uint64)
			}
			n.result.Lost[q.id] += lost
		}
	}
}

func (cl *cluster) stopped(dataflow, reason string) {
	if cl != nil && !cl.quiet.Load() {
		cl.coord.askStop(dataflow, reason)
	}
}

func (cl *cluster) nodeExited(dataflow, node string) {
	if cl != nil {
		cl.coord.nodeExited(dataflow, node)
	}
}

// remoteClosed is INPUT_CLOSED: an output of another machine closed
// after sent messages.
func (cl *cluster) remoteClosed(s transport.Stream, sent uint64) {
	if rs := cl.streams[s]; rs != nil {
		rs.closeAfter(sent)
	}
}

// markReady is ALL_NODES_READY.
func (cl *cluster) markReady() { cl.readyOnce.Do(func() { close(cl.allReady) }) }

// stopFromCoordinator is STOP_DATAFLOW.
func (inst *instance) stopFromCoordinator(reason string, grace time.Duration) {
	inst.cl.quiet.Store(true)
	if grace > 0 {
		inst.mu.Lock()
		inst.stopGrace = grace
		inst.mu.Unlock()
	}
	inst.requestStop(reason)
}

// awaitMachines is the start barrier across machines: every local node
// has connected; tell the coordinator and wait until every other machine
// is there too. Timers and REGISTER_REPLY wait for it.
func (inst *instance) awaitMachines(ctx context.Context, running []*nodeState, alive *int) bool {
	inst.cl.coord.ready(inst.id)
	var reason string
	for reason == "" {
		select {
		case <-inst.cl.allReady:
			return true
		case <-inst.exited:
			*alive-- // it connected, so it was not asked to stop yet: no failure
		case <-ctx.Done():
			reason = "interrupted before every machine was ready"
		case <-inst.stopCh:
			reason = inst.stopReasonOr("stopped before every machine was ready")
		}
	}
	inst.failStart(running, reason)
	return false
}

// remoteStream feeds the local inputs subscribed to an output on another
// machine. It is the transport.Handler of that stream.
type remoteStream struct {
	cl     *cluster
	stream transport.Stream
	queues []*inputQueue
	nodes  []*nodeState // the distinct nodes of queues
	lost   atomic.Uint64
	dec    wire.Decoder // only the stream's handler goroutine uses it

	// The stream ends with the transport's end marker or, should that be
	// lost, once the coordinator said how many messages were sent and
	// each has arrived or been counted lost (or closeWait has passed).
	mu      sync.Mutex
	seen    uint64 // messages delivered or counted lost
	closeAt uint64 // the sent count from INPUT_CLOSED; 0: not known yet
	timer   *time.Timer
	ended   bool
}

// closeWait bounds how long a stream whose sender closed waits for its
// last messages.
const closeWait = 2 * time.Second

var _ transport.Handler = (*remoteStream)(nil)

func (rs *remoteStream) Message(meta, data []byte) {
	cl := rs.cl
	cl.mu.RLock()
	defer cl.mu.RUnlock()
	if cl.closed {
		return
	}
	defer rs.advance(1)
	// Nodes decode the metadata: what another machine sends must be
	// valid before it reaches them.
	rs.dec.ResetBody(meta)
	rs.dec.SkipMetadata()
	if err := rs.dec.Done(); err != nil {
		rs.lost.Add(1)
		rs.queues[0].node.inst.log.Warn("dropping a message from another machine with invalid metadata", "stream", rs.stream.String(), "err", err)
		return
	}
	inst := rs.queues[0].node.inst
	var m *message
	if len(data) >= inst.opts.ShmThreshold {
		r, mem, err := cl.pool.get(inst, len(data))
		if err != nil {
			rs.lost.Add(1)
			inst.log.Error("no shared memory for a message from another machine", "stream", rs.stream.String(), "err", err)
			return
		}
		copy(mem, data)
		m = newMessage(meta, nil, len(rs.queues))
		m.len = uint64(len(data))
		r.load(m) // a free region holds no message
	} else {
		m = newMessage(meta, data, len(rs.queues))
	}
	fanOut(rs.queues, rs.nodes, m)
}

func (rs *remoteStream) Closed() {
	rs.cl.mu.RLock()
	defer rs.cl.mu.RUnlock()
	if !rs.cl.closed {
		rs.end(0)
	}
}

func (rs *remoteStream) Lost(n uint64) {
	rs.lost.Add(n)
	rs.cl.mu.RLock()
	defer rs.cl.mu.RUnlock()
	if !rs.cl.closed {
		rs.advance(n)
	}
}

// advance counts n more messages handled and ends the stream if they were
// the last. Called with cl.mu held (shared).
func (rs *remoteStream) advance(n uint64) {
	rs.mu.Lock()
	rs.seen += n
	due := rs.closeAt > 0 && rs.seen >= rs.closeAt
	rs.mu.Unlock()
	if due {
		rs.end(0)
	}
}

// closeAfter ends the stream once sent messages were handled, or after
// closeWait, counting the missing ones lost.
func (rs *remoteStream) closeAfter(sent uint64) {
	rs.cl.mu.RLock()
	defer rs.cl.mu.RUnlock()
	if rs.cl.closed {
		return
	}
	rs.mu.Lock()
	done := rs.ended || rs.closeAt > 0
	if !done {
		rs.closeAt = max(sent, 1)
		if rs.seen < sent {
			rs.timer = time.AfterFunc(closeWait, rs.giveUp)
		}
	}
	due := !done && rs.seen >= sent
	rs.mu.Unlock()
	if due {
		rs.end(0)
	}
}

func (rs *remoteStream) giveUp() {
	rs.cl.mu.RLock()
	defer rs.cl.mu.RUnlock()
	if rs.cl.closed {
		return
	}
	rs.mu.Lock()
	missing := rs.closeAt - min(rs.seen, rs.closeAt)
	rs.mu.Unlock()
	rs.end(missing)
}

// end closes the stream's inputs, once, counting missing messages lost.
// Called with cl.mu held (shared).
func (rs *remoteStream) end(missing uint64) {
	rs.mu.Lock()
	if rs.ended {
		rs.mu.Unlock()
		return
	}
	rs.ended = true
	if rs.timer != nil {
		rs.timer.Stop()
	}
	rs.mu.Unlock()
	rs.lost.Add(missing)
	for _, q := range rs.queues {
		q.node.closeInput(q)
	}
}

// remoteOutput publishes one local output to other machines. Messages go
// through a queue to a goroutine of its own, so the sending node's control
// loop never waits for the network; when the network is slower than the
// sender the queue drops its oldest message, as an input queue would, so
// memory and latency stay bounded instead of piling up in the transport.
type remoteOutput struct {
	stream transport.Stream
	pub    transport.Publisher
	coord  coordinatorLink
	sender *nodeState
	// limit is the largest queue_size among the remote subscribers.
	limit int

	mu      sync.Mutex
	queue   *queue.Ring[*message]
	ending  bool
	dropped uint64
	wake    chan struct{}
	done    chan struct{}

	// Only the publishing goroutine touches these.
	sent   uint64
	failed uint64
}

// remoteQueueCapacity bounds the ring; limit decides when it drops.
const remoteQueueCapacity = 1024

func newRemoteOutput(s transport.Stream, pub transport.Publisher, coord coordinatorLink, sender *nodeState, limit int) *remoteOutput {
	ro := &remoteOutput{
		stream: s, pub: pub, coord: coord, sender: sender, limit: limit,
		queue: queue.NewRing[*message](remoteQueueCapacity),
		wake:  make(chan struct{}, 1), done: make(chan struct{}),
	}
	go ro.run()
	return ro
}

// publish queues m for the other machines; the queue owns the message's
// reference for this delivery.
func (ro *remoteOutput) publish(n *nodeState, m *message) {
	ro.mu.Lock()
	if ro.ending {
		ro.mu.Unlock()
		m.unref()
		return
	}
	old, dropped := ro.queue.Push(m, min(ro.limit, remoteQueueCapacity))
	if dropped {
		ro.dropped++
		if ro.dropped == 1 {
			n.inst.log.Warn("the link to other machines is slower than the sender: dropping the oldest messages (counted in the summary)",
				"node", n.id, "output", ro.stream.Output)
		}
	}
	ro.mu.Unlock()
	if dropped {
		old.unref()
	}
	ro.signal()
}

// end closes the stream once what is queued has been published.
func (ro *remoteOutput) end(*nodeState) {
	ro.mu.Lock()
	ro.ending = true
	ro.mu.Unlock()
	ro.signal()
}

func (ro *remoteOutput) signal() {
	select {
	case ro.wake <- struct{}{}:
	default:
	}
}

// stop ends the stream, if the node did not, waits for the publisher,
// and records what it dropped.
func (ro *remoteOutput) stop() {
	ro.end(nil)
	<-ro.done
	ro.mu.Lock()
	dropped := ro.dropped
	ro.mu.Unlock()
	if dropped > 0 {
		n := ro.sender
		if n.result.RemoteDropped == nil {
			n.result.RemoteDropped = make(map[string]uint64)
		}
		n.result.RemoteDropped[ro.stream.Output] = dropped
	}
}

func (ro *remoteOutput) run() {
	defer close(ro.done)
	for {
		ro.mu.Lock()
		m, ok := ro.queue.Pop()
		ending := ro.ending
		ro.mu.Unlock()
		switch {
		case ok:
			ro.send(m)
		case ending:
			if err := ro.pub.End(); err != nil {
				ro.fail(err)
			}
			ro.coord.outputClosed(ro.stream, ro.sent)
			return
		default:
			<-ro.wake
		}
	}
}

// send publishes m and drops its reference: the transport has copied the
// payload when Publish returns.
func (ro *remoteOutput) send(m *message) {
	defer m.unref()
	data := m.inline
	if r := m.region; r != nil {
		view, err := r.mapView()
		if err != nil {
			ro.fail(err)
			return
		}
		data = view[:m.len]
	}
	ro.sent++
	if err := ro.pub.Publish(m.meta, data); err != nil {
		ro.fail(err)
	}
}

func (ro *remoteOutput) fail(err error) {
	ro.failed++
	log := ro.sender.inst.log
	if ro.failed == 1 {
		log.Warn("could not send to another machine (later failures are only counted)", "stream", ro.stream.String(), "err", err)
	} else {
		log.Debug("could not send to another machine", "stream", ro.stream.String(), "failures", ro.failed, "err", err)
	}
}

// mapView maps the region read-only into the daemon, once.
func (r *region) mapView() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.view == nil {
		mem, err := unix.Mmap(r.fd, 0, int(r.size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("mapping region %d to publish it: %w", r.key, err)
		}
		r.view = mem
	}
	return r.view, nil
}

func (r *region) unmapView() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.view != nil {
		_ = unix.Munmap(r.view)
		r.view = nil
	}
}

// recvPool holds the daemon's own shared-memory regions, into which
// large messages from other machines are copied so that local receivers
// still map them instead of reading them through their socket.
type recvPool struct {
	mu     sync.Mutex
	free   []*region
	mem    map[*region]*shm.Region // the daemon's writable mappings
	closed bool
}

// maxFreeRecv bounds the idle regions a pool keeps.
const maxFreeRecv = 16

// get lends a region of at least n bytes and its writable memory.
func (p *recvPool) get(inst *instance, n int) (*region, []byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, fmt.Errorf("the dataflow has ended")
	}
	best := -1
	for i, r := range p.free {
		if r.size >= uint64(n) && r.size <= 2*uint64(shm.SizeFor(n)) && (best < 0 || r.size < p.free[best].size) {
			best = i
		}
	}
	if best >= 0 {
		r := p.free[best]
		p.free = append(p.free[:best], p.free[best+1:]...)
		return r, p.mem[r].Bytes()[:n], nil
	}
	sr, err := shm.Create("dora-remote", shm.SizeFor(n))
	if err != nil {
		return nil, nil, err
	}
	fd, err := shm.Dup(sr.FD())
	if err != nil {
		sr.Close()
		return nil, nil, err
	}
	r := &region{inst: inst, fd: fd, size: uint64(sr.Size()), recycle: p.put}
	_ = inst.regions.add(r) // cannot fail for the daemon's own regions
	if p.mem == nil {
		p.mem = make(map[*region]*shm.Region)
	}
	p.mem[r] = sr
	return r, sr.Bytes()[:n], nil
}

// put takes back a region every receiver released.
func (p *recvPool) put(r *region) {
	p.mu.Lock()
	if !p.closed && len(p.free) < maxFreeRecv {
		p.free = append(p.free, r)
		p.mu.Unlock()
		return
	}
	sr := p.mem[r]
	delete(p.mem, r)
	p.mu.Unlock()
	r.retire()
	if sr != nil {
		sr.Close()
	}
}

// close unmaps the daemon's writable mappings; the regions' descriptors
// go with the instance's region table.
func (p *recvPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for r, sr := range p.mem {
		sr.Close()
		delete(p.mem, r)
	}
	p.free = nil
}
