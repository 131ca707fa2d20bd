package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderEveryTemplate(t *testing.T) {
	for kind, langs := range Languages() {
		for _, lang := range langs {
			t.Run(kind+"-"+lang, func(t *testing.T) {
				dir := t.TempDir()
				written, err := Render(kind, lang, dir, Data{Name: "my-thing", DoraSrc: "/src/dora", GoVersion: "1.26"})
				if err != nil {
					t.Fatal(err)
				}
				if len(written) == 0 {
					t.Fatal("nothing written")
				}
				yml, err := os.ReadFile(filepath.Join(dir, "dataflow.yml"))
				if err != nil {
					t.Fatalf("every template has a dataflow.yml: %v", err)
				}
				if strings.Contains(string(yml), "{{") {
					t.Errorf("unrendered template left:\n%s", yml)
				}
			})
		}
	}
}

func TestRenderRefusesBadNamesUnknownLanguagesAndOverwrites(t *testing.T) {
	for _, name := range []string{"", "1op", "a/b", "../x", "has space"} {
		if _, err := Render("node", "go", t.TempDir(), Data{Name: name}); err == nil {
			t.Errorf("Render(%q) succeeded", name)
		}
	}
	if _, err := Render("node", "cobol", t.TempDir(), Data{Name: "x"}); err == nil || !strings.Contains(err.Error(), "available: c, go") {
		t.Errorf("unknown language: %v", err)
	}
	dir := t.TempDir()
	if _, err := Render("operator", "c", dir, Data{Name: "op", DoraSrc: "/d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Render("operator", "c", dir, Data{Name: "op", DoraSrc: "/d"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Render = %v, want a refusal to overwrite", err)
	}
}
