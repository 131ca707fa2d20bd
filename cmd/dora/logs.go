package main

import (
	"context"
	"fmt"

	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

func newLogsCmd() *cobra.Command {
	var t coordinatorTarget
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [DATAFLOW] NODE",
		Short: "Show the logs of a node of a running dataflow",
		Long: `Logs prints what a node wrote to stdout and stderr, fetched from the daemon
that runs (or ran) it, on whichever machine. DATAFLOW is a UUID, a unique
start of one, or a name; without it, the only running dataflow. With
--follow, logs keeps printing what the node writes until it exits.`,
		Example: "  dora logs robot camera --follow",
		Args:    cobra.RangeArgs(1, 2),
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := control.LogsRequest{Node: args[len(args)-1], Follow: follow}
			if len(args) == 2 {
				req.Dataflow = args[0]
			}
			ctx := cmd.Context()
			conn, err := t.request(ctx, control.KindLogs, req)
			if err != nil {
				return err
			}
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			for {
				k, body, err := reply(conn)
				if err != nil {
					if ctx.Err() != nil {
						return nil // Ctrl-C while following
					}
					return err
				}
				switch k {
				case control.KindLogData:
					var d control.LogData
					if err := control.Decode(k, body, &d); err != nil {
						return err
					}
					cmd.OutOrStdout().Write(d.Data)
				case control.KindEnd:
					return nil
				default:
					return fmt.Errorf("unexpected %s from the coordinator", k)
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the node writes until it exits")
	t.flags(cmd)
	return cmd
}
