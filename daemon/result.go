package daemon

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// NodeResult is how one node ended.
type NodeResult struct {
	ID string
	// ExitCode is the process's exit status, or -1 when it did not exit
	// by itself (killed by a signal, never started).
	ExitCode int
	// Signal names the signal that ended the process, if any.
	Signal string
	// Err is why dora counts the node as failed beyond its exit status:
	// it could not start, never connected, or was killed after the grace
	// period.
	Err error
	// StderrTail holds the last lines the node wrote to stderr.
	StderrTail []string
	// Dropped counts messages dropped from each input's full queue.
	Dropped map[string]uint64
	// Lost counts, per input fed from another machine, messages that did
	// not arrive whole.
	Lost map[string]uint64
	// RemoteDropped counts, per output, messages for other machines that
	// were dropped because the link was slower than the node sent.
	RemoteDropped map[string]uint64
	// HandedOff counts the node's requests for events that a sender
	// answered directly, without the daemon (the hand-off).
	HandedOff uint64
	// LogFile is where the node's output was written.
	LogFile string
}

// Failed reports whether the node did not finish successfully.
func (n *NodeResult) Failed() bool { return n.Err != nil || n.ExitCode != 0 }

// Describe is a one-line account of how the node ended.
func (n *NodeResult) Describe() string {
	var parts []string
	switch {
	case n.Signal != "":
		parts = append(parts, "killed by "+n.Signal)
	case n.ExitCode >= 0:
		parts = append(parts, fmt.Sprintf("exit status %d", n.ExitCode))
	}
	if n.Err != nil {
		parts = append(parts, n.Err.Error())
	}
	return strings.Join(parts, ": ")
}

// Result is how a dataflow ended.
type Result struct {
	DataflowID string
	// StopReason says why the dataflow was stopped before its nodes
	// finished by themselves ("interrupted", a node's STOP_ALL, ...).
	StopReason string
	Nodes      []NodeResult
	LogDir     string
}

// Err summarises the failed nodes, or is nil when all succeeded.
func (r *Result) Err() error {
	var failed []string
	for i := range r.Nodes {
		if n := &r.Nodes[i]; n.Failed() {
			failed = append(failed, fmt.Sprintf("%s (%s)", n.ID, n.Describe()))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("dataflow %s failed: %s", r.DataflowID, strings.Join(failed, ", "))
}

// Summary is a multi-line report for people: every failed node with its
// status and stderr tail, and every input that dropped messages.
func (r *Result) Summary() string {
	var b strings.Builder
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if n.Failed() {
			fmt.Fprintf(&b, "node %q failed: %s\n", n.ID, n.Describe())
			if len(n.StderrTail) > 0 {
				fmt.Fprintf(&b, "  last lines of its stderr:\n")
				for _, l := range n.StderrTail {
					fmt.Fprintf(&b, "    %s\n", l)
				}
			}
			if n.LogFile != "" {
				fmt.Fprintf(&b, "  full log: %s\n", n.LogFile)
			}
		}
		counts(&b, n.Dropped, "node %q input %q dropped %d messages (its queue was full)\n", n.ID)
		counts(&b, n.Lost, "node %q input %q lost %d messages on the way from another machine\n", n.ID)
		counts(&b, n.RemoteDropped, "node %q output %q dropped %d messages for other machines (the link was slower than the node)\n", n.ID)
	}
	return b.String()
}

// counts writes one line per key of m, in key order.
func counts(b *strings.Builder, m map[string]uint64, format, node string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(b, format, node, k, m[k])
	}
}
