package main

import (
	"errors"
	"fmt"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/spf13/cobra"
)

// load reads and validates a dataflow for a subcommand. An invalid dataflow
// is reported on stderr, one problem per line as compilers do, and ends the
// command with exit code 1.
func load(cmd *cobra.Command, file string) (*descriptor.Dataflow, error) {
	d, err := descriptor.Load(file)
	var verr *descriptor.ValidationError
	if !errors.As(err, &verr) {
		return d, err
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "✗ %s: %s\n", file, plural(len(verr.Problems), "problem"))
	for _, p := range verr.Problems {
		fmt.Fprintln(w, p.String())
	}
	return nil, &exitError{code: 1}
}

// plural renders "1 node", "3 nodes".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
