package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

func newStartCmd() *cobra.Command {
	var t coordinatorTarget
	var req control.StartRequest
	var hotReload bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "start DATAFLOW",
		Short: "Start a dataflow on the running coordinator",
		Long: `Start sends the dataflow to the coordinator, which starts each node on the
daemon of its machine (deploy.machine). Once every node has connected, it
prints the dataflow's UUID.

Nodes marked local (the default) run on the CLI's machine: their relative
paths resolve against the dataflow's folder. Other nodes with relative paths
need deploy.working_dir, the dataflow's folder on their machine.

With --attach, start shows the nodes' output and waits for the dataflow to
end, like run; Ctrl-C stops the dataflow.`,
		Example: "  dora start dataflow.yml --name robot\n  dora start dataflow.yml --attach",
		Args:    cobra.ExactArgs(1),
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := load(cmd, args[0]); err != nil {
				return err
			}
			var err error
			if req.File, err = filepath.Abs(args[0]); err != nil {
				return err
			}
			if req.YAML, err = os.ReadFile(req.File); err != nil {
				return err
			}
			if hotReload {
				req.Env = append(req.Env, envHotReload+"=1")
			}
			return start(cmd, &t, req, grace)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "name the dataflow, to stop it or read its logs by name")
	f.BoolVar(&req.Attach, "attach", false, "show the nodes' output and wait for the dataflow to end")
	f.BoolVar(&hotReload, "hot-reload", false, "reload operators when their files change")
	f.DurationVar(&grace, "grace", 0, "with --attach, how long nodes get after Ctrl-C before they are killed (0: the daemons' default)")
	t.flags(cmd)
	return cmd
}

func start(cmd *cobra.Command, t *coordinatorTarget, req control.StartRequest, grace time.Duration) error {
	ctx := cmd.Context()
	conn, err := t.request(ctx, control.KindStart, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	in := frames(conn)
	var uuid string
	for {
		var f frame
		var ok bool
		select {
		case f, ok = <-in:
		case <-ctx.Done():
			if uuid == "" {
				// Leaving before STARTED makes the coordinator stop it.
				return errors.New("interrupted before the dataflow started; it is being stopped")
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "stopping dataflow %s\n", uuid)
			go stopQuietly(t, uuid, grace)
			ctx = context.Background() // from now on, wait for the RESULT
			continue
		}
		if !ok {
			return errors.New("the coordinator closed the connection")
		}
		if f.err != nil {
			if uuid != "" {
				return fmt.Errorf("lost the coordinator while attached to dataflow %s (it may still run: dora list): %w", uuid, f.err)
			}
			return f.err
		}
		switch f.kind {
		case control.KindStarted:
			var st control.Started
			if err := control.Decode(f.kind, f.body, &st); err != nil {
				return err
			}
			uuid = st.UUID
			fmt.Fprintln(cmd.OutOrStdout(), st.UUID)
			if req.Attach {
				fmt.Fprintf(cmd.ErrOrStderr(), "dataflow %s running on %s\n", st.UUID, strings.Join(st.Machines, ", "))
			} else {
				return nil
			}
		case control.KindOutput:
			var out control.Output
			if err := control.Decode(f.kind, f.body, &out); err != nil {
				return err
			}
			cmd.OutOrStdout().Write(out.Data)
		case control.KindResult:
			var res control.Result
			if err := control.Decode(f.kind, f.body, &res); err != nil {
				return err
			}
			return report(cmd, toResult(&res))
		default:
			return fmt.Errorf("unexpected %s from the coordinator", f.kind)
		}
	}
}

// stopQuietly asks the coordinator to stop a dataflow; the attached
// stream reports the outcome.
func stopQuietly(t *coordinatorTarget, uuid string, grace time.Duration) {
	conn, err := t.request(context.Background(), control.KindStop, control.StopRequest{Dataflow: uuid, Grace: grace})
	if err != nil {
		return
	}
	defer conn.Close()
	reply(conn)
}
