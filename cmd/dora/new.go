package main

import "github.com/spf13/cobra"

// newProjectCommands create dataflows, nodes and operators from templates.
func newProjectCommands() []*cobra.Command {
	return []*cobra.Command{
		notYet(&cobra.Command{
			Use:     "new NAME",
			Short:   "Create a dataflow, operator or node project from a template",
			Args:    cobra.ExactArgs(1),
			GroupID: groupDevelop,
		}, func(c *cobra.Command) {
			c.Flags().String("kind", "dataflow", "what to create: dataflow, operator or node")
			langFlag(c)
		}),
		parent("operator", "Work on operators", notYet(&cobra.Command{
			Use:   "new NAME",
			Short: "Create an operator project from a template",
			Args:  cobra.ExactArgs(1),
		}, langFlag)),
		parent("node", "Work on custom nodes", notYet(&cobra.Command{
			Use:   "new NAME",
			Short: "Create a custom node project from a template",
			Args:  cobra.ExactArgs(1),
		}, langFlag)),
	}
}
