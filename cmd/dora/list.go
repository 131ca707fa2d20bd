package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

func newListCmd() *cobra.Command {
	var t coordinatorTarget
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List running dataflows",
		Long: `List shows the dataflows the coordinator runs and those that ended recently:
UUID, name, status, nodes running out of the total, and the machines they run
on, then the daemons connected.`,
		Args:    cobra.NoArgs,
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := list(cmd.Context(), &t)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "UUID\tNAME\tSTATUS\tNODES\tMACHINES\tREASON")
			for _, d := range rep.Dataflows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", d.UUID, orDash(d.Name), d.Status, d.Running, d.Total, strings.Join(d.Machines, ","), orDash(d.Reason))
			}
			w.Flush()
			var ds []string
			for _, d := range rep.Daemons {
				ds = append(ds, machineLabel(d.MachineID))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s connected: %s\n", plural(len(rep.Daemons), "daemon"), orDash(strings.Join(ds, ", ")))
			return nil
		},
	}
	t.flags(cmd)
	return cmd
}

func list(ctx context.Context, t *coordinatorTarget) (*control.ListReply, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := t.request(ctx, control.KindList, nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	k, body, err := reply(conn)
	if err != nil {
		return nil, err
	}
	if k != control.KindListReply {
		return nil, fmt.Errorf("unexpected %s from the coordinator", k)
	}
	var rep control.ListReply
	return &rep, control.Decode(k, body, &rep)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func machineLabel(id string) string {
	if id == "" {
		return "(default)"
	}
	return id
}
