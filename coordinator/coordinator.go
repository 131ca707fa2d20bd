// Package coordinator deploys dataflows across the daemons of several
// machines and answers the CLI: daemons register with a machine id and
// send heartbeats; the coordinator places each node on its machine, holds
// the start until every machine's nodes have connected, stops dataflows
// everywhere, and gathers how every node ended.
//
// One event loop owns all state. Connection goroutines only read frames
// and turn them into events; writes go through per-connection queues, so
// a slow peer never blocks the loop.
package coordinator

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/dora-go/dora/internal/transport/natstransport"
)

// Default ports, as in dora-rs; the embedded NATS server takes the next
// one after the daemon port.
const (
	DefaultControlPort = 6012
	DefaultDaemonPort  = 53290
	DefaultNATSPort    = 53291
)

// Heartbeat defaults: every side sends a frame at least every
// DefaultHeartbeat and drops a peer silent for DefaultHeartbeatTimeout.
const (
	DefaultHeartbeat        = time.Second
	DefaultHeartbeatTimeout = 5 * time.Second
)

// Config configures a coordinator.
type Config struct {
	// ControlAddr is where the CLI connects (host:port).
	ControlAddr string
	// DaemonAddr is where daemons connect (host:port).
	DaemonAddr string
	// Token, when set, is required from every daemon and CLI, and from
	// every client of the embedded NATS server.
	Token string
	// TLS, when set, is the server side of TLS on both ports and on the
	// embedded NATS server: every client must speak TLS.
	TLS *tls.Config
	// NATSURL names an existing NATS server or cluster for cross-machine
	// messages; empty embeds one, listening on DaemonAddr's host.
	NATSURL string
	// NATSPort is the embedded server's port; 0 picks a free one.
	NATSPort int
	// NATSMaxPayload is the embedded server's max payload; 0 means
	// natstransport.DefaultMaxPayload.
	NATSMaxPayload   int
	Heartbeat        time.Duration
	HeartbeatTimeout time.Duration
	Logger           *slog.Logger
}

// Coordinator is a running coordinator.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	control net.Listener
	daemon  net.Listener
	nats    *natstransport.Server
	events  chan any
	done    chan struct{}

	// State below belongs to the event loop.
	daemons   map[string]*daemonConn
	dataflows map[string]*dataflow
	history   []*dataflow // ended dataflows, oldest first
	nextReq   uint64
	logReqs   map[uint64]*logReq
	destroy   *destroyState
}

// New binds the coordinator's ports and starts the embedded NATS server;
// Run serves them.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	c := &Coordinator{
		cfg:       cfg,
		log:       cfg.Logger,
		events:    make(chan any, 1024),
		done:      make(chan struct{}),
		daemons:   make(map[string]*daemonConn),
		dataflows: make(map[string]*dataflow),
		logReqs:   make(map[uint64]*logReq),
	}
	var err error
	if c.control, err = listen(cfg.ControlAddr, cfg.TLS); err != nil {
		return nil, fmt.Errorf("listening for the CLI: %w", err)
	}
	if c.daemon, err = listen(cfg.DaemonAddr, cfg.TLS); err != nil {
		c.control.Close()
		return nil, fmt.Errorf("listening for daemons: %w", err)
	}
	if cfg.NATSURL == "" {
		host, _, _ := net.SplitHostPort(cfg.DaemonAddr)
		c.nats, err = natstransport.StartServer(natstransport.ServerOptions{
			Host: host, Port: cfg.NATSPort, MaxPayload: cfg.NATSMaxPayload, Token: cfg.Token, TLS: cfg.TLS,
		})
		if err != nil {
			c.control.Close()
			c.daemon.Close()
			return nil, err
		}
	}
	return c, nil
}

func listen(addr string, tlsConf *tls.Config) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil || tlsConf == nil {
		return l, err
	}
	return tls.NewListener(l, tlsConf), nil
}

// ControlAddr is the address the CLI connects to.
func (c *Coordinator) ControlAddr() string { return c.control.Addr().String() }

// DaemonAddr is the address daemons connect to.
func (c *Coordinator) DaemonAddr() string { return c.daemon.Addr().String() }

// NATS describes where cross-machine messages go.
func (c *Coordinator) NATS() string {
	if c.nats == nil {
		return c.cfg.NATSURL
	}
	return "embedded server on port " + strconv.Itoa(c.nats.Port())
}

// Run serves until ctx ends or a CLI destroys the coordinator (then it
// returns nil once every daemon was told to exit).
func (c *Coordinator) Run(ctx context.Context) error {
	defer func() {
		close(c.done)
		c.control.Close()
		c.daemon.Close()
		for _, d := range c.daemons {
			d.close()
		}
		if c.nats != nil {
			c.nats.Shutdown()
		}
	}()
	go c.accept(c.control, control.RoleCLI)
	go c.accept(c.daemon, control.RoleDaemon)
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev := <-c.events:
			c.handle(ev)
		case now := <-tick.C:
			for _, d := range c.daemons {
				d.send(control.KindPing, nil)
			}
			c.checkDestroy(now)
		case <-ctx.Done():
			return nil
		}
		if c.destroy != nil && c.destroy.finished {
			// Let the DESTROYED frame reach the CLI.
			select {
			case <-c.destroy.cli.closed:
			case <-time.After(time.Second):
			}
			return nil
		}
	}
}

// Events, sent by connection goroutines to the loop.
type (
	daemonJoined struct {
		d   *daemonConn
		reg control.Register
	}
	daemonFrame struct {
		d    *daemonConn
		kind control.Kind
		body []byte
	}
	daemonLeft struct {
		d   *daemonConn
		err error
	}
	cliRequest struct {
		c    *cliConn
		kind control.Kind
		body []byte
	}
	cliLeft struct{ c *cliConn }
)

func (c *Coordinator) post(ev any) {
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

func (c *Coordinator) accept(l net.Listener, role control.Role) {
	for {
		nc, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.log.Error("accepting connections", "role", role, "err", err)
			}
			return
		}
		go func() {
			conn, err := control.Accept(nc, role, c.cfg.Token)
			if err != nil {
				c.log.Warn("refused a connection", "role", role, "err", err)
				return
			}
			if role == control.RoleDaemon {
				c.serveDaemon(conn)
			} else {
				c.serveCLI(conn)
			}
		}()
	}
}

// daemonConn is a connected daemon.
type daemonConn struct {
	*peer
	machine string
	host    string // the daemon's address as the coordinator sees it
}

func (c *Coordinator) serveDaemon(conn *control.Conn) {
	conn.SetReadDeadline(time.Now().Add(control.HandshakeTimeout))
	k, body, err := conn.Recv()
	var reg control.Register
	if err == nil && k != control.KindRegister {
		err = fmt.Errorf("%w: %s before REGISTER", control.ErrMalformed, k)
	}
	if err == nil {
		err = control.Decode(k, body, &reg)
	}
	if err != nil {
		c.log.Warn("daemon did not register", "peer", conn.Peer, "err", err)
		conn.Close()
		return
	}
	d := &daemonConn{peer: newPeer(conn, c.log), machine: reg.MachineID, host: conn.Peer}
	c.post(daemonJoined{d: d, reg: reg})
	for {
		conn.SetReadDeadline(time.Now().Add(c.cfg.HeartbeatTimeout))
		k, body, err := conn.Recv()
		if err == nil {
			err = control.Expect(k, control.DaemonToCoordinator)
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				err = fmt.Errorf("no heartbeat for %s", c.cfg.HeartbeatTimeout)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
				err = errors.New("its connection closed (the daemon exited, or its machine went away)")
			}
			d.close()
			c.post(daemonLeft{d: d, err: err})
			return
		}
		if k != control.KindHeartbeat {
			c.post(daemonFrame{d: d, kind: k, body: body})
		}
	}
}

// cliConn is a CLI connection: one request, then answers until the
// coordinator closes it.
type cliConn struct {
	*peer
	kind control.Kind
}

func (c *Coordinator) serveCLI(conn *control.Conn) {
	conn.SetReadDeadline(time.Now().Add(control.HandshakeTimeout))
	k, body, err := conn.Recv()
	if err == nil {
		err = control.Expect(k, control.CLIToCoordinator)
	}
	cli := &cliConn{peer: newPeer(conn, c.log), kind: k}
	if err != nil {
		cli.sendLast(control.KindError, control.ErrorReply{Message: err.Error()})
		return
	}
	c.post(cliRequest{c: cli, kind: k, body: body})
	// The CLI sends nothing more; a read returns when it leaves.
	conn.SetReadDeadline(time.Time{})
	conn.Recv()
	cli.close()
	c.post(cliLeft{c: cli})
}

func (c *Coordinator) handle(ev any) {
	switch ev := ev.(type) {
	case daemonJoined:
		c.daemonJoined(ev.d, ev.reg)
	case daemonFrame:
		if c.daemons[ev.d.machine] != ev.d {
			return // refused or already dropped
		}
		if err := c.daemonFrame(ev.d, ev.kind, ev.body); err != nil {
			c.log.Warn("daemon broke the protocol; dropping it", "machine", ev.d.machine, "err", err)
			ev.d.close()
			c.daemonLeft(ev.d, err)
		}
	case daemonLeft:
		c.daemonLeft(ev.d, ev.err)
	case cliRequest:
		c.cliRequest(ev.c, ev.kind, ev.body)
	case cliLeft:
		c.cliLeft(ev.c)
	}
	c.checkDestroy(time.Now())
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// machineName shows a machine id; the default daemon has none.
func machineName(id string) string {
	if id == "" {
		return "(default)"
	}
	return id
}
