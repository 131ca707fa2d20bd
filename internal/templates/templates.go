// Package templates holds the projects `dora new`, `dora node new` and
// `dora operator new` generate: one folder of text/template files per
// kind and language under files/, each a project that builds and runs as
// generated.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

//go:embed files
var files embed.FS

// Data fills the templates.
type Data struct {
	// Name is the project's name: its folder, node or operator id, and Go
	// module path.
	Name string
	// DoraSrc is the absolute path of the dora checkout whose Go module,
	// C headers and libraries the project uses.
	DoraSrc string
	// GoVersion is the go directive of generated go.mod files.
	GoVersion string
}

// Languages lists the languages each kind has templates in.
func Languages() map[string][]string {
	langs := map[string][]string{}
	entries, _ := fs.ReadDir(files, "files")
	for _, e := range entries {
		kind, lang, _ := strings.Cut(e.Name(), "-")
		langs[kind] = append(langs[kind], lang)
	}
	for _, l := range langs {
		sort.Strings(l)
	}
	return langs
}

// validName keeps names usable as a folder, a dora id, a Go module path
// and a C identifier fragment.
var validName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// Render writes the kind/lang template into dst, which must not hold any
// of the files already. It returns the paths written, relative to dst.
func Render(kind, lang, dst string, data Data) ([]string, error) {
	if !validName.MatchString(data.Name) {
		return nil, fmt.Errorf("name %q: use letters, digits, '-' and '_', starting with a letter", data.Name)
	}
	root := path.Join("files", kind+"-"+lang)
	if _, err := fs.Stat(files, root); err != nil {
		return nil, fmt.Errorf("no %s template for language %q (available: %s)", kind, lang, strings.Join(Languages()[kind], ", "))
	}
	type out struct {
		rel  string
		body []byte
	}
	var outs []out
	err := fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		t, err := template.New(path.Base(p)).Option("missingkey=error").ParseFS(files, p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return fmt.Errorf("template %s: %w", p, err)
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		if _, err := os.Stat(filepath.Join(dst, rel)); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it", filepath.Join(dst, rel))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		outs = append(outs, out{rel, buf.Bytes()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var written []string
	for _, o := range outs {
		p := filepath.Join(dst, o.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(p, o.body, 0o644); err != nil {
			return written, err
		}
		written = append(written, o.rel)
	}
	return written, nil
}
