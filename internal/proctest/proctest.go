// Package proctest reads /proc for tests that check what became of the
// processes they started: reaped, zombie, or still running.
package proctest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what /proc/<pid>/stat says of a process.
type Stat struct {
	PID, PPID int
	Comm      string
	// State is R, S, D, Z (zombie), T, …
	State byte
}

// Read returns what /proc says of pid; false when pid is gone.
func Read(pid int) (Stat, bool) {
	return read(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
}

func read(path string) (Stat, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses,
	// so the fields after it start after the last ')'.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return Stat{}, false
	}
	st := Stat{Comm: s[open+1 : end], State: f[0][0]}
	st.PID, _ = strconv.Atoi(strings.TrimSpace(s[:open]))
	st.PPID, _ = strconv.Atoi(f[1])
	return st, true
}

// Children lists the processes whose parent is this process, zombies
// included.
func Children() []Stat {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	self := os.Getpid()
	var out []Stat
	for _, p := range paths {
		if st, ok := read(p); ok && st.PPID == self {
			out = append(out, st)
		}
	}
	return out
}
