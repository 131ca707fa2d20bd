package main

import (
	"fmt"
	"log/slog"

	"github.com/dora-go/dora/daemon"
	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	var opts daemon.Options
	var hotReload, verbose bool
	cmd := &cobra.Command{
		Use:   "run DATAFLOW",
		Short: "Run a dataflow on this machine, without a coordinator or daemon",
		Long: `Run starts every node of the dataflow on this machine, routes their messages,
and waits until all of them have finished. Each line a node prints is shown
with the node's id in front, and kept in out/<dataflow id>/log_<node>.txt next
to the dataflow. Ctrl-C sends every node a Stop event; nodes still running
after the grace period are killed.`,
		Args:    cobra.ExactArgs(1),
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, args []string) error {
			df, err := load(cmd, args[0])
			if err != nil {
				return err
			}
			opts.Logger = newLogger(cmd.ErrOrStderr(), verbose, slog.LevelWarn)
			opts.Output = cmd.OutOrStdout()
			if hotReload {
				opts.Env = append(opts.Env, envHotReload+"=1")
			}
			res, err := daemon.Run(cmd.Context(), df, opts)
			if err != nil {
				return err
			}
			return report(cmd, res)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.Grace, "grace", daemon.DefaultGrace, "how long nodes get to exit after Stop before they are killed")
	f.DurationVar(&opts.ConnectTimeout, "connect-timeout", daemon.DefaultConnectTimeout, "how long nodes get to connect before the dataflow fails")
	f.DurationVar(&opts.StopAfter, "stop-after", 0, "stop the dataflow `duration` after every node connected (0: run until it ends or Ctrl-C)")
	f.BoolVar(&hotReload, "hot-reload", false, "reload operators when their files change")
	f.StringVar(&opts.LogDir, "log-dir", "", "folder for the nodes' log files (default: out/<dataflow id> next to the dataflow)")
	f.IntVar(&opts.ShmThreshold, "shm-threshold", 0, "payload `bytes` from which messages travel through shared memory (0: the default)")
	f.BoolVarP(&verbose, "verbose", "v", false, "show the daemon's debug messages")
	return cmd
}

// envHotReload tells runtime nodes to watch their operators' files.
const envHotReload = "DORA_HOT_RELOAD"

// report prints how a dataflow ended and turns failures into exit code 1.
func report(cmd *cobra.Command, res *daemon.Result) error {
	if sum := res.Summary(); sum != "" {
		fmt.Fprint(cmd.ErrOrStderr(), sum)
	}
	if err := res.Err(); err != nil {
		if res.StopReason != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "stop reason: %s\n", res.StopReason)
		}
		return &exitError{code: 1, err: err}
	}
	msg := fmt.Sprintf("dataflow %s finished: %s succeeded", res.DataflowID, plural(len(res.Nodes), "node"))
	if res.StopReason != "" {
		msg += " (" + res.StopReason + ")"
	}
	fmt.Fprintln(cmd.ErrOrStderr(), msg)
	return nil
}
