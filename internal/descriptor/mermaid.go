package descriptor

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Mermaid renders the dataflow as a Mermaid flowchart: custom nodes as
// boxes, runtime nodes as subgraphs of their operators, each timer period
// as one rounded node, and one edge per input labelled "output → input"
// (plus the queue size when it is not the default).
//
// Mermaid gets generated vertex names (n0, n1_0, t0) and the ids only as
// labels, because ids like "end" or "a-b" mean something to its parser.
func (d *Dataflow) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TB\n")
	timers := d.TimerPeriods()
	for i, t := range timers {
		fmt.Fprintf(&b, "  t%d([%q])\n", i, TimerSource(t))
	}
	vertex := make(map[string]string) // "node" or "node/operator" -> name
	for i, n := range d.Nodes {
		if !n.IsRuntime() {
			vertex[n.ID] = fmt.Sprintf("n%d", i)
			fmt.Fprintf(&b, "  n%d[%q]\n", i, n.ID)
			continue
		}
		fmt.Fprintf(&b, "  subgraph n%d [%q]\n", i, n.ID)
		for j, op := range n.Operators {
			vertex[n.ID+"/"+op.ID] = fmt.Sprintf("n%d_%d", i, j)
			fmt.Fprintf(&b, "    n%d_%d[%q]\n", i, j, op.ID)
		}
		b.WriteString("  end\n")
	}
	edge := func(to string, in Input) {
		from, label := "", in.ID
		if in.Source.IsTimer() {
			from = fmt.Sprintf("t%d", slices.Index(timers, in.Source.Timer))
		} else {
			from = vertex[in.Source.Node]
			if in.Source.Operator != "" {
				from = vertex[in.Source.Node+"/"+in.Source.Operator]
			}
			label = in.Source.Output + " → " + in.ID
		}
		if in.QueueSize != DefaultQueueSize {
			label += fmt.Sprintf(" (queue_size %d)", in.QueueSize)
		}
		fmt.Fprintf(&b, "  %s -->|%q| %s\n", from, label, to)
	}
	for _, n := range d.Nodes {
		for _, in := range n.Inputs {
			edge(vertex[n.ID], in)
		}
		for _, op := range n.Operators {
			for _, in := range op.Inputs {
				edge(vertex[n.ID+"/"+op.ID], in)
			}
		}
	}
	return b.String()
}

// TimerPeriods returns the distinct periods of the timers the dataflow
// uses, shortest first.
func (d *Dataflow) TimerPeriods() []time.Duration {
	var out []time.Duration
	add := func(ins []Input) {
		for _, in := range ins {
			if in.Source.IsTimer() && !slices.Contains(out, in.Source.Timer) {
				out = append(out, in.Source.Timer)
			}
		}
	}
	for _, n := range d.Nodes {
		add(n.Inputs)
		for _, op := range n.Operators {
			add(op.Inputs)
		}
	}
	slices.Sort(out)
	return out
}
