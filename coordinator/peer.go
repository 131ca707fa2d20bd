package coordinator

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/dora-go/dora/internal/control"
)

// peer is a connection the event loop writes to without ever blocking:
// frames wait in a bounded queue that a writer goroutine drains. A peer
// that does not keep up is disconnected.
type peer struct {
	conn *control.Conn
	log  *slog.Logger
	out  chan outFrame

	closeOnce sync.Once
	closed    chan struct{}
}

type outFrame struct {
	kind control.Kind
	body []byte
	last bool // close the connection once it is written
}

const (
	peerQueue    = 4096
	writeTimeout = 10 * time.Second
)

func newPeer(conn *control.Conn, log *slog.Logger) *peer {
	p := &peer{conn: conn, log: log, out: make(chan outFrame, peerQueue), closed: make(chan struct{})}
	go p.write()
	return p
}

func (p *peer) write() {
	for {
		select {
		case f := <-p.out:
			p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := p.conn.SendRaw(f.kind, f.body); err != nil {
				p.log.Debug("writing", "peer", p.conn.Peer, "err", err)
				p.close()
				return
			}
			if f.last {
				p.close()
				return
			}
		case <-p.closed:
			return
		}
	}
}

// send queues a frame; false if the peer is gone or too slow (and now
// disconnected).
func (p *peer) send(k control.Kind, v any) bool { return p.queue(k, v, false) }

// sendLast queues the peer's last frame.
func (p *peer) sendLast(k control.Kind, v any) bool { return p.queue(k, v, true) }

func (p *peer) queue(k control.Kind, v any, last bool) bool {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			p.log.Error("encoding a frame", "kind", k, "err", err)
			return false
		}
	}
	select {
	case <-p.closed:
		return false
	default:
	}
	select {
	case p.out <- outFrame{kind: k, body: body, last: last}:
		return true
	default:
		p.log.Warn("peer does not keep up; disconnecting it", "peer", p.conn.Peer)
		p.close()
		return false
	}
}

func (p *peer) close() {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.conn.Close()
	})
}
