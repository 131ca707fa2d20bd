package descriptor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

// BaseDir is the folder a node's relative paths resolve against on the
// machine that runs it (seed 001): its deploy working_dir when set (relative
// to dataflowDir if local, as is), else dataflowDir for local nodes, else
// fallback (the daemon's own default folder).
func (n *Node) BaseDir(dataflowDir, fallback string) string {
	wd := n.Deploy.WorkingDir
	switch {
	case wd != "" && filepath.IsAbs(wd):
		return wd
	case wd != "" && n.Deploy.Local:
		return filepath.Join(dataflowDir, wd)
	case wd != "":
		return filepath.Join(fallback, wd)
	case n.Deploy.Local:
		return dataflowDir
	default:
		return fallback
	}
}

// ProcessDir is the working directory a node's process starts in: BaseDir,
// or the seed form's `working-directory` resolved against it.
func (n *Node) ProcessDir(dataflowDir, fallback string) string {
	base := n.BaseDir(dataflowDir, fallback)
	if n.WorkingDirectory == "" {
		return base
	}
	if filepath.IsAbs(n.WorkingDirectory) {
		return n.WorkingDirectory
	}
	return filepath.Join(base, n.WorkingDirectory)
}

// Command is how a custom node's process is started.
type Command struct {
	Path string
	Args []string
}

// ErrNotFound is wrapped by the resolve functions when a file is missing.
var ErrNotFound = errors.New("not found")

// NodeCommand resolves a custom node's executable against base: a path with
// a slash or an existing file is taken relative to base; a bare name that
// is not a file in base is looked up in PATH. A `.py` file runs with the
// `python3` of the active environment (PATH), so virtualenvs work.
func (n *Node) NodeCommand(base string) (Command, error) {
	p := n.Path
	if p == "" {
		return Command{}, fmt.Errorf("node %q has no path", n.ID)
	}
	full := p
	if !filepath.IsAbs(full) {
		full = filepath.Join(base, p)
	}
	if _, err := os.Stat(full); err != nil {
		if strings.ContainsRune(p, '/') || strings.HasSuffix(p, ".py") {
			return Command{}, fmt.Errorf("node %q: path %q: %w (looked for %s)", n.ID, p, ErrNotFound, full)
		}
		found, lerr := exec.LookPath(p)
		if lerr != nil {
			return Command{}, fmt.Errorf("node %q: path %q: %w in %s nor in PATH", n.ID, p, ErrNotFound, base)
		}
		full = found
	}
	if strings.HasSuffix(full, ".py") {
		py, err := exec.LookPath("python3")
		if err != nil {
			return Command{}, fmt.Errorf("node %q: %s needs python3, which is not in PATH", n.ID, p)
		}
		return Command{Path: py, Args: append([]string{"-u", full}, n.Args...)}, nil
	}
	return Command{Path: full, Args: n.Args}, nil
}

// SharedLibraryCandidates lists, in order, the files a `shared-library:`
// path may name: the path as given, then with the platform's prefix and
// extension added to its last element (`build/operator` ->
// `build/liboperator.so` on Linux).
func SharedLibraryCandidates(p string) []string {
	dir, file := filepath.Split(p)
	ext := ".so"
	switch goruntime.GOOS {
	case "darwin":
		ext = ".dylib"
	case "windows":
		return []string{p, filepath.Join(dir, file+".dll")}
	}
	out := []string{p}
	if !strings.HasPrefix(file, "lib") {
		out = append(out, filepath.Join(dir, "lib"+file+ext))
	}
	return append(out, filepath.Join(dir, file+ext))
}

// ResolveSharedLibrary returns the first existing file among
// SharedLibraryCandidates(p), or an error listing what was tried.
func ResolveSharedLibrary(p string) (string, error) {
	cands := SharedLibraryCandidates(p)
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("shared library %q: %w (tried %s)", p, ErrNotFound, strings.Join(cands, ", "))
}

// OperatorPath makes an operator's source path absolute against base. For
// shared libraries it also applies ResolveSharedLibrary.
func (op *Operator) OperatorPath(base string) (string, error) {
	p := op.Source.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	if op.Source.Kind == SourceSharedLibrary {
		return ResolveSharedLibrary(p)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s operator %q: %w: %s", op.Source.Kind, op.ID, ErrNotFound, p)
	}
	return p, nil
}
