package natstransport

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerOptions configure the NATS server a coordinator embeds.
type ServerOptions struct {
	// Host is the interface to listen on.
	Host string
	// Port to listen on; 0 picks a free one.
	Port int
	// MaxPayload is the largest NATS message; larger dora messages are
	// chunked. 0 means DefaultMaxPayload.
	MaxPayload int
	// Token, when set, is required from every client.
	Token string
	// TLS, when set, is required from every client.
	TLS *tls.Config
}

// DefaultMaxPayload is the embedded server's max payload: the largest the
// server accepts without warning. External servers default to 1 MiB.
const DefaultMaxPayload = 8 << 20

// Server is an embedded NATS server.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded NATS server and waits until it accepts
// connections.
func StartServer(o ServerOptions) (*Server, error) {
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	ns, err := server.NewServer(&server.Options{
		Host:       o.Host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: int32(o.MaxPayload),
		// Room for bursts of large messages before the server calls a
		// receiving daemon a slow consumer.
		MaxPending:    int64(max(256<<20, 8*o.MaxPayload)),
		Authorization: o.Token,
		TLSConfig:     o.TLS,
		TLS:           o.TLS != nil,
		TLSTimeout:    5,
		// Only dora's daemons connect: no HTTP monitoring, no JetStream.
		HTTPPort: 0,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring the embedded NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("the embedded NATS server did not start listening on %s (is the port in use?)", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
	}
	return &Server{ns: ns}, nil
}

// Port is the port the server listens on.
func (s *Server) Port() int {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// URL is a client URL for the server.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
