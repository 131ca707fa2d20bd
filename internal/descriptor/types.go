// Package descriptor parses and validates dataflow YAML files once, so that
// every other component works with typed, already-checked specs.
//
// Two spellings of the same graph are accepted: the seed form (node-level
// `custom:` blocks, `source`, `working-directory`) and the current dora form
// (node-level `path`, `args`, `env`, ...). Both produce the same Dataflow.
package descriptor

import (
	"fmt"
	"time"
)

// Dataflow is a validated dataflow graph.
type Dataflow struct {
	// File is the path the dataflow was read from, as given by the user; it
	// prefixes every error message. It is "dataflow.yml" for in-memory input.
	File string `json:"file"`
	// Dir is the absolute folder relative node and operator paths resolve
	// against (the folder of File).
	Dir string `json:"dir"`
	// Deploy holds the dataflow-level defaults; each node's Deploy already has
	// them applied.
	Deploy Deploy  `json:"deploy"`
	Nodes  []*Node `json:"nodes"`
}

// Node is one process of the dataflow: a custom executable or a runtime node
// that hosts operators.
type Node struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Line is the 1-based line of the node's `id` in File, for messages.
	Line int `json:"line"`

	// Path is the executable of a custom node as written in the YAML (`path`
	// or `custom.source`); empty for runtime nodes.
	Path string `json:"path,omitempty"`
	// Args are the arguments passed to Path. A YAML string is split like a
	// POSIX shell would (quotes respected); a YAML list is taken as is.
	Args []string `json:"args,omitempty"`
	// Env values are scalars in YAML (bool, int, float, string) and strings here.
	Env map[string]string `json:"env,omitempty"`
	// WorkingDirectory is `custom.working-directory` (seed form), relative to
	// the node's working directory or absolute.
	WorkingDirectory string `json:"working_directory,omitempty"`
	// Build is a shell command run by `dora build` in Dir.
	Build string `json:"build,omitempty"`

	// Inputs of a custom node, sorted by ID. Empty for runtime nodes: their
	// inputs belong to their operators.
	Inputs []Input `json:"inputs,omitempty"`
	// Outputs of a custom node in declaration order. Empty for runtime nodes.
	Outputs []string `json:"outputs,omitempty"`

	// Operators is non-empty exactly for runtime nodes (`operators:` or the
	// single `operator:` form).
	Operators []*Operator `json:"operators,omitempty"`

	// Deploy is the node's placement with the dataflow-level defaults applied.
	Deploy Deploy `json:"deploy"`
}

// IsRuntime reports whether the node is a runtime node hosting operators.
func (n *Node) IsRuntime() bool { return len(n.Operators) > 0 }

// Operator is one operator of a runtime node.
type Operator struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Line        int    `json:"line"`

	Source OperatorSource `json:"source"`
	Build  string         `json:"build,omitempty"`
	// Inputs sorted by ID; Outputs in declaration order. IDs are local to
	// the operator; other nodes refer to them as node/operator/output.
	Inputs  []Input  `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"`

	// Sandbox holds the limits and grants of a wasm operator; nil means the
	// defaults (no filesystem, default memory and time limits).
	Sandbox *Sandbox `json:"sandbox,omitempty"`
	// Isolate runs the operator, whatever its source kind, in a process of
	// its own (`dora operator-host`, loaders/isolated) instead of inside its
	// runtime node: a crash, an exit or a hang in its code then cannot take
	// down the node or the node's other operators. It costs about 0.1 ms
	// per event.
	Isolate bool `json:"isolate,omitempty"`
}

// SourceKind says which loader runs an operator.
type SourceKind string

const (
	SourceSharedLibrary SourceKind = "shared-library"
	SourcePython        SourceKind = "python"
	SourceWASM          SourceKind = "wasm"
)

// OperatorSource is the implementation of an operator.
type OperatorSource struct {
	Kind SourceKind `json:"kind"`
	// Path as written in the YAML. For shared libraries it may omit the
	// platform prefix and extension (`build/operator` means
	// `build/liboperator.so` on Linux); the loader resolves it.
	Path string `json:"path"`
}

// Sandbox configures a wasm operator's isolation.
type Sandbox struct {
	// Mounts grant filesystem access: "host/dir:/guest/dir[:ro]"; the host
	// side resolves against the node's working directory.
	Mounts []string `json:"mounts,omitempty"`
	// MemoryLimit caps the guest's linear memory in bytes; 0 means the
	// loader's default.
	MemoryLimit uint64 `json:"memory_limit,omitempty"`
	// EventTimeout bounds one on_event call; 0 means the loader's default
	// and NoEventTimeout (`event_timeout: none`) no limit at all.
	EventTimeout time.Duration `json:"event_timeout,omitempty"`
}

// NoEventTimeout is Sandbox.EventTimeout for operators without a time limit.
const NoEventTimeout time.Duration = -1

// Input is one input of a node or operator.
type Input struct {
	ID     string      `json:"id"`
	Source InputSource `json:"source"`
	// QueueSize is how many undelivered messages are kept for this input
	// before the oldest is dropped. Defaults to DefaultQueueSize.
	QueueSize int `json:"queue_size"`
	Line      int `json:"line"`
}

// DefaultQueueSize is the queue size of inputs that do not set one.
const DefaultQueueSize = 10

// InputSource is where an input's messages come from: a timer, or an output
// of a node or of an operator of a runtime node.
type InputSource struct {
	// Timer is the period of a `dora/timer/...` source; zero otherwise.
	Timer time.Duration `json:"timer,omitempty"`
	// Node, Operator and Output name a producing output. Operator is empty
	// for outputs of custom nodes.
	Node     string `json:"node,omitempty"`
	Operator string `json:"operator,omitempty"`
	Output   string `json:"output,omitempty"`
}

// IsTimer reports whether the input is fed by a daemon timer.
func (s InputSource) IsTimer() bool { return s.Timer > 0 }

// OutputID is the output's name as seen by the node that produces it:
// "output" for custom nodes, "operator/output" for runtime nodes.
func (s InputSource) OutputID() string {
	if s.Operator != "" {
		return s.Operator + "/" + s.Output
	}
	return s.Output
}

// String returns the source as written in YAML short form, e.g.
// "camera/image", "runtime/op/out" or "dora/timer/millis/10".
func (s InputSource) String() string {
	if s.IsTimer() {
		return TimerSource(s.Timer)
	}
	return s.Node + "/" + s.OutputID()
}

// TimerSource renders a timer period in the most natural YAML spelling.
func TimerSource(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return fmt.Sprintf("dora/timer/secs/%d", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("dora/timer/millis/%d", d/time.Millisecond)
	default:
		return fmt.Sprintf("dora/timer/hz/%d", time.Second/d)
	}
}

// Deploy is where and how a node runs (seed 001: `_unstable_deploy` or
// `deploy`, on a node or as dataflow-level defaults).
type Deploy struct {
	// Machine is the daemon's machine id; empty means "the default daemon".
	Machine string `json:"machine,omitempty"`
	// WorkingDir is the node's working directory on its machine. Required
	// when a non-local node has a relative path.
	WorkingDir string `json:"working_dir,omitempty"`
	// Local says whether the node's machine is the one the CLI runs on, so
	// that relative paths resolve against Dataflow.Dir. Defaults to true.
	Local bool `json:"local"`
}

// Node returns the node with the given id, or nil.
func (d *Dataflow) Node(id string) *Node {
	for _, n := range d.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Operator returns the operator with the given id, or nil.
func (n *Node) Operator(id string) *Operator {
	for _, op := range n.Operators {
		if op.ID == id {
			return op
		}
	}
	return nil
}
