package main

import (
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/spf13/cobra"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of dataflow files, for editor completion",
		Long: `Print the JSON Schema of dataflow files. Save it and point your editor at it,
for example with the first line of a dataflow:

    # yaml-language-server: $schema=./dora.schema.json`,
		Example: "  dora schema > dora.schema.json",
		Args:    cobra.NoArgs,
		GroupID: groupDataflow,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(append(descriptor.JSONSchema(), '\n'))
			return err
		},
	}
}
