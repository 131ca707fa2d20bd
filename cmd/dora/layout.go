package main

import (
	"cmp"
	"math"
	"slices"
)

// The HTML graph is a layered (Sugiyama-style) drawing, reduced to what
// dataflows need: each box goes in the column of its longest path from a
// source; links spanning several columns pass through invisible waypoints
// so they run between boxes, not across them; boxes of a column are ordered
// to limit crossings; links closing a cycle run back along the bottom.

// Sizes in SVG pixels, for 12px monospace text.
const (
	charW     = 7.3
	padX      = 12.0
	headerH   = 24.0
	captionH  = 16.0
	rowH      = 22.0
	portGap   = 16.0 // least vertical room per link on a side of a row
	minGapX   = 70.0
	gapY      = 28.0
	waypointH = 8.0
	laneGap   = 14.0
	loopW     = 50.0 // how far self links loop out on the right
	margin    = 20.0
)

func textWidth(s string) float64 { return float64(len([]rune(s))) * charW }

// layoutGraph assigns every box its column, order, size and position, and
// every link its ports.
func layoutGraph(g *graph) *graph {
	assignLayers(g)
	addWaypoints(g)
	orderLayers(g)
	sizeBoxes(g)
	place(g)
	assignPorts(g)
	return g
}

// assignLayers puts each box one column right of its furthest predecessor.
// Links found closing a cycle by a depth-first search are marked back and
// left out of the layering.
func assignLayers(g *graph) {
	n := len(g.boxes)
	succ := make([][]*link, n)
	for _, l := range g.links {
		if !l.self() {
			succ[l.from] = append(succ[l.from], l)
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, n)
	var visit func(v int)
	visit = func(v int) {
		state[v] = onPath
		for _, l := range succ[v] {
			switch state[l.to] {
			case unseen:
				visit(l.to)
			case onPath:
				l.back = true
			}
		}
		state[v] = done
	}
	for v := range n {
		if state[v] == unseen {
			visit(v)
		}
	}
	// Longest path over what is left, a DAG, in topological order (Kahn).
	indeg := make([]int, n)
	for _, l := range g.links {
		if !l.self() && !l.back {
			indeg[l.to]++
		}
	}
	var sources []int
	for v := range n {
		if indeg[v] == 0 {
			sources = append(sources, v)
		}
	}
	queue := slices.Clone(sources)
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, l := range succ[v] {
			if l.back {
				continue
			}
			g.boxes[l.to].layer = max(g.boxes[l.to].layer, g.boxes[v].layer+1)
			if indeg[l.to]--; indeg[l.to] == 0 {
				queue = append(queue, l.to)
			}
		}
	}
	// Sources (timers, mostly) move right, next to their first consumer,
	// instead of sending long links across the drawing.
	for _, v := range sources {
		first := math.MaxInt
		for _, l := range succ[v] {
			if !l.back && !l.self() && g.boxes[l.to].layer-1 < first {
				first = g.boxes[l.to].layer - 1
			}
		}
		if first != math.MaxInt {
			g.boxes[v].layer = first
		}
	}
	lanes, loops := 0, make(map[int]int)
	for _, l := range g.links {
		switch {
		case l.back:
			l.lane, lanes = lanes, lanes+1
		case l.self():
			l.lane = loops[l.from]
			loops[l.from]++
		}
	}
}

// loopWidth is how far a link within one box loops out on its right.
func (l *link) loopWidth() float64 { return loopW * (1 + 0.5*float64(l.lane)) }

// addWaypoints gives a link spanning several columns one waypoint in each
// column it crosses.
func addWaypoints(g *graph) {
	for _, l := range g.links {
		if l.back || l.self() {
			continue
		}
		for layer := g.boxes[l.from].layer + 1; layer < g.boxes[l.to].layer; layer++ {
			l.via = append(l.via, len(g.boxes))
			g.boxes = append(g.boxes, &box{kind: waypointBox, layer: layer})
		}
	}
}

// hops are the consecutive pairs of boxes a forward link goes through.
func (l *link) hops() [][2]int {
	if l.back || l.self() {
		return nil
	}
	path := append(append([]int{l.from}, l.via...), l.to)
	out := make([][2]int, len(path)-1)
	for i := range out {
		out[i] = [2]int{path[i], path[i+1]}
	}
	return out
}

// orderLayers orders the boxes of each column by the mean position of
// their neighbours in the previous column (barycenter heuristic), sweeping
// right, then left, a few times.
func orderLayers(g *graph) {
	pred := make([][]int, len(g.boxes))
	succ := make([][]int, len(g.boxes))
	for _, l := range g.links {
		for _, h := range l.hops() {
			succ[h[0]] = append(succ[h[0]], h[1])
			pred[h[1]] = append(pred[h[1]], h[0])
		}
	}
	cols := columns(g)
	renumber := func(col []int) {
		for i, v := range col {
			g.boxes[v].order = i
		}
	}
	for _, col := range cols {
		renumber(col)
	}
	for sweep := range 6 {
		forward := sweep%2 == 0
		next := pred
		if !forward {
			next = succ
			slices.Reverse(cols)
		}
		for _, col := range cols {
			key := make(map[int]float64, len(col))
			for _, v := range col {
				key[v] = float64(g.boxes[v].order)
				if ns := next[v]; len(ns) > 0 {
					sum := 0.0
					for _, u := range ns {
						sum += float64(g.boxes[u].order)
					}
					key[v] = sum / float64(len(ns))
				}
			}
			slices.SortStableFunc(col, func(a, b int) int { return cmp.Compare(key[a], key[b]) })
			renumber(col)
		}
		if !forward {
			slices.Reverse(cols)
		}
	}
}

// columns lists box indexes by layer, each column in its current order.
func columns(g *graph) [][]int {
	var cols [][]int
	for i, b := range g.boxes {
		for len(cols) <= b.layer {
			cols = append(cols, nil)
		}
		cols[b.layer] = append(cols[b.layer], i)
	}
	for _, col := range cols {
		slices.SortStableFunc(col, func(a, b int) int { return cmp.Compare(g.boxes[a].order, g.boxes[b].order) })
	}
	return cols
}

// maxCaption is where long paths are cut in boxes; the tooltip has them.
const maxCaption = 40

// sizeBoxes sizes boxes to their text and gives every side of a box or row
// enough height for the links that touch it.
func sizeBoxes(g *graph) {
	type side struct{ box, row int }
	in, out := make(map[side]int), make(map[side]int)
	for _, l := range g.links {
		out[side{l.from, l.fromRow}]++
		in[side{l.to, l.toRow}]++
	}
	room := func(s side) float64 { return portGap * float64(max(in[s], out[s])+1) }
	for i, b := range g.boxes {
		b.caption = shorten(b.caption, maxCaption)
		w := max(textWidth(b.title), textWidth(b.caption))
		switch b.kind {
		case waypointBox:
			b.h = waypointH
			continue
		case timerBox:
			b.w, b.h = w+2*padX+8, max(28, room(side{i, -1}))
			continue
		case runtimeBox:
			top := headerH + captionH
			for j := range b.rows {
				r := &b.rows[j]
				w = max(w, textWidth(r.id+" "+r.kind)+8)
				r.top, r.h = top, max(rowH, room(side{i, j}))
				top += r.h
			}
			b.h = top + 6
		default:
			b.h = headerH + 8
			if b.caption != "" {
				b.h += captionH
			}
			b.h = max(b.h, room(side{i, -1}))
		}
		b.w = w + 2*padX
	}
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// place sets coordinates: columns left to right, each centred vertically,
// with room before a column for the labels of the links entering it.
func place(g *graph) {
	cols := columns(g)
	gaps := make([]float64, len(cols))
	for _, l := range g.links {
		if !l.self() {
			layer := g.boxes[l.to].layer
			gaps[layer] = max(gaps[layer], textWidth(l.label)+40)
		}
	}
	heights := make([]float64, len(cols))
	tallest := 0.0
	for i, col := range cols {
		for _, v := range col {
			heights[i] += g.boxes[v].h + gapY
		}
		heights[i] -= gapY
		tallest = max(tallest, heights[i])
	}
	x, right := margin, 0.0
	for i, col := range cols {
		if i > 0 {
			x += max(minGapX, gaps[i])
		}
		width := 0.0
		for _, v := range col {
			width = max(width, g.boxes[v].w)
		}
		y := margin + (tallest-heights[i])/2
		for _, v := range col {
			b := g.boxes[v]
			if b.kind == waypointBox {
				b.w = width
			}
			b.x, b.y = x, y
			y += b.h + gapY
		}
		x += width
		right = x
	}
	for _, l := range g.links {
		if l.self() {
			b := g.boxes[l.from]
			right = max(right, b.x+b.w+l.loopWidth()+textWidth(l.label)+8)
		}
	}
	g.width = right + margin
	g.lanesTop = margin + tallest + laneGap
	lanes := 0
	for _, l := range g.links {
		if l.back {
			lanes = max(lanes, l.lane+1)
		}
	}
	g.height = g.lanesTop + float64(lanes)*laneGap + margin
}

// rowSpan is the vertical extent of a box's operator row, or of the whole
// box for row -1.
func (b *box) rowSpan(row int) (top, bottom float64) {
	if row < 0 {
		return b.y, b.y + b.h
	}
	r := b.rows[row]
	return b.y + r.top, b.y + r.top + r.h
}

func (b *box) centre(row int) float64 {
	top, bottom := b.rowSpan(row)
	return (top + bottom) / 2
}

// assignPorts spreads the links leaving or entering the same side of a
// row, ordered by the height of their next stop, so they do not overlap.
func assignPorts(g *graph) {
	type side struct {
		box, row int
		out      bool
	}
	groups := make(map[side][]*link)
	var keys []side
	for _, l := range g.links {
		for _, s := range []side{{l.from, l.fromRow, true}, {l.to, l.toRow, false}} {
			if _, ok := groups[s]; !ok {
				keys = append(keys, s)
			}
			groups[s] = append(groups[s], l)
		}
	}
	for _, s := range keys {
		ls := groups[s]
		next := func(l *link) float64 {
			switch {
			case l.back:
				return math.Inf(1) // to the lanes at the bottom
			case s.out && len(l.via) > 0:
				return g.boxes[l.via[0]].centre(-1)
			case s.out:
				return g.boxes[l.to].centre(l.toRow)
			case len(l.via) > 0:
				return g.boxes[l.via[len(l.via)-1]].centre(-1)
			}
			return g.boxes[l.from].centre(l.fromRow)
		}
		slices.SortStableFunc(ls, func(a, b *link) int { return cmp.Compare(next(a), next(b)) })
		top, bottom := g.boxes[s.box].rowSpan(s.row)
		step := (bottom - top) / float64(len(ls)+1)
		for i, l := range ls {
			y := math.Round(top + step*float64(i+1))
			if s.out {
				l.y1 = y
			} else {
				l.y2 = y
			}
		}
	}
}
