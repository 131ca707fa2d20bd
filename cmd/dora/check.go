package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/loaders"
	"github.com/spf13/cobra"
)

// sourceKinds are the operator kinds dora knows, in the order `dora check`
// reports them.
var sourceKinds = []descriptor.SourceKind{descriptor.SourceSharedLibrary, descriptor.SourcePython, descriptor.SourceWASM}

// probeLoader says whether operators of a kind can run here; tests
// replace it so they do not depend on the machine.
var probeLoader = loaders.Probe

func newCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check DATAFLOW",
		Short: "Validate a dataflow and check it can run on this machine",
		Long: `Validate a dataflow file, reporting every problem at once. Then, for the nodes
that run on this machine (local), check that their executables and operator
files exist, and say which operator loaders this dora binary can use here.

Exits with 1 when the dataflow is invalid, a file is missing, or an operator
kind the dataflow uses has no usable loader.`,
		Example: "  dora check dataflow.yml",
		Args:    cobra.ExactArgs(1),
		GroupID: groupDataflow,
		RunE: func(cmd *cobra.Command, args []string) error {
			return check(cmd, args[0])
		},
	}
}

func check(cmd *cobra.Command, file string) error {
	d, err := load(cmd, file)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "✓ %s: %s\n", file, summary(d))
	missing := checkFiles(out, d)
	unusable := checkLoaders(out, d)
	var failures []string
	if missing > 0 {
		failures = append(failures, plural(missing, "missing file"))
	}
	if len(unusable) > 0 {
		failures = append(failures, "no usable loader for "+strings.Join(unusable, ", ")+" operators")
	}
	if len(failures) > 0 {
		return fmt.Errorf("%s cannot run here: %s", file, strings.Join(failures, "; "))
	}
	return nil
}

// summary renders "3 nodes, 1 operator, 2 timers".
func summary(d *descriptor.Dataflow) string {
	ops := 0
	for _, n := range d.Nodes {
		ops += len(n.Operators)
	}
	parts := []string{plural(len(d.Nodes), "node")}
	if ops > 0 {
		parts = append(parts, plural(ops, "operator"))
	}
	if t := len(d.TimerPeriods()); t > 0 {
		parts = append(parts, plural(t, "timer"))
	}
	return strings.Join(parts, ", ")
}

// checkFiles looks for the executables and operator files of local nodes,
// reports each missing one and returns how many are missing. Remote nodes'
// files live on their machine; only their daemon can check them.
func checkFiles(out io.Writer, d *descriptor.Dataflow) int {
	// home is where relative paths of a remote node without working_dir
	// would go; local nodes never use it.
	home, _ := os.UserHomeDir()
	found, missing := 0, 0
	report := func(line int, what string, err error, build string) {
		if err == nil {
			found++
			return
		}
		missing++
		hint := ""
		if build != "" {
			hint = " (it has a build command: run `dora build` first)"
		}
		fmt.Fprintf(out, "✗ %s:%d: %s%v%s\n", d.File, line, what, err, hint)
	}
	for _, n := range d.Nodes {
		if !n.Deploy.Local {
			fmt.Fprintf(out, "· %s runs on %s, not here: its files are checked there\n", n.ID, machine(n.Deploy))
			continue
		}
		base := n.BaseDir(d.Dir, home)
		if !n.IsRuntime() {
			_, err := n.NodeCommand(base)
			report(n.Line, "", err, n.Build)
			continue
		}
		for _, op := range n.Operators {
			_, err := op.OperatorPath(base)
			report(op.Line, n.ID+"/"+op.ID+": ", err, op.Build)
		}
	}
	if missing == 0 && found > 0 {
		fmt.Fprintf(out, "✓ %s found\n", plural(found, "node and operator file"))
	}
	return missing
}

func machine(dep descriptor.Deploy) string {
	if dep.Machine == "" {
		return "the default machine"
	}
	return fmt.Sprintf("machine %q", dep.Machine)
}

// checkLoaders prints whether each operator kind can run on this machine
// and returns the kinds that local nodes use but cannot run. Operators of
// remote nodes run with their machine's dora, which checks them there.
func checkLoaders(out io.Writer, d *descriptor.Dataflow) []string {
	local := make(map[descriptor.SourceKind][]string)
	remote := make(map[descriptor.SourceKind][]string)
	for _, n := range d.Nodes {
		for _, op := range n.Operators {
			users := local
			if !n.Deploy.Local {
				users = remote
			}
			users[op.Source.Kind] = append(users[op.Source.Kind], n.ID+"/"+op.ID)
		}
	}
	fmt.Fprintln(out, "operator loaders in this build:")
	var unusable []string
	for _, kind := range sourceKinds {
		err := probeLoader(kind)
		mark, status := "✓", "available"
		switch {
		case err != nil && len(local[kind]) > 0:
			mark, status = "✗", err.Error()
			unusable = append(unusable, string(kind))
		case err != nil:
			mark, status = "·", err.Error()
		}
		fmt.Fprintf(out, "  %s %-15s %s%s\n", mark, kind, status, usedBy(local[kind], remote[kind]))
	}
	return unusable
}

// usedBy renders " (used by a/x, b/y and 3 more)", with the operators of
// remote nodes apart, or " (not used)".
func usedBy(local, remote []string) string {
	list := func(ops []string) string {
		const show = 3
		if len(ops) > show {
			return fmt.Sprintf("%s and %d more", strings.Join(ops[:show], ", "), len(ops)-show)
		}
		return strings.Join(ops, ", ")
	}
	switch {
	case len(local) > 0 && len(remote) > 0:
		return " (used by " + list(local) + "; on other machines by " + list(remote) + ")"
	case len(local) > 0:
		return " (used by " + list(local) + ")"
	case len(remote) > 0:
		return " (used on other machines by " + list(remote) + ")"
	}
	return " (not used)"
}
