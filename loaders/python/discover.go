package python

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EnvPython names the setting that chooses the Python to embed: the path of
// a python executable (a virtualenv's python works) or of a libpython
// shared library. When it is empty, the first python3 in PATH is used.
const EnvPython = "DORA_PYTHON"

// minVersion is the oldest CPython the loader supports.
var minVersion = [2]int{3, 8}

// Installation describes the CPython a process embeds, as found by Discover.
type Installation struct {
	// Executable is the python executable that was asked (sys.executable),
	// a virtualenv's python when one is active; empty when the setting named
	// a library directly.
	Executable string `json:"executable,omitempty"`
	// Version is sys.version_info as "3.11.7".
	Version      string `json:"version"`
	Major, Minor int    `json:"-"`
	// Library is the libpython shared library that is dlopened.
	Library string `json:"library"`
	// Home is the value PYTHONHOME gets while the interpreter initialises:
	// the base installation's prefix (never a virtualenv's).
	Home string `json:"home"`
	// Prefix is sys.prefix: the virtualenv's folder when Venv is true.
	Prefix string `json:"prefix"`
	Venv   bool   `json:"venv"`
	// FreeThreaded is true for a free-threaded (no-GIL) build; such builds
	// are not tested.
	FreeThreaded bool `json:"free_threaded,omitempty"`
}

func (in *Installation) String() string {
	s := fmt.Sprintf("CPython %s (%s", in.Version, in.Library)
	if in.Executable != "" {
		s += ", " + in.Executable
	}
	if in.Venv {
		s += ", virtualenv " + in.Prefix
	}
	return s + ")"
}

// ErrUnavailable is wrapped by every Discover and Probe error: no usable
// CPython on this machine, as opposed to a broken operator.
var ErrUnavailable = errors.New("python operators are not available")

// probeScript prints what Discover needs, as JSON, with any CPython >= 2.7
// (so that an old interpreter is reported as too old, not as broken).
const probeScript = `
import sys, json
try:
    import sysconfig
    v = sysconfig.get_config_var
except Exception:
    v = lambda name: None
out = {
    "impl": getattr(getattr(sys, "implementation", None), "name", "cpython"),
    "version": list(sys.version_info[:3]),
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "base_exec_prefix": getattr(sys, "base_exec_prefix", sys.exec_prefix),
    "libdir": v("LIBDIR"),
    "libpl": v("LIBPL"),
    "ldlibrary": v("LDLIBRARY"),
    "instsoname": v("INSTSONAME"),
    "multiarch": v("MULTIARCH"),
    "abiflags": getattr(sys, "abiflags", ""),
    "shared": v("Py_ENABLE_SHARED"),
    "gil_disabled": v("Py_GIL_DISABLED"),
}
sys.stdout.write(json.dumps(out))
`

type probeOut struct {
	Impl           string `json:"impl"`
	Version        []int  `json:"version"`
	Executable     string `json:"executable"`
	Prefix         string `json:"prefix"`
	BasePrefix     string `json:"base_prefix"`
	BaseExecPrefix string `json:"base_exec_prefix"`
	LibDir         string `json:"libdir"`
	LibPL          string `json:"libpl"`
	LDLibrary      string `json:"ldlibrary"`
	InstSOName     string `json:"instsoname"`
	Multiarch      string `json:"multiarch"`
	ABIFlags       string `json:"abiflags"`
	Shared         any    `json:"shared"`
	GILDisabled    any    `json:"gil_disabled"`
}

func truthy(v any) bool {
	switch v := v.(type) {
	case float64:
		return v != 0
	case string:
		return v != "" && v != "0"
	case bool:
		return v
	}
	return false
}

var libNameRE = regexp.MustCompile(`^libpython(\d+)\.(\d+)([a-z]*)\.(so|dylib)`)

// Discover finds the CPython to embed. setting is a python executable or a
// libpython path; empty means $DORA_PYTHON, then python3 in PATH. Errors
// wrap ErrUnavailable and say what to do.
func Discover(ctx context.Context, setting string) (*Installation, error) {
	from := "setting"
	if setting == "" {
		setting, from = os.Getenv(EnvPython), "$"+EnvPython
	}
	if setting == "" {
		exe, err := exec.LookPath("python3")
		if err != nil {
			return nil, fmt.Errorf("%w: no python3 in PATH (install CPython >= %d.%d with its shared library, or set %s to a python executable or a libpython .so)",
				ErrUnavailable, minVersion[0], minVersion[1], EnvPython)
		}
		setting, from = exe, "python3 in PATH"
	}
	st, err := os.Stat(setting)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrUnavailable, from, setting, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %s %q is a folder, not a python executable or libpython", ErrUnavailable, from, setting)
	}
	if libNameRE.MatchString(filepath.Base(setting)) {
		return fromLibrary(setting, from)
	}
	return fromExecutable(ctx, setting, from)
}

func fromExecutable(ctx context.Context, exe, from string) (*Installation, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-c", probeScript)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q does not run: %v: %s", ErrUnavailable, from, exe, err, strings.TrimSpace(stderr.String()))
	}
	var p probeOut
	if err := json.Unmarshal(out, &p); err != nil || len(p.Version) < 2 {
		return nil, fmt.Errorf("%w: %s %q is not a CPython interpreter (its answer %q)", ErrUnavailable, from, exe, truncate(string(out), 200))
	}
	in := &Installation{
		Executable:   p.Executable,
		Major:        p.Version[0],
		Minor:        p.Version[1],
		Version:      joinInts(p.Version),
		Prefix:       p.Prefix,
		Venv:         p.Prefix != p.BasePrefix,
		FreeThreaded: truthy(p.GILDisabled),
		Home:         p.BasePrefix,
	}
	if in.Executable == "" {
		in.Executable = exe
	}
	if p.BaseExecPrefix != "" && p.BaseExecPrefix != p.BasePrefix {
		in.Home = p.BasePrefix + string(os.PathListSeparator) + p.BaseExecPrefix
	}
	if p.Impl != "cpython" {
		return nil, fmt.Errorf("%w: %s %q is %s %s; only CPython can be embedded", ErrUnavailable, from, exe, p.Impl, in.Version)
	}
	if err := checkVersion(in, exe); err != nil {
		return nil, err
	}
	cands := libraryCandidates(&p, in)
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			in.Library = c
			return in, nil
		}
	}
	why := "was built without --enable-shared (a static build)"
	if truthy(p.Shared) {
		why = "is built with --enable-shared but its library is missing"
	}
	return nil, fmt.Errorf("%w: %s %q (CPython %s) %s, and no libpython%d.%d shared library was found (looked for %s); install one (Debian/Ubuntu: apt install libpython%d.%d; pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install %s) or set %s to a libpython .so",
		ErrUnavailable, from, exe, in.Version, why, in.Major, in.Minor, strings.Join(cands, ", "), in.Major, in.Minor, in.Version, EnvPython)
}

func libraryCandidates(p *probeOut, in *Installation) []string {
	var names []string
	add := func(n string) {
		if n == "" || strings.HasSuffix(n, ".a") {
			return
		}
		for _, have := range names {
			if have == n {
				return
			}
		}
		names = append(names, n)
	}
	add(p.InstSOName)
	add(p.LDLibrary)
	ver := fmt.Sprintf("%d.%d", in.Major, in.Minor)
	add("libpython" + ver + p.ABIFlags + ".so.1.0")
	add("libpython" + ver + p.ABIFlags + ".so")
	add("libpython" + ver + ".so.1.0")
	add("libpython" + ver + ".so")
	add("libpython" + ver + p.ABIFlags + ".dylib")

	var dirs []string
	addDir := func(d string) {
		if d == "" {
			return
		}
		for _, have := range dirs {
			if have == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	addDir(p.LibDir)
	if p.Multiarch != "" && p.LibDir != "" {
		addDir(filepath.Join(p.LibDir, p.Multiarch))
	}
	base := strings.SplitN(in.Home, string(os.PathListSeparator), 2)[0]
	addDir(filepath.Join(base, "lib"))
	addDir(p.LibPL)
	if p.Multiarch != "" {
		addDir(filepath.Join("/usr/lib", p.Multiarch))
	}
	addDir("/usr/lib64")
	addDir("/usr/lib")
	addDir("/usr/local/lib")

	var out []string
	for _, d := range dirs {
		for _, n := range names {
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

// fromLibrary accepts a libpython path: the version comes from its name and
// PYTHONHOME from the closest parent folder holding lib/pythonX.Y/os.py.
func fromLibrary(lib, from string) (*Installation, error) {
	m := libNameRE.FindStringSubmatch(filepath.Base(lib))
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	in := &Installation{
		Library:      lib,
		Major:        major,
		Minor:        minor,
		Version:      fmt.Sprintf("%d.%d", major, minor),
		FreeThreaded: strings.Contains(m[3], "t"),
	}
	if err := checkVersion(in, lib); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(lib)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrUnavailable, from, lib, err)
	}
	stdlib := fmt.Sprintf("python%d.%d", major, minor)
	var tried []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		for _, libdir := range []string{"lib", "lib64"} {
			probe := filepath.Join(d, libdir, stdlib, "os.py")
			tried = append(tried, probe)
			if _, err := os.Stat(probe); err == nil {
				in.Home, in.Prefix = d, d
				for _, exe := range []string{filepath.Join(d, "bin", stdlib), filepath.Join(d, "bin", "python3")} {
					if _, err := os.Stat(exe); err == nil {
						in.Executable = exe
						break
					}
				}
				return in, nil
			}
		}
		if parent := filepath.Dir(d); parent == d {
			break
		}
	}
	return nil, fmt.Errorf("%w: %s %q: the standard library of CPython %d.%d was not found next to it (looked for %s); set %s to a python executable instead",
		ErrUnavailable, from, lib, major, minor, strings.Join(tried, ", "), EnvPython)
}

func checkVersion(in *Installation, what string) error {
	if in.Major < minVersion[0] || (in.Major == minVersion[0] && in.Minor < minVersion[1]) {
		return fmt.Errorf("%w: %q is CPython %s, which is too old: python operators need CPython >= %d.%d",
			ErrUnavailable, what, in.Version, minVersion[0], minVersion[1])
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
