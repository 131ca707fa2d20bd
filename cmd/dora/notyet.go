package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// The commands below have their final names, arguments and flags, so that
// scripts and docs can be written against them, but do nothing yet. Each
// is replaced by its own file when implemented.

// Default ports, as in dora-rs: daemons connect to the coordinator on
// coordinatorPort, the CLI on controlPort.
const (
	coordinatorPort = 53290
	controlPort     = 6012
)

func notYetCommands() []*cobra.Command {
	return []*cobra.Command{
		notYet(&cobra.Command{
			Use:     "up",
			Short:   "Start a coordinator and a daemon on this machine",
			Args:    cobra.NoArgs,
			GroupID: groupCluster,
		}, configFlag),
		notYet(&cobra.Command{
			Use:     "destroy",
			Short:   "Stop all dataflows, daemons and the coordinator",
			Args:    cobra.NoArgs,
			GroupID: groupCluster,
		}, configFlag, controlFlags),
		notYet(&cobra.Command{
			Use:     "start DATAFLOW",
			Short:   "Start a dataflow on the running coordinator",
			Args:    cobra.ExactArgs(1),
			GroupID: groupCluster,
		}, func(c *cobra.Command) {
			c.Flags().String("name", "", "name the dataflow, to stop it or read its logs by name")
			c.Flags().Bool("attach", false, "wait for the dataflow to finish, printing its logs")
			c.Flags().Bool("detach", false, "return as soon as the dataflow is started")
			c.Flags().Bool("hot-reload", false, "reload operators when their files change")
		}, controlFlags),
		notYet(&cobra.Command{
			Use:     "stop [UUID]",
			Short:   "Stop a running dataflow",
			Args:    cobra.MaximumNArgs(1),
			GroupID: groupCluster,
		}, func(c *cobra.Command) {
			c.Flags().String("name", "", "stop the dataflow with this name")
			c.Flags().Duration("grace-duration", 0, "how long nodes get to stop before they are killed")
		}, controlFlags),
		notYet(&cobra.Command{
			Use:     "list",
			Short:   "List running dataflows",
			Args:    cobra.NoArgs,
			GroupID: groupCluster,
		}, controlFlags),
		notYet(&cobra.Command{
			Use:     "logs [DATAFLOW] NODE",
			Short:   "Show the logs of a node of a running dataflow",
			Args:    cobra.RangeArgs(1, 2),
			GroupID: groupCluster,
		}, controlFlags),
		notYet(&cobra.Command{
			Use:     "daemon",
			Short:   "Run a daemon: it spawns the nodes of its machine and moves their messages",
			Args:    cobra.NoArgs,
			GroupID: groupCluster,
		}, func(c *cobra.Command) {
			c.Flags().String("machine-id", "", "id of this machine, as in _unstable_deploy.machine")
			c.Flags().String("coordinator-addr", "127.0.0.1", "`address` of the coordinator")
			c.Flags().Int("coordinator-port", coordinatorPort, "`port` of the coordinator")
			c.Flags().Int("local-listen-port", 0, "`port` for nodes of this machine (0: pick one)")
			c.Flags().String("run-dataflow", "", "run this dataflow `FILE` alone, without a coordinator")
		}),
		notYet(&cobra.Command{
			Use:     "coordinator",
			Short:   "Run the coordinator: it deploys dataflows to daemons and answers the CLI",
			Args:    cobra.NoArgs,
			GroupID: groupCluster,
		}, func(c *cobra.Command) {
			c.Flags().String("interface", "0.0.0.0", "`address` daemons connect to")
			c.Flags().Int("port", coordinatorPort, "`port` daemons connect to")
			c.Flags().String("control-interface", "127.0.0.1", "`address` the CLI connects to")
			c.Flags().Int("control-port", controlPort, "`port` the CLI connects to")
		}),
	}
}

// notYet makes cmd fail with a clear message, after adding its flags.
func notYet(cmd *cobra.Command, flags ...func(*cobra.Command)) *cobra.Command {
	for _, f := range flags {
		f(cmd)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return fmt.Errorf("`%s` is not implemented yet in this build (see README, \"What works\")", cmd.CommandPath())
	}
	return cmd
}

// parent groups subcommands; run alone it prints its help.
func parent(name, short string, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs, GroupID: groupDevelop}
	cmd.AddCommand(children...)
	return cmd
}

func configFlag(c *cobra.Command) {
	c.Flags().String("config", "", "coordinator and daemon configuration `FILE`")
}

func controlFlags(c *cobra.Command) {
	c.Flags().String("coordinator-addr", "127.0.0.1", "`address` of the coordinator")
	c.Flags().Int("coordinator-port", controlPort, "control `port` of the coordinator")
}

func langFlag(c *cobra.Command) {
	c.Flags().String("lang", "go", "language of the template: go, python or c")
}
