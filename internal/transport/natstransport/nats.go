// Package natstransport carries dataflow streams between daemons over NATS:
// the server embedded in the coordinator or an existing cluster.
//
// Every message of a stream is split into chunks that fit the server's
// max payload (1 MiB by default), each with a 32-byte header, so messages
// of any size arrive whole; per-stream sequence numbers let subscribers
// reassemble chunks in order and count messages lost on the way (NATS
// core delivers at most once). Subscribers acknowledge what they handled
// and publishers stay within a window of that (flow.go), since NATS core
// has no flow control of its own. The format is in abi/CONTROL.md,
// "Cross-machine messages".
package natstransport

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dora-go/dora/internal/transport"
	"github.com/nats-io/nats.go"
)

// Conn is a daemon's connection to NATS.
type Conn struct {
	nc   *nats.Conn
	log  *slog.Logger
	d    *dialer
	opts Options
	// windows of the open publishers: what was in flight when the
	// connection broke is gone, so a reconnection starts them afresh.
	windows sync.Map
}

var _ transport.Transport = (*Conn)(nil)

// Options configure Dial.
type Options struct {
	// Name shows in the server's connection list.
	Name string
	// Token authenticates to a server that requires one, unless the
	// endpoint URL carries credentials of its own.
	Token  string
	Logger *slog.Logger
	// WindowMessages and WindowBytes bound what a publisher sends ahead
	// of its slowest subscriber's acknowledgements; StallTimeout is how
	// long it waits for a subscriber that acknowledges nothing before it
	// stops waiting for it. Zero means the default (1024 messages, 2 MiB,
	// 2 s).
	WindowMessages int
	WindowBytes    int
	StallTimeout   time.Duration
	// TLS, when set, is how the server's certificate is checked; the
	// server must then speak TLS.
	TLS *tls.Config
}

// Subscriber buffers: a subscription whose handler falls this far behind
// starts losing messages (reported through Handler.Lost).
const (
	pendingMsgs  = 1 << 16
	pendingBytes = 512 << 20
)

// Dial connects to the NATS server at endpoint (a nats:// URL, or
// host:port). The connection reconnects by itself when the server goes
// away for a while.
func Dial(endpoint string, o Options) (*Conn, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WindowMessages <= 0 {
		o.WindowMessages = defaultWindowMessages
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = defaultWindowBytes
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = defaultStallTimeout
	}
	c := &Conn{log: o.Logger, d: &dialer{}, opts: o}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.Timeout(2 * time.Second),
		nats.SetCustomDialer(c.d),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("lost the NATS server; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("reconnected to the NATS server", "server", nc.ConnectedAddr())
			c.windows.Range(func(w, _ any) bool {
				w.(*window).forget()
				return true
			})
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			c.log.Warn("NATS", "subject", subject, "err", err)
		}),
	}
	if o.TLS != nil {
		opts = append(opts, nats.Secure(o.TLS))
	}
	if o.Token != "" && !strings.Contains(endpoint, "@") {
		// A URL with credentials brings its own.
		opts = append(opts, nats.Token(o.Token))
	}
	nc, err := nats.Connect(endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", endpoint, err)
	}
	c.nc = nc
	return c, nil
}

// dialer dials the address NATS asks for, unless Retarget named another.
type dialer struct {
	mu     sync.Mutex
	target string
	net.Dialer
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	if d.target != "" {
		address = d.target
	}
	d.mu.Unlock()
	return d.Dialer.Dial(network, address)
}

// Retarget reconnects to another server (host and port of endpoint);
// subscriptions are renewed on the new server.
func (c *Conn) Retarget(endpoint string) error {
	hostPort, err := hostPort(endpoint)
	if err != nil {
		return err
	}
	c.d.mu.Lock()
	same := c.d.target == hostPort || (c.d.target == "" && c.nc.ConnectedAddr() == hostPort)
	c.d.target = hostPort
	c.d.mu.Unlock()
	if same {
		return nil
	}
	c.log.Info("moving to another NATS server", "server", hostPort)
	if err := c.nc.ForceReconnect(); err != nil {
		return fmt.Errorf("reconnecting to NATS at %s: %w", hostPort, err)
	}
	return nil
}

func hostPort(endpoint string) (string, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "nats://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("NATS endpoint %q is not a URL or host:port", endpoint)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "4222"), nil
	}
	return u.Host, nil
}

// Close drops the connection and every subscription; publishers stop
// waiting for acknowledgements.
func (c *Conn) Close() error {
	c.windows.Range(func(w, _ any) bool {
		w.(*window).abandon()
		return true
	})
	c.nc.Close()
	return nil
}

// subject is where a stream's chunks travel. Ids may contain '.', which
// separates NATS subject tokens, and never '~'.
func subject(s transport.Stream) string {
	esc := func(id string) string { return strings.ReplaceAll(id, ".", "~") }
	return "dora." + esc(s.Dataflow) + "." + esc(s.Node) + "." + esc(s.Output)
}

// Chunk header, little-endian:
//
//	0  u8  version (1)
//	1  u8  kind: 1 data, 2 end of stream, 3 roll call (see flow.go)
//	2  u16 reserved, 0
//	4  u32 chunk index
//	8  u64 message sequence number, from 1, per stream
//	16 u32 chunk count
//	20 u32 metadata length
//	24 u64 data length
//	32     bytes [index*C, (index+1)*C) of metadata‖data, C = max payload − 32
const (
	headerSize   = 32
	chunkVersion = 1
	kindData     = 1
	kindEnd      = 2
	kindRollCall = 3
	// maxMetadata bounds a message's metadata.
	maxMetadata = 1 << 20
)

type header struct {
	kind    uint8
	index   uint32
	seq     uint64
	count   uint32
	metaLen uint32
	dataLen uint64
}

func (h *header) put(b []byte) []byte {
	b = append(b, chunkVersion, h.kind, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, h.index)
	b = binary.LittleEndian.AppendUint64(b, h.seq)
	b = binary.LittleEndian.AppendUint32(b, h.count)
	b = binary.LittleEndian.AppendUint32(b, h.metaLen)
	return binary.LittleEndian.AppendUint64(b, h.dataLen)
}

var errChunk = errors.New("malformed chunk")

func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes", errChunk, len(b))
	}
	if b[0] != chunkVersion {
		return header{}, fmt.Errorf("%w: version %d (this dora speaks %d)", errChunk, b[0], chunkVersion)
	}
	h := header{
		kind:    b[1],
		index:   binary.LittleEndian.Uint32(b[4:]),
		seq:     binary.LittleEndian.Uint64(b[8:]),
		count:   binary.LittleEndian.Uint32(b[16:]),
		metaLen: binary.LittleEndian.Uint32(b[20:]),
		dataLen: binary.LittleEndian.Uint64(b[24:]),
	}
	switch {
	case h.kind != kindData && h.kind != kindEnd:
		return h, fmt.Errorf("%w: kind %d", errChunk, h.kind)
	case h.count == 0 || h.index >= h.count:
		return h, fmt.Errorf("%w: chunk %d of %d", errChunk, h.index, h.count)
	case h.metaLen > maxMetadata:
		return h, fmt.Errorf("%w: %d bytes of metadata", errChunk, h.metaLen)
	case h.seq == 0:
		return h, fmt.Errorf("%w: sequence number 0", errChunk)
	}
	return h, nil
}

// Publisher returns the sending end of s. Before its first message it
// waits until that many subscriptions have answered its roll call.
func (c *Conn) Publisher(s transport.Stream, subscribers int) transport.Publisher {
	p := &publisher{c: c, subject: subject(s)}
	rollCall := (&header{kind: kindRollCall, count: 1}).put(nil)
	p.window = newWindow(&c.opts, subscribers, func() { _ = c.nc.Publish(p.subject, rollCall) }, c.log.With("stream", s.String()))
	acks, err := c.nc.Subscribe(p.subject+ackSubject, func(m *nats.Msg) { p.window.ack(m.Data) })
	if err != nil {
		// Only a closed connection refuses, and then nothing is sent anyway.
		c.log.Warn("publishing without flow control", "stream", s.String(), "err", err)
	}
	p.acks = acks
	c.windows.Store(p.window, nil)
	return p
}

type publisher struct {
	c       *Conn
	subject string
	seq     uint64
	buf     []byte
	window  *window
	acks    *nats.Subscription
}

func (p *publisher) Publish(meta, data []byte) error {
	if len(meta) > maxMetadata {
		return fmt.Errorf("publishing on %s: %d bytes of metadata (at most %d)", p.subject, len(meta), maxMetadata)
	}
	room := int(p.c.nc.MaxPayload()) - headerSize
	if room <= 0 {
		room = 1<<20 - headerSize // not connected yet: the NATS default
	}
	total := len(meta) + len(data)
	count := max(1, (total+room-1)/room)
	p.window.wait(total)
	p.seq++
	// Counted as sent even if a chunk fails: subscribers then count the
	// message lost and acknowledge past it.
	p.window.published(p.seq, total)
	h := header{kind: kindData, seq: p.seq, count: uint32(count), metaLen: uint32(len(meta)), dataLen: uint64(len(data))}
	for i := 0; i < count; i++ {
		lo, hi := i*room, min((i+1)*room, total)
		h.index = uint32(i)
		p.buf = h.put(p.buf[:0])
		if lo < len(meta) {
			p.buf = append(p.buf, meta[lo:min(hi, len(meta))]...)
		}
		if hi > len(meta) {
			p.buf = append(p.buf, data[max(lo-len(meta), 0):hi-len(meta)]...)
		}
		if err := p.c.nc.Publish(p.subject, p.buf); err != nil {
			return fmt.Errorf("publishing on %s: %w", p.subject, err)
		}
	}
	if cap(p.buf) > 4<<20 {
		p.buf = nil
	}
	return nil
}

// End returns once the subscribers have acknowledged everything, so that
// what the caller says next about the stream (the daemon's OUTPUT_CLOSED)
// does not overtake messages still on a slow link.
func (p *publisher) End() error {
	defer func() {
		if p.acks != nil {
			_ = p.acks.Unsubscribe()
		}
		p.c.windows.Delete(p.window)
	}()
	p.seq++
	p.window.published(p.seq, 0)
	h := header{kind: kindEnd, seq: p.seq, count: 1}
	if err := p.c.nc.Publish(p.subject, h.put(nil)); err != nil {
		return fmt.Errorf("closing %s: %w", p.subject, err)
	}
	p.window.drain()
	return nil
}

// Subscribe delivers s to h; it returns once the server knows the
// subscription.
func (c *Conn) Subscribe(s transport.Stream, h transport.Handler) (transport.Subscription, error) {
	r := &reassembler{h: h, log: c.log.With("stream", s.String())}
	ack := newAcker(c.nc, subject(s))
	sub, err := c.nc.Subscribe(subject(s), func(m *nats.Msg) {
		if isRollCall(m.Data) {
			ack.acknowledge(r.last)
			return
		}
		before := r.last
		r.chunk(m.Data)
		ack.received(m, r.last-before, r.last)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", s, err)
	}
	if err := sub.SetPendingLimits(pendingMsgs, pendingBytes); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("subscribing to %s: %w", s, err)
	}
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("subscribing to %s: %w", s, err)
	}
	return &subscription{sub: sub, ack: ack}, nil
}

type subscription struct {
	sub *nats.Subscription
	ack *acker
}

// Unsubscribe also tells the publisher not to wait for this subscription.
func (s *subscription) Unsubscribe() error {
	err := s.sub.Unsubscribe()
	s.ack.bye()
	return err
}

func isRollCall(b []byte) bool {
	return len(b) == headerSize && b[0] == chunkVersion && b[1] == kindRollCall
}

// reassembler turns a stream's chunks back into messages. Chunks arrive in
// publication order (one publisher, one subject); anything else means
// chunks were lost, and the messages they belonged to are counted as lost.
type reassembler struct {
	h   transport.Handler
	log *slog.Logger

	last    uint64 // sequence number of the last message handled
	cur     header // the message being assembled (cur.seq != 0)
	buf     []byte
	ended   bool
	badOnce bool
}

// assemblyHint bounds what is reserved up front for a message, so a
// header announcing a huge message costs nothing until its data arrives.
const assemblyHint = 64 << 20

func (r *reassembler) chunk(b []byte) {
	if r.ended {
		return
	}
	h, err := parseHeader(b)
	if err != nil {
		if !r.badOnce {
			r.badOnce = true
			r.log.Warn("ignoring a chunk that is not dora's", "err", err)
		}
		return
	}
	body := b[headerSize:]
	if h.seq <= r.last {
		return // already handled or given up
	}
	if r.cur.seq != 0 && h.seq != r.cur.seq {
		r.cur.seq = 0 // the rest of the message being assembled is lost
	}
	if r.cur.seq == 0 {
		if h.index != 0 {
			r.lose(h.seq) // joined in the middle of a message
			return
		}
		if missed := h.seq - r.last - 1; missed > 0 {
			r.h.Lost(missed)
		}
		if h.kind == kindEnd {
			r.last, r.ended = h.seq, true
			r.h.Closed()
			return
		}
		total := uint64(h.metaLen) + h.dataLen
		if h.count == 1 {
			r.last = h.seq
			if uint64(len(body)) != total {
				r.bad(fmt.Errorf("%w: one chunk of %d bytes for %d", errChunk, len(body), total))
				return
			}
			r.h.Message(body[:h.metaLen], body[h.metaLen:])
			return
		}
		r.cur = h
		if want := min(total, assemblyHint); uint64(cap(r.buf)) < want {
			r.buf = make([]byte, 0, want)
		}
		r.buf = append(r.buf[:0], body...)
		return
	}
	if h.index != r.cur.index+1 || h.count != r.cur.count || h.metaLen != r.cur.metaLen || h.dataLen != r.cur.dataLen {
		r.cur.seq = 0
		r.lose(h.seq)
		return
	}
	r.cur.index = h.index
	r.buf = append(r.buf, body...)
	if h.index+1 < h.count {
		return
	}
	r.cur.seq = 0
	r.last = h.seq
	if uint64(len(r.buf)) != uint64(h.metaLen)+h.dataLen {
		r.bad(fmt.Errorf("%w: %d bytes assembled for %d", errChunk, len(r.buf), uint64(h.metaLen)+h.dataLen))
		return
	}
	r.h.Message(r.buf[:h.metaLen], r.buf[h.metaLen:])
	if cap(r.buf) > assemblyHint {
		r.buf = nil
	}
}

// lose gives up on message seq and every one before it not yet handled.
func (r *reassembler) lose(seq uint64) {
	r.h.Lost(seq - r.last)
	r.last = seq
}

func (r *reassembler) bad(err error) {
	r.h.Lost(1)
	if !r.badOnce {
		r.badOnce = true
		r.log.Warn("dropping a malformed message", "err", err)
	}
}
