package main

import (
	"github.com/dora-go/dora/loaders"
	"github.com/dora-go/dora/loaders/isolated"
	"github.com/spf13/cobra"
)

// newOperatorHostCmd is the process an isolated operator runs in
// (`isolate: true`): a runtime node starts it through go-plugin and it
// serves one operator (abi/ISOLATION.md). Hidden: it is not for people.
func newOperatorHostCmd() *cobra.Command {
	return &cobra.Command{
		Use:    isolated.Subcommand,
		Short:  "Host one isolated operator for a runtime node (started by the runtime node)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return loaders.ServeOperatorHost()
		},
	}
}
