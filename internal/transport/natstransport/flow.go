package natstransport

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Flow control. NATS core has none: a publisher on a fast link to the
// server outruns a subscriber on a slow one, and the server queues the
// difference for the subscriber (up to its pending limit, then it cuts
// the subscriber off and everything in between is lost). So subscribers
// acknowledge what they handled, and a publisher keeps at most a window of
// messages and bytes that its slowest subscriber has not acknowledged:
// Publish waits for room, and the daemon's drop-oldest queue in front of
// it drops instead, so what waits between two machines stays bounded.

// Defaults of Options.WindowMessages and Options.WindowBytes: small enough
// that a slow link holds well under a second of data, large enough to
// keep a fast one busy while acknowledgements travel back.
const (
	defaultWindowMessages = 1024
	defaultWindowBytes    = 2 << 20
	defaultStallTimeout   = 2 * time.Second
)

// A subscriber acknowledges after this many messages or bytes, and
// whenever it has handled everything that had arrived, so a publisher
// waiting for room never waits for an acknowledgement that is not coming.
const (
	ackEveryMessages = 32
	ackEveryBytes    = 512 << 10
)

// A publisher learns its subscribers from a roll call: a chunk of kind
// rollCall on the stream's subject (seq 0, count 1, nothing after the
// header), which every subscription answers with an acknowledgement.
//
// Acknowledgement, one NATS message on the stream's subject + ".ack",
// little-endian:
//
//	0  u8  version (1)
//	1  u8  kind: 1 handled up to seq, 2 unsubscribed
//	2  u16 reserved, 0
//	4  u32 reserved, 0
//	8  u64 subscription id, random, not 0
//	16 u64 seq: every message up to it was handled (delivered or lost)
const (
	ackSize    = 24
	kindAck    = 1
	kindBye    = 2
	ackSubject = ".ack"
	// rollCallEvery is how often an unanswered roll call is repeated,
	// until the stall timeout.
	rollCallEvery = 100 * time.Millisecond
)

func putAck(b []byte, kind uint8, sub, seq uint64) []byte {
	b = append(b[:0], chunkVersion, kind, 0, 0, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, sub)
	return binary.LittleEndian.AppendUint64(b, seq)
}

func parseAck(b []byte) (kind uint8, sub, seq uint64, ok bool) {
	if len(b) != ackSize || b[0] != chunkVersion || (b[1] != kindAck && b[1] != kindBye) {
		return 0, 0, 0, false
	}
	sub, seq = binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:])
	return b[1], sub, seq, sub != 0
}

// window is a publisher's view of its subscribers' acknowledgements.
type window struct {
	maxMessages uint64
	maxBytes    uint64
	stall       time.Duration
	expected    int    // subscriptions the publisher was told of
	rollCall    func() // asks every subscription to acknowledge
	log         *slog.Logger

	mu         sync.Mutex
	peers      map[uint64]*peer
	gone       map[uint64]bool // said bye: late acknowledgements are ignored
	introduced bool            // the roll call is over
	calling    time.Time       // when the current roll call began
	abandoned  bool            // the connection closed: nothing is waited for
	sent       uint64          // seq of the last message published
	total      uint64          // bytes published, cumulated
	cum        []uint64        // total after message seq, at [seq % len]; covers the window
	room       chan struct{}
}

type peer struct {
	acked    uint64
	progress time.Time // when acked last grew
}

func newWindow(o *Options, expected int, rollCall func(), log *slog.Logger) *window {
	w := &window{
		maxMessages: uint64(o.WindowMessages), maxBytes: uint64(o.WindowBytes), stall: o.StallTimeout,
		expected: expected, rollCall: rollCall, log: log,
		peers: make(map[uint64]*peer), gone: make(map[uint64]bool), room: make(chan struct{}, 1),
	}
	w.cum = make([]uint64, w.maxMessages+1)
	return w
}

// ack records what a subscriber says it handled. Subscribers are learnt
// from their first acknowledgement.
func (w *window) ack(b []byte) {
	kind, id, seq, ok := parseAck(b)
	if !ok {
		return
	}
	w.mu.Lock()
	seq = min(seq, w.sent) // no one handled what was not sent
	p := w.peers[id]
	switch {
	case kind == kindBye:
		delete(w.peers, id)
		w.gone[id] = true
	case w.gone[id]:
	case p == nil:
		if seq == 0 {
			// It has handled nothing: it joined now and owes nothing
			// sent before (0 at the start of a stream).
			seq = w.sent
		}
		w.peers[id] = &peer{acked: seq, progress: time.Now()}
	case seq > p.acked:
		p.acked, p.progress = seq, time.Now()
	}
	w.mu.Unlock()
	w.signal()
}

// forget drops every subscriber and calls the roll again: what was in
// flight when the connection broke is gone.
func (w *window) forget() {
	w.mu.Lock()
	clear(w.peers)
	w.introduced, w.calling = false, time.Time{}
	w.mu.Unlock()
	w.signal()
}

// abandon ends every wait: the connection is closing.
func (w *window) abandon() {
	w.mu.Lock()
	w.abandoned = true
	w.mu.Unlock()
	w.signal()
}

func (w *window) signal() {
	select {
	case w.room <- struct{}{}:
	default:
	}
}

// wait returns once a message of size bytes fits in the window. Before
// the first message it calls the roll until every expected subscription
// answered. A subscriber that acknowledges nothing for the stall timeout
// while the publisher waits (its machine went away, say) is no longer
// waited for, until it acknowledges again.
func (w *window) wait(size int) {
	w.await(func(acked uint64) bool { return w.fits(acked, uint64(size)) })
}

// drain returns once every subscriber acknowledged every message sent,
// with the same rules for those that acknowledge nothing.
func (w *window) drain() {
	w.await(func(acked uint64) bool { return acked >= w.sent })
}

// await returns once ok accepts the slowest acknowledgement. ok is called
// with mu held.
func (w *window) await(ok func(acked uint64) bool) {
	var since, called time.Time // when this wait began, when the roll was last called
	for {
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		w.mu.Lock()
		if w.abandoned {
			w.mu.Unlock()
			return
		}
		if !w.introduced && w.calling.IsZero() {
			w.calling = now
		}
		if !w.introduced && (len(w.peers) >= w.expected || now.Sub(w.calling) >= w.stall) {
			w.introduced = true
			if len(w.peers) < w.expected {
				w.log.Warn("not every subscriber on other machines answered; sending without waiting for them",
					"expected", w.expected, "answered", len(w.peers))
			}
		}
		if !w.introduced {
			w.mu.Unlock()
			if now.Sub(called) >= rollCallEvery {
				w.rollCall()
				called = now
			}
			w.sleep(rollCallEvery)
			continue
		}
		slowest, id := w.slowest()
		if slowest == nil || ok(slowest.acked) {
			w.mu.Unlock()
			return
		}
		idle := now.Sub(later(slowest.progress, since))
		if idle >= w.stall {
			delete(w.peers, id)
			w.mu.Unlock()
			w.log.Warn("a subscriber on another machine acknowledges nothing; no longer waiting for it",
				"for", idle.Round(time.Millisecond), "unacknowledged", w.sent-slowest.acked)
			continue
		}
		w.mu.Unlock()
		w.sleep(w.stall - idle)
	}
}

// sleep waits for an acknowledgement or d.
func (w *window) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.room:
	case <-t.C:
	}
}

// fits says whether one more message of size bytes may go while acked is
// the slowest acknowledgement. The window holds at least two messages of
// that size, so that large messages still follow each other without a
// pause for every acknowledgement. Called with mu held.
func (w *window) fits(acked, size uint64) bool {
	inFlight := w.sent - acked
	if inFlight == 0 {
		return true
	}
	if inFlight >= w.maxMessages {
		return false
	}
	return w.total-w.cum[acked%uint64(len(w.cum))]+size <= max(w.maxBytes, 2*size)
}

func (w *window) slowest() (*peer, uint64) {
	var s *peer
	var id uint64
	for k, p := range w.peers {
		if s == nil || p.acked < s.acked {
			s, id = p, k
		}
	}
	return s, id
}

// published records message seq of size bytes.
func (w *window) published(seq uint64, size int) {
	w.mu.Lock()
	w.sent = seq
	w.total += uint64(size)
	w.cum[seq%uint64(len(w.cum))] = w.total
	w.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// acker sends a subscription's acknowledgements.
type acker struct {
	nc      *nats.Conn
	subject string
	id      uint64
	buf     []byte

	messages, bytes int // handled since the last acknowledgement
}

func newAcker(nc *nats.Conn, streamSubject string) *acker {
	var b [8]byte
	var id uint64
	for id == 0 {
		rand.Read(b[:])
		id = binary.LittleEndian.Uint64(b[:])
	}
	return &acker{nc: nc, subject: streamSubject + ackSubject, id: id}
}

// acknowledge says every message up to seq was handled.
func (a *acker) acknowledge(seq uint64) {
	a.messages, a.bytes = 0, 0
	a.buf = putAck(a.buf, kindAck, a.id, seq)
	_ = a.nc.Publish(a.subject, a.buf)
}

// received counts chunk m, after which every message up to seq has been
// handled, messages of them just now, and acknowledges when it is time to.
func (a *acker) received(m *nats.Msg, messages, seq uint64) {
	a.bytes += len(m.Data)
	if messages == 0 {
		return
	}
	a.messages += int(messages)
	if a.messages < ackEveryMessages && a.bytes < ackEveryBytes && morePending(m.Sub) {
		return
	}
	// A lost acknowledgement is made up for by the next one.
	a.acknowledge(seq)
}

// morePending says whether chunks are waiting to be handled. Called from
// the subscription's handler, whose own chunk still counts as pending.
func morePending(sub *nats.Subscription) bool {
	if sub == nil {
		return false
	}
	n, _, err := sub.Pending()
	return err == nil && n > 1
}

// bye tells the publisher to stop waiting for this subscription.
func (a *acker) bye() {
	_ = a.nc.Publish(a.subject, putAck(nil, kindBye, a.id, 0))
}
