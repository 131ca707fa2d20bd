package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

func newStopCmd() *cobra.Command {
	var t coordinatorTarget
	var name string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "stop [UUID]",
		Short: "Stop a running dataflow",
		Long: `Stop sends every node of the dataflow, on every machine, a Stop event, waits
until all have exited (killing those still running after the grace period)
and reports how each ended. Without UUID or --name, it stops the only running
dataflow.`,
		Example: "  dora stop --name robot\n  dora stop 0193d8c6 --grace 2s",
		Args:    cobra.MaximumNArgs(1),
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := name
			if len(args) == 1 {
				if name != "" {
					return fmt.Errorf("give a UUID or --name, not both")
				}
				ref = args[0]
			}
			// Bounded: the daemons kill what the grace period leaves.
			wait := grace
			if wait <= 0 {
				wait = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait+30*time.Second)
			defer cancel()
			conn, err := t.request(ctx, control.KindStop, control.StopRequest{Dataflow: ref, Grace: grace})
			if err != nil {
				return err
			}
			defer conn.Close()
			stopAfter := context.AfterFunc(ctx, func() { conn.Close() })
			defer stopAfter()
			k, body, err := reply(conn)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("the dataflow did not end within %s: %w", wait+30*time.Second, ctx.Err())
				}
				return err
			}
			if k != control.KindResult {
				return fmt.Errorf("unexpected %s from the coordinator", k)
			}
			var res control.Result
			if err := control.Decode(k, body, &res); err != nil {
				return err
			}
			return report(cmd, toResult(&res))
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "stop the dataflow with this name")
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long nodes get after Stop before they are killed (0: the daemons' default, 10s)")
	t.flags(cmd)
	return cmd
}
