package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Colours of the boxes: fill and stroke per kind.
var boxColours = map[boxKind][2]string{
	customBox:  {"#e3f8ff", "#2bb0ed"},
	runtimeBox: {"#e3f9e5", "#3ebd93"},
	timerBox:   {"#fffbea", "#f0b429"},
}

// renderSVG draws a laid-out graph. Links go first so boxes cover their
// ends, labels last so nothing covers them.
func renderSVG(g *graph) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="dataflow graph" `+
		`font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" font-size="12">`+"\n",
		g.width, g.height, g.width, g.height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">` +
		`<path d="M0,0 L10,5 L0,10 z" fill="#52606d"/></marker></defs>` + "\n")
	labels := make([]string, 0, len(g.links))
	for _, l := range g.links {
		dash := ""
		if l.back {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#7b8794" stroke-width="1.4"%s marker-end="url(#arrow)"/>`+"\n", route(g, l), dash)
		labels = append(labels, label(g, l))
	}
	for _, bx := range g.boxes {
		if bx.kind != waypointBox {
			drawBox(&b, bx)
		}
	}
	for _, l := range labels {
		b.WriteString(l + "\n")
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func drawBox(b *strings.Builder, bx *box) {
	c := boxColours[bx.kind]
	fmt.Fprintf(b, "<g><title>%s</title>\n", esc(bx.tooltip))
	radius := 6.0
	if bx.kind == timerBox {
		radius = bx.h / 2
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%.0f" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n",
		bx.x, bx.y, bx.w, bx.h, radius, c[0], c[1])
	if bx.kind == timerBox {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", bx.x+bx.w/2, bx.y+18, esc(bx.title))
		b.WriteString("</g>\n")
		return
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", bx.x+padX, bx.y+17, esc(bx.title))
	if bx.caption != "" {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#616e7c" font-size="11">%s</text>`+"\n", bx.x+padX, bx.y+headerH+8, esc(bx.caption))
	}
	for i, r := range bx.rows {
		top, bottom := bx.rowSpan(i)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="#fff" stroke="%s"/>`+"\n",
			bx.x+4, top+2, bx.w-8, r.h-4, c[1])
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s <tspan fill="#7b8794">%s</tspan></text>`+"\n",
			bx.x+padX, (top+bottom)/2+4, esc(r.id), esc(r.kind))
	}
	b.WriteString("</g>\n")
}

// route is the SVG path of a link, leaving the right side of its source
// and entering the left side of its target: S-curves between columns,
// straight through waypoints, a loop on the right for links within one
// box, and a detour through its lane at the bottom for a back link.
func route(g *graph, l *link) string {
	from, to := g.boxes[l.from], g.boxes[l.to]
	x1, y1, x2, y2 := from.x+from.w, l.y1, to.x, l.y2
	p := fmt.Sprintf("M%.1f,%.1f", x1, y1)
	switch {
	case l.self():
		x2 = to.x + to.w
		return p + fmt.Sprintf(" C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1+l.loopWidth(), y1, x2+l.loopWidth(), y2, x2, y2)
	case l.back:
		lane := g.lanesTop + float64(l.lane)*laneGap
		return p + sCurve(x1, y1, x1+minGapX/2, lane) + fmt.Sprintf(" L%.1f,%.1f", x2-minGapX/2, lane) +
			sCurve(x2-minGapX/2, lane, x2, y2)
	}
	x, y := x1, y1
	for _, v := range l.via {
		w := g.boxes[v]
		wy := w.centre(-1)
		p += sCurve(x, y, w.x, wy) + fmt.Sprintf(" L%.1f,%.1f", w.x+w.w, wy)
		x, y = w.x+w.w, wy
	}
	return p + sCurve(x, y, x2, y2)
}

// sCurve continues a path to (x2, y2) with a cubic Bézier leaving and
// arriving horizontally.
func sCurve(x1, y1, x2, y2 float64) string {
	dx := (x2 - x1) / 2
	if math.Abs(dx) < 20 {
		dx = math.Copysign(20, dx)
	}
	return fmt.Sprintf(" C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1+dx, y1, x2-dx, y2, x2, y2)
}

// label is the text of a link, placed just before the arrow head, where
// the ports of a box keep labels apart; links within a box are labelled
// right of their loop, at the height of their arrow.
func label(g *graph, l *link) string {
	to := g.boxes[l.to]
	x, y, anchor := to.x-8, l.y2-4, "end"
	if l.self() {
		x, y, anchor = to.x+to.w+0.75*l.loopWidth()+8, l.y2+4, "start"
	}
	return fmt.Sprintf(`<text x="%.1f" y="%.1f" text-anchor="%s" fill="#323f4b" stroke="#fff" stroke-width="4" paint-order="stroke">%s</text>`,
		x, y, anchor, esc(l.label))
}

func esc(s string) string { return html.EscapeString(s) }
