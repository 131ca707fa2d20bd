// Package control speaks the control protocol between the dora CLI, the
// coordinator and the daemons, documented byte by byte in abi/CONTROL.md:
// a fixed binary handshake (magic, version, role, token), then frames of
// a u32 length, a u8 kind and a JSON body, over TCP. It is not on the
// data path: messages between nodes never travel through it.
package control

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Version is the control protocol version; peers that differ refuse each
// other in the handshake.
const Version uint16 = 1

// Limits of the wire format.
const (
	// MaxFrame bounds the kind byte plus the body of one frame.
	MaxFrame = 4 << 20
	// MaxToken bounds the token in the handshake.
	MaxToken = 1024
	// maxMessage bounds the handshake reply's message.
	maxMessage = 4096
)

// magic opens both halves of the handshake.
var magic = [4]byte{'D', 'O', 'R', 'A'}

// Role says who connects: the coordinator serves each role on its own port.
type Role uint8

const (
	RoleCLI    Role = 1
	RoleDaemon Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleCLI:
		return "CLI"
	case RoleDaemon:
		return "daemon"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Status is the server's verdict in the handshake.
type Status uint8

const (
	StatusOK           Status = 0
	StatusVersion      Status = 1
	StatusUnauthorized Status = 2
	StatusWrongPort    Status = 3
	StatusMalformed    Status = 4
)

// Errors the handshake wraps, so callers can tell them apart.
var (
	ErrVersion      = errors.New("control protocol version mismatch")
	ErrUnauthorized = errors.New("wrong or missing token")
	ErrWrongPort    = errors.New("wrong port for this role")
	ErrMalformed    = errors.New("malformed control frame")
	// ErrNotTLS: the client wanted TLS and the server does not speak it.
	ErrNotTLS = errors.New("it does not use TLS")
	// ErrTLSRequired: the server speaks TLS and the client did not.
	ErrTLSRequired = errors.New("it requires TLS")
	// ErrUntrusted: the server's certificate did not verify.
	ErrUntrusted = errors.New("its certificate is not trusted")
)

// Credentials are what a client shows the coordinator.
type Credentials struct {
	Token string
	// TLS, when set, wraps the connection in TLS, with the coordinator's
	// certificate checked against its RootCAs. Without a ServerName, the
	// host dialled is checked.
	TLS *tls.Config
}

// HandshakeTimeout bounds each side's handshake.
const HandshakeTimeout = 5 * time.Second

// Conn is one handshaken control connection. One goroutine reads; any
// number may Send.
type Conn struct {
	nc   net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
	wbuf []byte
	// Peer is the address the connection comes from.
	Peer string
	// Role is the role the client announced (servers) or used (clients).
	Role Role
}

func newConn(nc net.Conn, role Role) *Conn {
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), Peer: nc.RemoteAddr().String(), Role: role}
}

// Dial connects to addr and performs the client handshake within timeout
// (dialling, TLS and handshake together).
func Dial(ctx context.Context, addr string, role Role, cred Credentials, timeout time.Duration) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if cred.TLS != nil {
		cfg := cred.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, tlsError(err)
		}
		nc = tc
	}
	if err := clientHandshake(nc, role, cred.Token); err != nil {
		nc.Close()
		return nil, err
	}
	if !stop() {
		nc.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return newConn(nc, role), nil
}

func tlsError(err error) error {
	var header tls.RecordHeaderError
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &header):
		return fmt.Errorf("%w (its first bytes are not a TLS record)", ErrNotTLS)
	case errors.As(err, &authority), errors.As(err, &hostname), errors.As(err, &invalid):
		return fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	return fmt.Errorf("TLS handshake: %w", err)
}

// tlsAlert is the first byte of a TLS alert record: what a TLS server may
// answer a plain-text client with.
const tlsAlert = 0x15

func clientHandshake(nc net.Conn, role Role, token string) error {
	if len(token) > MaxToken {
		return fmt.Errorf("the token is %d bytes; at most %d are allowed", len(token), MaxToken)
	}
	if _, err := nc.Write(greeting(byte(role), token)); err != nil {
		return fmt.Errorf("sending the handshake: %w", err)
	}
	var head [10]byte
	if n, err := io.ReadFull(nc, head[:]); err != nil {
		if n > 0 && head[0] == tlsAlert || n == 0 && errors.Is(err, io.EOF) {
			// A TLS server drops a plain-text hello, with or without an alert.
			return fmt.Errorf("%w, or is not a dora coordinator (it closed the connection after a plain-text hello)", ErrTLSRequired)
		}
		return fmt.Errorf("reading the handshake reply (is this a dora coordinator?): %w", err)
	}
	if head[0] == tlsAlert && head[1] == 3 {
		return ErrTLSRequired
	}
	if [4]byte(head[:4]) != magic {
		return fmt.Errorf("%w: the peer is not a dora coordinator (handshake reply starts with %q)", ErrMalformed, head[:4])
	}
	version := binary.LittleEndian.Uint16(head[4:])
	status := Status(head[6])
	n := int(binary.LittleEndian.Uint16(head[8:]))
	if n > maxMessage {
		return fmt.Errorf("%w: handshake message of %d bytes", ErrMalformed, n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(nc, msg); err != nil {
		return fmt.Errorf("reading the handshake reply: %w", err)
	}
	switch status {
	case StatusOK:
		if version != Version {
			return fmt.Errorf("%w: the peer speaks version %d, this dora speaks %d", ErrVersion, version, Version)
		}
		return nil
	case StatusVersion:
		return fmt.Errorf("%w: %s", ErrVersion, msg)
	case StatusUnauthorized:
		return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
	case StatusWrongPort:
		return fmt.Errorf("%w: %s", ErrWrongPort, msg)
	default:
		return fmt.Errorf("%w: the peer refused the handshake (status %d): %s", ErrMalformed, status, msg)
	}
}

// Accept performs the server handshake on a new connection: the client
// must speak this Version, announce role, and present token (when token
// is not empty). A refused client gets the reason before the connection
// closes. The handshake must finish within HandshakeTimeout.
func Accept(nc net.Conn, role Role, token string) (*Conn, error) {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	status, msg, err := serverHandshake(nc, role, token)
	if status != StatusOK || err != nil {
		if status != StatusOK {
			reply(nc, status, msg)
		}
		nc.Close()
		if err == nil {
			err = fmt.Errorf("%s", msg)
		}
		return nil, fmt.Errorf("refused %s: %w", nc.RemoteAddr(), err)
	}
	if err := reply(nc, StatusOK, ""); err != nil {
		nc.Close()
		return nil, fmt.Errorf("answering the handshake of %s: %w", nc.RemoteAddr(), err)
	}
	nc.SetDeadline(time.Time{})
	return newConn(nc, role), nil
}

func serverHandshake(nc net.Conn, role Role, token string) (Status, string, error) {
	var head [10]byte
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		return StatusOK, "", fmt.Errorf("reading the handshake: %w", err)
	}
	if [4]byte(head[:4]) != magic {
		return StatusMalformed, "not a dora control connection", ErrMalformed
	}
	version := binary.LittleEndian.Uint16(head[4:])
	got := Role(head[6])
	n := int(binary.LittleEndian.Uint16(head[8:]))
	if n > MaxToken {
		return StatusMalformed, fmt.Sprintf("token of %d bytes; at most %d are allowed", n, MaxToken), ErrMalformed
	}
	tok := make([]byte, n)
	if _, err := io.ReadFull(nc, tok); err != nil {
		return StatusOK, "", fmt.Errorf("reading the handshake token: %w", err)
	}
	if version != Version {
		return StatusVersion, fmt.Sprintf("this coordinator speaks control protocol version %d but the %s speaks %d: use the same dora release for the CLI, the coordinator and every daemon", Version, got, version), ErrVersion
	}
	if !TokensEqual(token, string(tok)) {
		return StatusUnauthorized, "the coordinator requires a token and this one does not match (set DORA_TOKEN or --token)", ErrUnauthorized
	}
	if got != role {
		return StatusWrongPort, fmt.Sprintf("a %s connected to the port that serves the %s", got, role), ErrWrongPort
	}
	return StatusOK, "", nil
}

// TokensEqual compares a presented token with the expected one in time
// that depends on neither; an empty expected token accepts anything.
func TokensEqual(want, got string) bool {
	if want == "" {
		return true
	}
	a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// greeting is a hello (code: the role, text: the token) or its reply
// (code: the status, text: why); both have the same layout.
func greeting(code byte, text string) []byte {
	b := make([]byte, 0, 10+len(text))
	b = append(b, magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = append(b, code, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(text)))
	return append(b, text...)
}

func reply(nc net.Conn, status Status, msg string) error {
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	_, err := nc.Write(greeting(byte(status), msg))
	return err
}

// Send writes one frame whose body is v encoded as JSON (nil: no body).
func (c *Conn) Send(k Kind, v any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return fmt.Errorf("encoding %s: %w", k, err)
		}
	}
	return c.SendRaw(k, body)
}

// SendRaw writes one frame with an already encoded body.
func (c *Conn) SendRaw(k Kind, body []byte) error {
	if 1+len(body) > MaxFrame {
		return fmt.Errorf("%s frame of %d bytes exceeds the %d-byte limit", k, 1+len(body), MaxFrame)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = binary.LittleEndian.AppendUint32(c.wbuf[:0], uint32(1+len(body)))
	c.wbuf = append(c.wbuf, byte(k))
	c.wbuf = append(c.wbuf, body...)
	_, err := c.nc.Write(c.wbuf)
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // do not keep a large log chunk's buffer forever
	}
	if err != nil {
		return fmt.Errorf("sending %s: %w", k, err)
	}
	return nil
}

// Recv reads the next frame. The body is the caller's. io.EOF means the
// peer closed the connection between frames.
func (c *Conn) Recv() (Kind, []byte, error) {
	return ReadFrame(c.r)
}

// ReadFrame reads one frame from r.
func ReadFrame(r io.Reader) (Kind, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:4]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(head[:4])
	if n < 1 || n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: frame length %d (1 to %d allowed)", ErrMalformed, n, MaxFrame)
	}
	if _, err := io.ReadFull(r, head[4:]); err != nil {
		return 0, nil, unexpected(err)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, unexpected(err)
	}
	return Kind(head[4]), body, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Decode unmarshals a frame body into v; an empty body leaves v as is.
func Decode(k Kind, body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, k, err)
	}
	return nil
}

// SetReadDeadline bounds the next Recv.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline bounds the next Send.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// Close closes the connection; a blocked Recv returns.
func (c *Conn) Close() error { return c.nc.Close() }
