package main

import (
	"path/filepath"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
)

func TestAssignLayers(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		links [][2]int
		want  []int
		back  int // how many links are marked back
	}{
		{"chain", 3, [][2]int{{0, 1}, {1, 2}}, []int{0, 1, 2}, 0},
		{"longest path wins", 4, [][2]int{{0, 1}, {1, 2}, {0, 2}, {2, 3}}, []int{0, 1, 2, 3}, 0},
		{"two sources", 3, [][2]int{{0, 2}, {1, 2}}, []int{0, 0, 1}, 0},
		{"a source moves next to its first consumer", 4, [][2]int{{0, 1}, {1, 2}, {3, 2}, {3, 1}}, []int{0, 1, 2, 0}, 0},
		{"a late source moves right", 4, [][2]int{{0, 1}, {1, 2}, {3, 2}}, []int{0, 1, 2, 1}, 0},
		{"cycle is broken", 3, [][2]int{{0, 1}, {1, 2}, {2, 1}}, []int{0, 1, 2}, 1},
		{"self loop", 2, [][2]int{{0, 1}, {1, 1}}, []int{0, 1}, 0},
		{"isolated", 2, nil, []int{0, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &graph{}
			for range tt.n {
				g.boxes = append(g.boxes, &box{})
			}
			for _, l := range tt.links {
				g.links = append(g.links, &link{from: l[0], to: l[1], fromRow: -1, toRow: -1})
			}
			assignLayers(g)
			back := 0
			for _, l := range g.links {
				if l.back {
					back++
				}
			}
			for i, b := range g.boxes {
				if b.layer != tt.want[i] {
					t.Errorf("box %d in layer %d, want %d", i, b.layer, tt.want[i])
				}
			}
			if back != tt.back {
				t.Errorf("%d back links, want %d", back, tt.back)
			}
		})
	}
}

// TestLayoutGraph_NoOverlaps checks boxes of one column do not overlap and
// every link starts on its source's right side.
func TestLayoutGraph_NoOverlaps(t *testing.T) {
	d, err := descriptor.Load(filepath.Join("testdata", "cycle.yml"))
	if err != nil {
		t.Fatal(err)
	}
	g := layoutGraph(graphOf(d))
	for i, a := range g.boxes {
		for _, b := range g.boxes[i+1:] {
			if a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h {
				t.Errorf("%q and %q overlap", a.title, b.title)
			}
		}
		if a.x+a.w > g.width || a.y+a.h > g.height {
			t.Errorf("%q is outside the %gx%g canvas", a.title, g.width, g.height)
		}
	}
	for _, l := range g.links {
		from := g.boxes[l.from]
		if top, bottom := from.rowSpan(l.fromRow); l.y1 <= top || l.y1 >= bottom {
			t.Errorf("link %q leaves at y=%g, outside its row [%g, %g]", l.label, l.y1, top, bottom)
		}
	}
}
