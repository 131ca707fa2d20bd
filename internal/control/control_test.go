package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/testtls"
)

// serve accepts one connection with Accept and reports its outcome.
func serve(t *testing.T, role Role, token string) (addr string, result <-chan error) {
	return serveTLS(t, role, token, nil)
}

// serveTLS is serve with TLS when tlsConf is set.
func serveTLS(t *testing.T, role Role, token string, tlsConf *tls.Config) (addr string, result <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan error, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			ch <- err
			return
		}
		c, err := Accept(nc, role, token)
		if err == nil {
			c.Close()
		}
		ch <- err
	}()
	return l.Addr().String(), ch
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name        string
		serverRole  Role
		serverToken string
		clientRole  Role
		clientToken string
		want        error
	}{
		{"no token", RoleCLI, "", RoleCLI, "", nil},
		{"token accepted", RoleDaemon, "s3cret", RoleDaemon, "s3cret", nil},
		{"token ignored when none is required", RoleCLI, "", RoleCLI, "whatever", nil},
		{"missing token", RoleCLI, "s3cret", RoleCLI, "", ErrUnauthorized},
		{"wrong token", RoleCLI, "s3cret", RoleCLI, "s3cres", ErrUnauthorized},
		{"CLI on the daemon port", RoleDaemon, "", RoleCLI, "", ErrWrongPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, server := serve(t, tt.serverRole, tt.serverToken)
			c, err := Dial(context.Background(), addr, tt.clientRole, Credentials{Token: tt.clientToken}, 2*time.Second)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("client: %v; want %v", err, tt.want)
			}
			if serr := <-server; !errors.Is(serr, tt.want) || (tt.want == nil) != (serr == nil) {
				t.Fatalf("server: %v; want %v", serr, tt.want)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	files := testtls.New(t, "127.0.0.1")
	other := testtls.New(t, "127.0.0.1")
	elsewhere := testtls.New(t, "robot.example")
	tests := []struct {
		name           string
		server, client *tls.Config
		want           error
	}{
		{"TLS", files.ServerConfig(t), files.ClientConfig(t), nil},
		{"plain-text client", files.ServerConfig(t), nil, ErrTLSRequired},
		{"plain-text server", nil, files.ClientConfig(t), ErrNotTLS},
		{"certificate of another CA", files.ServerConfig(t), other.ClientConfig(t), ErrUntrusted},
		{"certificate for another host", elsewhere.ServerConfig(t), elsewhere.ClientConfig(t), ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, server := serveTLS(t, RoleCLI, "s3cret", tt.server)
			c, err := Dial(context.Background(), addr, RoleCLI, Credentials{Token: "s3cret", TLS: tt.client}, 2*time.Second)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("client: %v; want %v", err, tt.want)
			}
			if serr := <-server; (tt.want == nil) != (serr == nil) {
				t.Fatalf("server: %v; want an error: %t", serr, tt.want != nil)
			}
		})
	}
}

// rawHello is a client handshake with any version and token length.
func rawHello(version uint16, role Role, token string) []byte {
	b := append([]byte(nil), magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = append(b, byte(role), 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(token)))
	return append(b, token...)
}

func TestVersionMismatchIsExplained(t *testing.T) {
	addr, server := serve(t, RoleCLI, "")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(rawHello(Version+1, RoleCLI, ""))
	err = readReply(nc)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "speaks control protocol version 1 but the CLI speaks 2") {
		t.Fatalf("client sees %v", err)
	}
	if serr := <-server; !errors.Is(serr, ErrVersion) {
		t.Fatalf("server: %v", serr)
	}
}

// readReply decodes a server's handshake reply as Dial would.
func readReply(nc net.Conn) error {
	var head [10]byte
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		return err
	}
	msg := make([]byte, binary.LittleEndian.Uint16(head[8:]))
	io.ReadFull(nc, msg)
	switch Status(head[6]) {
	case StatusOK:
		return nil
	case StatusVersion:
		return errors.Join(ErrVersion, errors.New(string(msg)))
	}
	return errors.New(string(msg))
}

func TestServerRefusesGarbageWithoutHanging(t *testing.T) {
	tests := []struct {
		name string
		send []byte
	}{
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"oversize token", rawHello(Version, RoleCLI, strings.Repeat("t", MaxToken+1))},
		{"truncated", rawHello(Version, RoleCLI, "abc")[:7]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, server := serve(t, RoleCLI, "")
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.Write(tt.send)
			if tt.name == "truncated" {
				nc.(*net.TCPConn).CloseWrite()
			}
			defer nc.Close()
			select {
			case err := <-server:
				if err == nil {
					t.Fatal("accepted")
				}
			case <-time.After(HandshakeTimeout + 2*time.Second):
				t.Fatal("the server hangs")
			}
		})
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	c := &Conn{nc: pipeConn{&buf}}
	if err := c.Send(KindStart, StartRequest{File: "/a/b.yml", YAML: []byte("nodes: []"), Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(KindList, nil); err != nil {
		t.Fatal(err)
	}
	k, body, err := ReadFrame(&buf)
	if err != nil || k != KindStart {
		t.Fatalf("%v %v", k, err)
	}
	var req StartRequest
	if err := Decode(k, body, &req); err != nil || req.Name != "x" || string(req.YAML) != "nodes: []" {
		t.Fatalf("%+v %v", req, err)
	}
	if k, body, err := ReadFrame(&buf); err != nil || k != KindList || len(body) != 0 {
		t.Fatalf("%v %q %v", k, body, err)
	}
	if _, _, err := ReadFrame(&buf); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
}

func TestReadFrameRejects(t *testing.T) {
	frame := func(n uint32, rest ...byte) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), rest...) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty frame", frame(0), ErrMalformed},
		{"oversize frame", frame(MaxFrame + 1), ErrMalformed},
		{"truncated body", frame(10, 1, '{'), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ReadFrame(bytes.NewReader(tt.in)); !errors.Is(err, tt.want) {
				t.Fatalf("%v; want %v", err, tt.want)
			}
		})
	}
	if err := Decode(KindStart, []byte("{not json"), &StartRequest{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad JSON: %v", err)
	}
	if err := Expect(KindStart, CoordinatorToDaemon); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong direction: %v", err)
	}
	if err := Expect(Kind(200), CoordinatorToDaemon); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestTokensEqual(t *testing.T) {
	if !TokensEqual("", "anything") || !TokensEqual("a", "a") || TokensEqual("a", "b") || TokensEqual("a", "") {
		t.Fatal("TokensEqual is wrong")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(binary.LittleEndian.AppendUint32(nil, 3), byte(1))
	f.Add([]byte{5, 0, 0, 0, 3, '{', '}', 0, 0}, byte(0))
	f.Fuzz(func(t *testing.T, b []byte, _ byte) {
		k, body, err := ReadFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		var v struct {
			X any `json:"x"`
		}
		Decode(k, body, &v)
		Expect(k, CLIToCoordinator)
	})
}

func FuzzServerHandshake(f *testing.F) {
	f.Add(rawHello(Version, RoleCLI, "tok"))
	f.Add(rawHello(Version+1, RoleDaemon, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		serverHandshake(pipeConn{bytes.NewBuffer(b)}, RoleCLI, "tok")
	})
}

// pipeConn is a net.Conn over a buffer, for codec tests.
type pipeConn struct{ rw io.ReadWriter }

func (p pipeConn) Read(b []byte) (int, error)       { return p.rw.Read(b) }
func (p pipeConn) Write(b []byte) (int, error)      { return p.rw.Write(b) }
func (p pipeConn) Close() error                     { return nil }
func (p pipeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (p pipeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (p pipeConn) SetDeadline(time.Time) error      { return nil }
func (p pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p pipeConn) SetWriteDeadline(time.Time) error { return nil }
