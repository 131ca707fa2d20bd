package main

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/dora-go/dora/coordinator"
	"github.com/dora-go/dora/internal/transport/natstransport"
	"github.com/spf13/cobra"
)

func newCoordinatorCmd() *cobra.Command {
	var cfg coordinator.Config
	var iface, controlIface, tlsCert, tlsKey string
	var port, controlPort int
	var verbose bool
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run the coordinator: it deploys dataflows to daemons and answers the CLI",
		Long: `The coordinator places each node of a dataflow on the daemon of its machine
(deploy.machine), starts the dataflow once every node everywhere has connected,
stops it everywhere and gathers how each node ended. Daemons connect to
--interface:--port, the CLI to --control-interface:--control-port.

Messages between machines travel over NATS: a server embedded in the
coordinator (on --interface:--nats-port) unless --nats-url names one.

Everything listens on 127.0.0.1 unless told otherwise. Listening beyond this
machine lets whoever reaches the port run programs on your daemons: set a
shared token with --token or $DORA_TOKEN, on the coordinator, every daemon and
the CLI, and use TLS (--tls-cert and --tls-key here, --tls-ca on daemons and
the CLI) so that neither the token nor your data cross the network in clear.`,
		Args:    cobra.NoArgs,
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = newLogger(cmd.ErrOrStderr(), verbose, slog.LevelInfo)
			cfg.ControlAddr = net.JoinHostPort(controlIface, strconv.Itoa(controlPort))
			cfg.DaemonAddr = net.JoinHostPort(iface, strconv.Itoa(port))
			var err error
			if cfg.TLS, err = serverTLS(tlsCert, tlsKey); err != nil {
				return err
			}
			for _, host := range []string{controlIface, iface} {
				if !isLoopback(host) {
					warnExposed(cmd, host, cfg.Token != "", cfg.TLS != nil)
					break
				}
			}
			c, err := coordinator.New(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "coordinator listening: CLI on %s, daemons on %s, messages between machines: %s\n", c.ControlAddr(), c.DaemonAddr(), c.NATS())
			return c.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&iface, "interface", "127.0.0.1", "`address` daemons connect to (and the embedded NATS server listens on)")
	f.IntVar(&port, "port", coordinator.DefaultDaemonPort, "`port` daemons connect to")
	f.StringVar(&controlIface, "control-interface", "127.0.0.1", "`address` the CLI connects to")
	f.IntVar(&controlPort, "control-port", coordinator.DefaultControlPort, "`port` the CLI connects to")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "use this NATS server or cluster (`URL`) instead of the embedded one")
	f.IntVar(&cfg.NATSPort, "nats-port", coordinator.DefaultNATSPort, "`port` of the embedded NATS server (0: any free port)")
	f.IntVar(&cfg.NATSMaxPayload, "nats-max-payload", natstransport.DefaultMaxPayload, "largest NATS message of the embedded server, in `bytes`; larger dora messages are split")
	f.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", coordinator.DefaultHeartbeatTimeout, "drop a daemon silent for this `duration` and fail its dataflows")
	tokenFlag(cmd, &cfg.Token)
	f.StringVar(&tlsCert, "tls-cert", "", "serve TLS on every port with the certificate (and intermediates) in this PEM `file` (default: $"+envTLSCert+")")
	f.StringVar(&tlsKey, "tls-key", "", "private key of --tls-cert, a PEM `file` (default: $"+envTLSKey+")")
	f.BoolVarP(&verbose, "verbose", "v", false, "show debug messages")
	return cmd
}

func warnExposed(cmd *cobra.Command, host string, token, tls bool) {
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "warning: listening on %s, beyond this machine: whoever reaches these ports can run programs through your daemons\n", host)
	if !token {
		fmt.Fprintf(w, "warning: no token is set: set $%s (or --token) here, on every daemon and for the CLI\n", envToken)
	}
	if !tls {
		fmt.Fprintf(w, "warning: no TLS: the token and every message cross the network in clear (see --tls-cert)\n")
	}
}
