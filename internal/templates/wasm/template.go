// Package wasm holds the template of a Go wasm operator, used by
// `dora operator new --lang wasm NAME`.
package wasm

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

//go:embed files/*.tmpl
var files embed.FS

// validName is what an operator name may be: it becomes a file name, an
// operator id and a Go comment.
var validName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// Files lists the files Render writes, relative to its dst.
func Files() []string {
	var out []string
	entries, _ := fs.ReadDir(files, "files")
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".tmpl"))
	}
	return out
}

// Render writes a new operator called name into dst (created if needed):
// main.go and README.md. It refuses to overwrite existing files.
func Render(dst, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("operator name %q: use letters, digits, '-' and '_', starting with a letter", name)
	}
	data := struct{ Name string }{name}
	type out struct {
		path string
		body []byte
	}
	var outs []out
	for _, f := range Files() {
		t, err := template.New(f).Option("missingkey=error").ParseFS(files, "files/"+f+".tmpl")
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, f+".tmpl", data); err != nil {
			return err
		}
		p := filepath.Join(dst, f)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		outs = append(outs, out{p, buf.Bytes()})
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, o := range outs {
		if err := os.WriteFile(o.path, o.body, 0o644); err != nil {
			return err
		}
	}
	return nil
}
