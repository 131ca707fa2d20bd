// Command dora is the command line of the dora dataflow runtime: it checks,
// draws and builds dataflows, and (in later builds) runs them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at link time: go build -ldflags "-X main.version=v0.1.0".
var version = "dev"

// Command groups, in the order `dora --help` shows them.
const (
	groupDataflow = "dataflow"
	groupCluster  = "cluster"
	groupDevelop  = "develop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code; it
// is main without the globals, so tests run the CLI in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.err != nil {
			fmt.Fprintf(stderr, "error: %v\n", exit.err)
		}
		return exit.code
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}

// exitError ends dora with a given exit code. err is printed as usual; it
// is nil when the command already told the user what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "dora",
		Short: "dora is a low-latency dataflow runtime for robotics",
		Long: `dora runs dataflows: graphs of nodes (processes) and operators (plugins hosted
by runtime nodes) that exchange Apache Arrow messages, described in a YAML file.`,
		Version: version,
		// Usage is for mistakes on the command line, not for a dataflow
		// that fails to check; run prints errors itself.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddGroup(
		&cobra.Group{ID: groupDataflow, Title: "Dataflows:"},
		&cobra.Group{ID: groupCluster, Title: "Running and managing dataflows:"},
		&cobra.Group{ID: groupDevelop, Title: "Writing nodes and operators:"},
	)
	root.AddCommand(newCheckCmd(), newGraphCmd(), newBuildCmd(), newSchemaCmd(), newVersionCmd(), newRunCmd(), newRuntimeCmd(), newOperatorHostCmd())
	root.AddCommand(newUpCmd(), newDestroyCmd(), newStartCmd(), newStopCmd(), newListCmd(), newLogsCmd(), newDaemonCmd(), newCoordinatorCmd())
	root.AddCommand(newProjectCommands()...)
	return root
}

// parent groups subcommands; run alone it prints its help.
func parent(name, short string, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs, GroupID: groupDevelop}
	cmd.AddCommand(children...)
	return cmd
}
