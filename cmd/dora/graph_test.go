package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/descriptor"
)

func TestGraph_PrintsMermaid(t *testing.T) {
	file := filepath.Join("testdata", "cycle.yml")
	d, err := descriptor.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := dora(t, "graph", file)
	if code != 0 || out != d.Mermaid() || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, d.Mermaid())
	}
}

func TestGraph_HTMLIsSelfContained(t *testing.T) {
	for _, file := range []string{
		filepath.Join("testdata", "cycle.yml"),
		filepath.Join("testdata", "missing.yml"),
		filepath.Join("..", "..", "internal", "descriptor", "testdata", "seed_form.yml"),
	} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			page := filepath.Join(t.TempDir(), "graph.html")
			code, _, errOut := dora(t, "graph", file, "--html", page)
			if code != 0 || errOut != "wrote "+page+"\n" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			data, err := os.ReadFile(page)
			if err != nil {
				t.Fatal(err)
			}
			html := string(data)
			svg := regexp.MustCompile(`(?s)<svg .*</svg>`).FindString(html)
			if svg == "" {
				t.Fatal("no <svg> in the page")
			}
			d, _ := descriptor.Load(file)
			for _, n := range d.Nodes {
				if !strings.Contains(svg, ">"+n.ID+"<") {
					t.Errorf("the SVG does not show node %q", n.ID)
				}
				for _, op := range n.Operators {
					if !strings.Contains(svg, ">"+op.ID+" <") {
						t.Errorf("the SVG does not show operator %q", op.ID)
					}
				}
			}
			for _, bad := range []string{"<script", "http://", "https://", "<link", "@import"} {
				if strings.Contains(html, bad) {
					t.Errorf("the page contains %q; it must work offline", bad)
				}
			}
			if !strings.Contains(html, "<details>") || !strings.Contains(html, "flowchart TB") {
				t.Error("the page lacks the Mermaid source in a <details> block")
			}
		})
	}
}

func TestGraph_InvalidDataflow(t *testing.T) {
	code, out, errOut := dora(t, "graph", filepath.Join("testdata", "invalid.yml"))
	if code != 1 || out != "" || !strings.Contains(errOut, "2 problems") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
