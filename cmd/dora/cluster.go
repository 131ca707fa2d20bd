package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dora-go/dora/coordinator"
	"github.com/dora-go/dora/daemon"
	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

// envToken holds the shared token when --token is not given.
const envToken = "DORA_TOKEN"

// dialTimeout bounds reaching the coordinator, so a CLI pointed at a dead
// one says so promptly.
const dialTimeout = time.Second

// coordinatorTarget is how a CLI command reaches the coordinator's
// control port.
type coordinatorTarget struct {
	addr  string
	port  int
	token string
	tlsCA string
}

func (t *coordinatorTarget) flags(c *cobra.Command) {
	c.Flags().StringVar(&t.addr, "coordinator-addr", "127.0.0.1", "`address` of the coordinator: HOST, or HOST:PORT")
	c.Flags().IntVar(&t.port, "coordinator-port", coordinator.DefaultControlPort, "control `port` of the coordinator, when --coordinator-addr has none")
	tokenFlag(c, &t.token)
	tlsCAFlag(c, &t.tlsCA)
}

// tlsCAFlag adds --tls-ca, for the clients of a coordinator that uses TLS.
func tlsCAFlag(c *cobra.Command, file *string) {
	c.Flags().StringVar(file, "tls-ca", "", "speak TLS to the coordinator and check its certificate against the CA certificates in this PEM `file` (default: $"+envTLSCA+")")
}

// credentials are what the CLI shows the coordinator.
func (t *coordinatorTarget) credentials() (control.Credentials, error) {
	tlsConf, err := clientTLS(t.tlsCA)
	return control.Credentials{Token: t.token, TLS: tlsConf}, err
}

// dial connects to the coordinator's control port.
func (t *coordinatorTarget) dial(ctx context.Context) (*control.Conn, error) {
	cred, err := t.credentials()
	if err != nil {
		return nil, err
	}
	addr := t.address()
	conn, err := control.Dial(ctx, addr, control.RoleCLI, cred, dialTimeout)
	if err != nil {
		return nil, dialError(addr, err)
	}
	return conn, nil
}

// tokenFlag adds --token; without it the command takes $DORA_TOKEN (read
// when it runs, so that help never shows the token).
func tokenFlag(c *cobra.Command, token *string) {
	c.Flags().StringVar(token, "token", "", "shared `token` the coordinator requires (default: $"+envToken+")")
	c.PreRun = func(*cobra.Command, []string) {
		if *token == "" {
			*token = os.Getenv(envToken)
		}
	}
}

// hostPort joins addr and a default port unless addr has its own.
func hostPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
}

func (t *coordinatorTarget) address() string { return hostPort(t.addr, t.port) }

// request connects and sends one request.
func (t *coordinatorTarget) request(ctx context.Context, k control.Kind, body any) (*control.Conn, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := conn.Send(k, body); err != nil {
		conn.Close()
		return nil, fmt.Errorf("coordinator at %s: %w", t.address(), err)
	}
	return conn, nil
}

func dialError(addr string, err error) error {
	switch {
	case errors.Is(err, control.ErrVersion):
		return fmt.Errorf("coordinator at %s: %w", addr, err)
	case errors.Is(err, control.ErrUnauthorized):
		return fmt.Errorf("coordinator at %s refused the token: set $%s (or --token) to the coordinator's token", addr, envToken)
	case errors.Is(err, control.ErrWrongPort):
		return fmt.Errorf("%s is the coordinator's daemon port; the CLI uses its control port (default %d): %w", addr, coordinator.DefaultControlPort, err)
	case errors.Is(err, control.ErrMalformed):
		return fmt.Errorf("%s does not answer like a dora coordinator: %w", addr, err)
	case errors.Is(err, control.ErrTLSRequired):
		return fmt.Errorf("coordinator at %s: %w: pass the CA that signed its certificate with --tls-ca (or $%s)", addr, err, envTLSCA)
	case errors.Is(err, control.ErrNotTLS):
		return fmt.Errorf("coordinator at %s: %w: drop --tls-ca (and $%s), or start it with --tls-cert and --tls-key", addr, err, envTLSCA)
	case errors.Is(err, control.ErrUntrusted):
		return fmt.Errorf("coordinator at %s: %w: --tls-ca (or $%s) must hold the CA that signed it, for this host name or address", addr, err, envTLSCA)
	}
	return fmt.Errorf("no coordinator at %s: run `dora up` first (%v)", addr, err)
}

// reply reads the next frame, turning ERROR into an error.
func reply(conn *control.Conn) (control.Kind, []byte, error) {
	k, body, err := conn.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, errors.New("the coordinator closed the connection (did it stop?)")
		}
		return 0, nil, fmt.Errorf("reading from the coordinator: %w", err)
	}
	if err := control.Expect(k, control.CoordinatorToCLI); err != nil {
		return 0, nil, err
	}
	if k == control.KindError {
		var e control.ErrorReply
		if err := control.Decode(k, body, &e); err != nil {
			return 0, nil, err
		}
		return 0, nil, errors.New(e.Message)
	}
	return k, body, nil
}

// frames reads frames on a goroutine, so the caller can also watch its
// context; the channel closes after an error or the connection's end.
type frame struct {
	kind control.Kind
	body []byte
	err  error
}

func frames(conn *control.Conn) <-chan frame {
	ch := make(chan frame, 16)
	go func() {
		defer close(ch)
		for {
			k, body, err := reply(conn)
			ch <- frame{kind: k, body: body, err: err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// toResult turns a coordinator RESULT into the daemon's Result, so that
// `dora start --attach` and `dora stop` report exactly like `dora run`.
func toResult(r *control.Result) *daemon.Result {
	res := &daemon.Result{DataflowID: r.UUID, StopReason: r.StopReason}
	for _, n := range r.Nodes {
		nr := daemon.NodeResult{
			ID: n.ID, ExitCode: n.ExitCode, Signal: n.Signal, StderrTail: n.StderrTail,
			Dropped: n.Dropped, Lost: n.Lost, RemoteDropped: n.RemoteDropped, LogFile: n.LogFile,
		}
		if n.Error != "" {
			nr.Err = errors.New(n.Error)
		}
		if n.Machine != "" && n.LogFile != "" {
			nr.LogFile = fmt.Sprintf("%s on machine %s (dora logs %s %s)", n.LogFile, n.Machine, r.UUID, n.ID)
		}
		res.Nodes = append(res.Nodes, nr)
	}
	return res
}

// isLoopback reports whether host only accepts connections from this
// machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
