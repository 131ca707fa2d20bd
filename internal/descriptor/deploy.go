package descriptor

import "gopkg.in/yaml.v3"

// deploySpec is a deploy block as written: nil fields were not given, so
// that a node inherits the dataflow-level value field by field.
type deploySpec struct {
	// key is the spelling used (`_unstable_deploy` or `deploy`), echoed in
	// messages; line is where it is.
	key        string
	line       int
	machine    *string
	workingDir *string
	local      *bool
}

var deployFields = fields[deploySpec]{
	{
		name:   "machine",
		doc:    "Id of the machine (daemon `--machine-id`) that runs the node. Empty means the default daemon.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, d *deploySpec) {
			if s, ok := p.scalar(at, "machine", v); ok {
				d.machine = &s
			}
		},
	},
	{
		name: "working_dir",
		doc: "Working directory of the node on its machine. Relative paths of the node resolve against it. " +
			"Required when the node is not local and uses relative paths.",
		schema: map[string]any{"type": "string", "minLength": 1},
		parse: func(p *parser, at loc, _, v *yaml.Node, d *deploySpec) {
			if s, ok := p.text(at, "working_dir", v); ok {
				d.workingDir = &s
			}
		},
	},
	{
		name: "local",
		doc: "Whether the node's machine is the one the CLI runs on, so relative paths resolve against the dataflow's folder " +
			"and `dora check` can look for its files. Defaults to true.",
		schema: map[string]any{"type": "boolean", "default": true},
		parse: func(p *parser, at loc, _, v *yaml.Node, d *deploySpec) {
			if b, ok := p.boolean(at, "local", v); ok {
				d.local = &b
			}
		},
	},
}

// deployField is the `_unstable_deploy` or `deploy` key of a node or of the
// dataflow; the two spellings are one setting, so giving both is an error.
func deployField[T any](name, doc string, get func(*T) *deploySpec) field[T] {
	return field[T]{
		name:   name,
		doc:    doc,
		schema: ref("deploy"),
		parse: func(p *parser, at loc, k, v *yaml.Node, dst *T) {
			d := get(dst)
			if d.key != "" {
				p.addf(k.Line, at, "%s is the same setting as %s (line %d); keep one", name, d.key, d.line)
				return
			}
			d.key, d.line = name, k.Line
			walk(p, at.key(name), name, v, deployFields, d)
		},
	}
}

// resolve fills the unset fields of d from defaults, then from the built-in
// defaults (local: true).
func (d deploySpec) resolve(defaults deploySpec) Deploy {
	out := Deploy{Local: true}
	for _, s := range []deploySpec{defaults, d} {
		if s.machine != nil {
			out.Machine = *s.machine
		}
		if s.workingDir != nil {
			out.WorkingDir = *s.workingDir
		}
		if s.local != nil {
			out.Local = *s.local
		}
	}
	return out
}

func (d deploySpec) keyOr(fallback string) string {
	if d.key != "" {
		return d.key
	}
	return fallback
}
