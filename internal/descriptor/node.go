package descriptor

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// nodeSpec is a node as read, with what the cross-node checks need.
type nodeSpec struct {
	node *Node
	at   loc
	// kinds lists which of custom, path, operators, operator were given,
	// in file order; a node needs exactly one.
	kinds []string
	// top holds the process keys written next to `path` (current form),
	// custom those inside `custom:` (seed form); keys and customKeys say
	// which were given, and where.
	top, custom      procSpec
	keys, customKeys map[string]int
	ops              []*operatorSpec
	deploy           deploySpec
	// deployKey is the deploy spelling in effect, for messages.
	deployKey string
	// pathLine is the line of the executable's path, in either form.
	pathLine int
}

// procSpec is what a custom node runs and exchanges.
type procSpec struct {
	path             string
	pathLine         int
	args             []string
	env              map[string]string
	workingDirectory string
	build            string
	inputs           []Input
	outputs          []string
}

// procFields are the keys shared by `custom:` and the node itself.
var procFields = fields[procSpec]{
	{
		name:   "args",
		doc:    "Arguments of the executable: a string split like a POSIX shell would (quotes and backslashes, no expansion), or a list taken as is.",
		schema: ref("args"),
		parse:  func(p *parser, at loc, _, v *yaml.Node, s *procSpec) { s.args = p.args(at, v) },
	},
	{
		name:   "env",
		doc:    "Environment variables of the process. Values may be strings, numbers or booleans and are passed as written.",
		schema: ref("env"),
		parse:  func(p *parser, at loc, _, v *yaml.Node, s *procSpec) { s.env = p.env(at, v) },
	},
	{
		name:   "build",
		doc:    "Shell command run by `dora build` in the node's folder, before the dataflow starts.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, s *procSpec) {
			s.build, _ = p.scalar(at, "build", v)
		},
	},
	{
		name:   "inputs",
		doc:    "Inputs by id: a source (`node/output`, `node/operator/output`, `dora/timer/millis/N`) or a mapping with `source` and `queue_size`.",
		schema: ref("inputs"),
		parse:  func(p *parser, at loc, _, v *yaml.Node, s *procSpec) { s.inputs = p.inputs(at, v) },
	},
	{
		name:   "outputs",
		doc:    "Ids of the outputs the node sends.",
		schema: ref("outputs"),
		parse:  func(p *parser, at loc, _, v *yaml.Node, s *procSpec) { s.outputs = p.outputs(at, v) },
	},
}

var customFields = append(fields[procSpec]{
	{
		name:   "source",
		doc:    "Executable to run: a path relative to the dataflow's folder (or working_dir), an absolute path, or a name looked up in PATH. `.py` files run with python3.",
		schema: map[string]any{"type": "string", "minLength": 1},
		parse: func(p *parser, at loc, k, v *yaml.Node, s *procSpec) {
			s.path, _ = p.text(at, "source", v)
			s.pathLine = k.Line
		},
	},
	{
		name:   "working-directory",
		doc:    "Folder the process starts in, relative to the node's folder or absolute.",
		schema: map[string]any{"type": "string", "minLength": 1},
		parse: func(p *parser, at loc, _, v *yaml.Node, s *procSpec) {
			s.workingDirectory, _ = p.text(at, "working-directory", v)
		},
	},
}, procFields...)

var nodeFields = append(fields[nodeSpec]{
	{
		name:   "id",
		doc:    "Unique id of the node; other nodes refer to its outputs as `id/output`.",
		schema: ref("id"),
		parse: func(p *parser, at loc, k, v *yaml.Node, ns *nodeSpec) {
			ns.node.Line = k.Line
			id, ok := p.scalar(at, "id", v)
			if !ok || !p.checkID(k.Line, at, "node id", id) {
				return
			}
			if id == reservedNodeID {
				p.addf(k.Line, at, "node id %q is reserved for built-in sources like dora/timer/millis/10", id)
				return
			}
			ns.node.ID = id
		},
	},
	{
		name:   "name",
		doc:    "Human-readable name.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, ns *nodeSpec) {
			ns.node.Name, _ = p.scalar(at, "name", v)
		},
	},
	{
		name:   "description",
		doc:    "What the node is for.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, ns *nodeSpec) {
			ns.node.Description, _ = p.scalar(at, "description", v)
		},
	},
	{
		name:   "custom",
		doc:    "Seed form of a custom node: the executable (`source`) and its settings in one block.",
		schema: ref("custom"),
		parse: func(p *parser, at loc, k, v *yaml.Node, ns *nodeSpec) {
			ns.kinds = append(ns.kinds, "custom")
			ns.customKeys = walk(p, at.key("custom"), "custom", v, customFields, &ns.custom)
			if _, ok := ns.customKeys["source"]; ns.customKeys != nil && !ok {
				p.addf(k.Line, at, "custom needs a source (the executable to run)")
			}
		},
	},
	{
		name:   "path",
		doc:    "Executable of a custom node: a path relative to the dataflow's folder (or working_dir), an absolute path, or a name looked up in PATH. `.py` files run with python3.",
		schema: map[string]any{"type": "string", "minLength": 1},
		parse: func(p *parser, at loc, k, v *yaml.Node, ns *nodeSpec) {
			ns.kinds = append(ns.kinds, "path")
			ns.top.path, _ = p.text(at, "path", v)
			ns.top.pathLine = k.Line
		},
	},
	{
		name:   "operators",
		doc:    "Makes this a runtime node hosting these operators in one process.",
		schema: map[string]any{"type": "array", "minItems": 1, "items": ref("listedOperator")},
		parse: func(p *parser, at loc, k, v *yaml.Node, ns *nodeSpec) {
			ns.kinds = append(ns.kinds, "operators")
			items, ok := p.sequence(at, "operators", v)
			if ok && len(items) == 0 {
				p.addf(k.Line, at, "operators is empty; a runtime node needs at least one operator")
			}
			for i, item := range items {
				if op := p.operator(at.key("operators").index(i), item, false); op != nil {
					ns.ops = append(ns.ops, op)
				}
			}
		},
	},
	{
		name:   "operator",
		doc:    "Makes this a runtime node hosting a single operator, whose id defaults to \"" + DefaultOperatorID + "\".",
		schema: ref("operator"),
		parse: func(p *parser, at loc, _, v *yaml.Node, ns *nodeSpec) {
			ns.kinds = append(ns.kinds, "operator")
			if op := p.operator(at.key("operator"), v, true); op != nil {
				ns.ops = append(ns.ops, op)
			}
		},
	},
	deployField[nodeSpec]("_unstable_deploy", "Where and how the node runs (machine, working_dir, local); overrides the dataflow-level defaults field by field.",
		func(ns *nodeSpec) *deploySpec { return &ns.deploy }),
	deployField[nodeSpec]("deploy", "Same as `_unstable_deploy`.",
		func(ns *nodeSpec) *deploySpec { return &ns.deploy }),
}, lift(procFields, func(ns *nodeSpec) *procSpec { return &ns.top })...)

// nodeKinds are the keys that say what a node is.
var nodeKinds = []string{"custom", "path", "operators", "operator"}

// node reads one item of `nodes:`; nil when it is not even a mapping.
func (p *parser) node(at loc, v *yaml.Node) *nodeSpec {
	m := p.deref(v)
	if m.Kind != yaml.MappingNode {
		p.addf(m.Line, at, "a node must be a mapping with an id, got %s", describe(m))
		return nil
	}
	// The id labels every message about the node, even those about keys
	// written before it.
	at.id = peekID(m)
	ns := &nodeSpec{node: &Node{Line: m.Line}, at: at}
	ns.keys = walk(p, at, "a node", m, nodeFields, ns)
	if _, ok := ns.keys["id"]; !ok {
		p.addf(m.Line, at, "id is missing")
	}
	p.finishNode(ns)
	return ns
}

// peekID returns the id written in mapping m if it is a valid one.
func peekID(m *yaml.Node) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "id" && v.Kind == yaml.ScalarNode && idRe.MatchString(v.Value) {
			return v.Value
		}
	}
	return ""
}

// finishNode checks the rules that span several keys of a node and fills
// in the Node.
func (p *parser) finishNode(ns *nodeSpec) {
	n := ns.node
	switch len(ns.kinds) {
	case 0:
		p.addf(n.Line, ns.at, "a node needs exactly one of %s; found none", strings.Join(nodeKinds, ", "))
		return
	case 1:
	default:
		p.addf(n.Line, ns.at, "a node needs exactly one of %s; found %s", strings.Join(nodeKinds, ", "), joinAnd(ns.kinds))
		return
	}
	proc := ns.top
	switch ns.kinds[0] {
	case "operators", "operator":
		for _, key := range []string{"args", "inputs", "outputs"} {
			if line, ok := ns.keys[key]; ok {
				p.addf(line, ns.at, "%s is only for custom nodes; a runtime node's inputs, outputs and settings belong to its operators", key)
			}
		}
		for _, op := range ns.ops {
			n.Operators = append(n.Operators, op.op)
		}
		n.Env, n.Build = ns.top.env, ns.top.build
		return
	case "custom":
		proc = p.mergeCustom(ns)
	}
	ns.pathLine = proc.pathLine
	n.Path, n.Args, n.Env, n.Build = proc.path, proc.args, proc.env, proc.build
	n.WorkingDirectory, n.Inputs, n.Outputs = proc.workingDirectory, proc.inputs, proc.outputs
}

// mergeCustom combines the seed form's `custom:` block with process keys
// written next to it; a key given in both places is ambiguous.
func (p *parser) mergeCustom(ns *nodeSpec) procSpec {
	out := ns.top
	c := ns.custom
	out.path, out.pathLine, out.workingDirectory = c.path, c.pathLine, c.workingDirectory
	for _, f := range procFields {
		line, inside := ns.customKeys[f.name]
		if !inside {
			continue
		}
		if top, both := ns.keys[f.name]; both {
			p.addf(max(line, top), ns.at, "%s is set both inside custom and next to it; keep one", f.name)
		}
		switch f.name {
		case "args":
			out.args = c.args
		case "env":
			out.env = c.env
		case "build":
			out.build = c.build
		case "inputs":
			out.inputs = c.inputs
		case "outputs":
			out.outputs = c.outputs
		}
	}
	return out
}

// joinAnd renders ["a","b","c"] as "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
