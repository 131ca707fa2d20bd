package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
)

// `dora graph --html` draws boxes and links: a box per custom node, runtime
// node (with a row per operator) and timer period, a link per input.

type boxKind int

const (
	customBox boxKind = iota
	runtimeBox
	timerBox
	// waypointBox is an invisible stop of a link crossing a column.
	waypointBox
)

// box is a node, a runtime node with one row per operator, a timer or a
// waypoint.
type box struct {
	kind    boxKind
	title   string
	caption string
	tooltip string
	rows    []opRow

	layer, order int
	x, y, w, h   float64
}

type opRow struct {
	id, kind string
	// top and h place the row inside its box.
	top, h float64
}

// link is one input: from a box (and operator row, or -1) to a box (and row).
type link struct {
	from, to       int
	fromRow, toRow int
	label          string
	// back is set on links that close a cycle; they run along the bottom,
	// each in its own lane. Links within one box loop on its right side,
	// each lane a bit further out.
	back bool
	lane int
	// via are the waypoints of a link spanning several columns.
	via []int
	// y1 and y2 are where the link leaves and enters its boxes.
	y1, y2 float64
}

func (l *link) self() bool { return l.from == l.to }

type graph struct {
	boxes         []*box
	links         []*link
	width, height float64
	// lanesTop is the y of the first lane of back links.
	lanesTop float64
}

// graphOf turns a dataflow into boxes and links.
func graphOf(d *descriptor.Dataflow) *graph {
	g := &graph{}
	timers := make(map[time.Duration]int)
	for _, t := range d.TimerPeriods() {
		timers[t] = len(g.boxes)
		g.boxes = append(g.boxes, &box{kind: timerBox, title: descriptor.TimerSource(t), tooltip: "built-in timer"})
	}
	nodes := make(map[string]int)
	for _, n := range d.Nodes {
		b := &box{kind: customBox, title: n.ID, caption: n.Path, tooltip: nodeTooltip(n)}
		if n.IsRuntime() {
			b.kind, b.caption = runtimeBox, "runtime node"
			for _, op := range n.Operators {
				b.rows = append(b.rows, opRow{id: op.ID, kind: string(op.Source.Kind)})
			}
		}
		nodes[n.ID] = len(g.boxes)
		g.boxes = append(g.boxes, b)
	}
	add := func(to, toRow int, in descriptor.Input) {
		l := &link{to: to, toRow: toRow, fromRow: -1, label: in.ID}
		if in.Source.IsTimer() {
			l.from = timers[in.Source.Timer]
		} else {
			l.from = nodes[in.Source.Node]
			if in.Source.Operator != "" {
				l.fromRow = slices.IndexFunc(d.Node(in.Source.Node).Operators,
					func(op *descriptor.Operator) bool { return op.ID == in.Source.Operator })
			}
			l.label = in.Source.Output + " → " + in.ID
		}
		if in.QueueSize != descriptor.DefaultQueueSize {
			l.label += fmt.Sprintf(" (queue_size %d)", in.QueueSize)
		}
		g.links = append(g.links, l)
	}
	for _, n := range d.Nodes {
		for _, in := range n.Inputs {
			add(nodes[n.ID], -1, in)
		}
		for j, op := range n.Operators {
			for _, in := range op.Inputs {
				add(nodes[n.ID], j, in)
			}
		}
	}
	return g
}

func nodeTooltip(n *descriptor.Node) string {
	t := n.ID
	if n.Name != "" {
		t += " — " + n.Name
	}
	if n.Description != "" {
		t += "\n" + n.Description
	}
	if n.Deploy.Machine != "" {
		t += "\nmachine: " + n.Deploy.Machine
	}
	return t
}
