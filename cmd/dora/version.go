package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of dora and the Go toolchain it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}

// versionLine says what a bug report needs: "dora v0.1.0 (go1.26.0 linux/amd64)".
func versionLine() string {
	return fmt.Sprintf("dora %s (%s %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
