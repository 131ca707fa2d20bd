// Package pyapi carries the sources of the pure-Python `dora` package
// (apis/python/dora) inside Go binaries, so that the runtime can make
// `import dora` work in the Python it embeds without a pip install.
package pyapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"sort"
)

//go:embed dora/*.py
var files embed.FS

// FS returns the package's files; its root holds the folder `dora`.
func FS() fs.FS { return files }

// Hash is a digest of every embedded file's path and contents, hex encoded:
// two binaries with the same Hash carry the same package.
func Hash() string {
	var names []string
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, _ := fs.ReadFile(files, n)
		h.Write([]byte(path.Clean(n)))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
