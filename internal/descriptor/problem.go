package descriptor

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a dataflow file.
type Problem struct {
	File string `json:"file"`
	// Line is 1-based; 0 when YAML could not say where (some syntax errors).
	Line int `json:"line,omitempty"`
	// Path locates the problem, e.g. "nodes[2].operators[0]": the node or
	// operator it concerns, or the block holding the offending key
	// ("nodes[0].custom", "nodes[1]._unstable_deploy"). Empty for problems
	// with the whole file.
	Path string `json:"path,omitempty"`
	// ID is the id of the node or operator at Path, when it has one, so a
	// reader does not have to count list items.
	ID      string `json:"id,omitempty"`
	Message string `json:"message"`
}

// String renders the problem the way compilers do, so editors and terminals
// can jump to it: "dataflow.yml:14: nodes[2] (plot): message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		if p.ID != "" {
			fmt.Fprintf(&b, " (%s)", p.ID)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError is returned by Parse and Load when the file is not a valid
// dataflow. It holds every problem found, in file order, so that users fix
// them all in one round.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// loc is where the parser is: the YAML path and the id of the enclosing
// node or operator, both copied into every Problem raised there.
type loc struct {
	path string
	id   string
}

func (l loc) key(k string) loc {
	if l.path == "" {
		return loc{path: k, id: l.id}
	}
	return loc{path: l.path + "." + k, id: l.id}
}

func (l loc) index(i int) loc {
	return loc{path: fmt.Sprintf("%s[%d]", l.path, i), id: l.id}
}

// maxProblems caps what a ValidationError lists; past it, only a count is
// kept. A generated or badly broken file should not flood a terminal.
const maxProblems = 200

// problems collects Problems for one file.
type problems struct {
	file    string
	list    []Problem
	dropped int
}

func (ps *problems) addf(line int, at loc, format string, args ...any) {
	if len(ps.list) == maxProblems {
		ps.dropped++
		return
	}
	ps.list = append(ps.list, Problem{
		File: ps.file,
		Line: line,
		Path: at.path,
		ID:   at.id,
		// Messages quote user text with %q, but YAML's own messages and
		// recovered panics are not ours; ValidationError promises one
		// problem per line.
		Message: strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(fmt.Sprintf(format, args...)),
	})
}

// err returns nil when nothing was found, else a *ValidationError sorted by
// line (problems are found in two passes, structure then references).
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
	if ps.dropped > 0 {
		ps.list = append(ps.list, Problem{File: ps.file, Message: fmt.Sprintf("and %d more problems", ps.dropped)})
	}
	return &ValidationError{Problems: ps.list}
}
