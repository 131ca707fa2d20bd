package main

import (
	"log/slog"

	"github.com/dora-go/dora/coordinator"
	"github.com/dora-go/dora/daemon"
	"github.com/dora-go/dora/internal/transport"
	"github.com/dora-go/dora/internal/transport/natstransport"
	"github.com/spf13/cobra"
)

func newDaemonCmd() *cobra.Command {
	var o daemon.ServeOptions
	var addr, runDataflow, tlsCA string
	var port int
	var verbose bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a daemon: it spawns the nodes of its machine and moves their messages",
		Long: `A daemon registers with the coordinator under its machine id and runs the
nodes that dataflows place on that machine (deploy.machine; nodes without one
go to the daemon started without --machine-id). Messages between its nodes use
shared memory; messages to and from other machines travel over the NATS server
the coordinator names.

When the coordinator goes away, running dataflows go on and the daemon keeps
trying to reconnect (backing off up to 5s between attempts).`,
		Example: "  dora daemon --machine-id robot --coordinator-addr 192.168.1.10:53290",
		Args:    cobra.NoArgs,
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = newLogger(cmd.ErrOrStderr(), verbose, slog.LevelInfo)
			if runDataflow != "" {
				return runAlone(cmd, runDataflow, o.Options)
			}
			o.Coordinator = hostPort(addr, port)
			var err error
			if o.TLS, err = clientTLS(tlsCA); err != nil {
				return err
			}
			log := o.Logger
			o.Transport = func(endpoint string, embedded bool) (transport.Transport, error) {
				nopts := natstransport.Options{Name: "dora-daemon " + o.MachineID, Token: o.Token, Logger: log}
				if embedded {
					// A server of its own (--nats-url) brings its own TLS
					// settings in its URL; the embedded one shares the
					// coordinator's certificate.
					nopts.TLS = o.TLS
				}
				return natstransport.Dial(endpoint, nopts)
			}
			log.Info("daemon starting", "machine", o.MachineID, "coordinator", o.Coordinator)
			return daemon.Serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.MachineID, "machine-id", "", "id of this machine, as in deploy.machine (empty: the default daemon)")
	f.StringVar(&addr, "coordinator-addr", "127.0.0.1", "`address` of the coordinator: HOST, or HOST:PORT")
	f.IntVar(&port, "coordinator-port", coordinator.DefaultDaemonPort, "daemon `port` of the coordinator, when --coordinator-addr has none")
	tokenFlag(cmd, &o.Token)
	tlsCAFlag(cmd, &tlsCA)
	f.DurationVar(&o.Grace, "grace", daemon.DefaultGrace, "how long nodes get to exit after Stop before they are killed")
	f.DurationVar(&o.ConnectTimeout, "connect-timeout", daemon.DefaultConnectTimeout, "how long nodes get to connect before their dataflow fails")
	f.StringVar(&runDataflow, "run-dataflow", "", "run this dataflow `FILE` alone, without a coordinator (as `dora run`)")
	f.BoolVarP(&verbose, "verbose", "v", false, "show debug messages")
	return cmd
}

// runAlone is `dora daemon --run-dataflow`.
func runAlone(cmd *cobra.Command, file string, opts daemon.Options) error {
	df, err := load(cmd, file)
	if err != nil {
		return err
	}
	opts.Output = cmd.OutOrStdout()
	res, err := daemon.Run(cmd.Context(), df, opts)
	if err != nil {
		return err
	}
	return report(cmd, res)
}
