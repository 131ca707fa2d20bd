package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

func newDestroyCmd() *cobra.Command {
	var t coordinatorTarget
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Stop all dataflows, daemons and the coordinator",
		Long: `Destroy stops every dataflow (nodes get Stop, then are killed after the grace
period), then every connected daemon, then the coordinator itself.`,
		Args:    cobra.NoArgs,
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wait := grace
			if wait <= 0 {
				wait = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait+30*time.Second)
			defer cancel()
			conn, err := t.request(ctx, control.KindDestroy, control.DestroyRequest{Grace: grace})
			if err != nil {
				return err
			}
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			k, body, err := reply(conn)
			if err != nil {
				return err
			}
			if k != control.KindDestroyed {
				return fmt.Errorf("unexpected %s from the coordinator", k)
			}
			var d control.Destroyed
			if err := control.Decode(k, body, &d); err != nil {
				return err
			}
			// The coordinator exits right after answering: wait until its
			// port is closed, so that `dora up` may follow at once.
			for ctx.Err() == nil {
				c, err := t.dial(ctx)
				if err != nil {
					break
				}
				c.Close()
				time.Sleep(50 * time.Millisecond)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "destroyed: stopped %s, %s and the coordinator\n", plural(d.Dataflows, "dataflow"), plural(d.Daemons, "daemon"))
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long nodes get after Stop before they are killed (0: the daemons' default, 10s)")
	t.flags(cmd)
	return cmd
}
