package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/spf13/cobra"
)

func newBuildCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "build DATAFLOW",
		Short: "Run the build commands of a dataflow's nodes and operators",
		Long: `Run the build: command of every node and operator, in file order, with sh -c
in the node's folder (the dataflow's folder, or its working_dir) and with the
node's env. Output lines are prefixed with the node (or node/operator) id.
Stops at the first command that fails and exits with its exit code.`,
		Example: "  dora build dataflow.yml",
		Args:    cobra.ExactArgs(1),
		GroupID: groupDataflow,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := load(cmd, args[0])
			if err != nil {
				return err
			}
			return build(cmd.Context(), d, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}

// buildStep is one build command and where it runs.
type buildStep struct {
	who, command, dir string
	env               map[string]string
}

// buildSteps lists the build commands in file order: each node's own, then
// its operators'. They run in the folder the node's relative paths resolve
// against; a remote node without working_dir builds in the dataflow's folder
// since its paths must then be absolute anyway.
func buildSteps(d *descriptor.Dataflow) []buildStep {
	var steps []buildStep
	for _, n := range d.Nodes {
		dir := n.BaseDir(d.Dir, d.Dir)
		if n.Build != "" {
			steps = append(steps, buildStep{who: n.ID, command: n.Build, dir: dir, env: n.Env})
		}
		for _, op := range n.Operators {
			if op.Build != "" {
				steps = append(steps, buildStep{who: n.ID + "/" + op.ID, command: op.Build, dir: dir, env: n.Env})
			}
		}
	}
	return steps
}

func build(ctx context.Context, d *descriptor.Dataflow, stdout, stderr io.Writer) error {
	steps := buildSteps(d)
	if len(steps) == 0 {
		fmt.Fprintf(stdout, "nothing to build: no node or operator of %s has a build command\n", d.File)
		return nil
	}
	for _, s := range steps {
		fmt.Fprintf(stdout, "▸ %s: %s\n", s.who, s.command)
		err := runStep(ctx, s, stdout, stderr)
		var exit *exec.ExitError
		switch {
		case err == nil:
			continue
		case errors.As(err, &exit) && exit.ExitCode() > 0:
			return &exitError{code: exit.ExitCode(),
				err: fmt.Errorf("build of %s failed with exit code %d: %s", s.who, exit.ExitCode(), s.command)}
		default:
			return fmt.Errorf("build of %s (%s): %w", s.who, s.command, err)
		}
	}
	fmt.Fprintf(stdout, "✓ built %s\n", plural(len(steps), "step"))
	return nil
}

// pipeGrace is how long a finished build command's background children may
// keep its output open before dora stops waiting for them.
const pipeGrace = 2 * time.Second

func runStep(ctx context.Context, s buildStep, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", s.command)
	cmd.Dir = s.dir
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(s.env)) {
		cmd.Env = append(cmd.Env, k+"="+s.env[k])
	}
	var mu sync.Mutex
	prefix := "[" + s.who + "] "
	out := &prefixWriter{mu: &mu, w: stdout, prefix: prefix}
	errOut := &prefixWriter{mu: &mu, w: stderr, prefix: prefix}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = pipeGrace
	err := cmd.Run()
	out.flush()
	errOut.flush()
	return err
}

// maxLine bounds the text kept while waiting for a newline; longer lines
// (progress bars without newlines) are cut into pieces.
const maxLine = 64 << 10

// prefixWriter writes whole lines to w, each starting with prefix. The
// stdout and stderr writers of a command share mu so their lines never mix.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 && len(p.buf) < maxLine {
			break
		}
		if i < 0 {
			i = maxLine - 1
		}
		line := p.buf[:i+1]
		if err := p.writeLine(line); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// flush writes a last line that did not end with a newline.
func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		_ = p.writeLine(p.buf)
		p.buf = nil
	}
}

func (p *prefixWriter) writeLine(line []byte) error {
	out := make([]byte, 0, len(p.prefix)+len(line)+1)
	out = append(append(out, p.prefix...), line...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, err := p.w.Write(out)
	return err
}
