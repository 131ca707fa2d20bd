package descriptor

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultOperatorID is the id of the operator of a single-operator runtime
// node (`operator:`) that gives none, as in dora-rs; its outputs are
// referred to as node/op/output.
const DefaultOperatorID = "op"

// operatorSpec is an operator as read, with what the later checks need.
type operatorSpec struct {
	op *Operator
	at loc
	// sources lists the source keys given (shared-library, python, ...);
	// exactly one is needed. sourceLine is the line of the last one.
	sources    []string
	sourceLine int
}

// sourceKinds maps each accepted source key to its kind. `shared_library`
// is how the seed's spec text spells it once.
var sourceKinds = []struct {
	key  string
	kind SourceKind
	doc  string
}{
	{"shared-library", SourceSharedLibrary, "Path of a C-ABI shared library; the `lib` prefix and the platform's extension may be left out."},
	{"shared_library", SourceSharedLibrary, "Same as `shared-library` (spelling of the original spec)."},
	{"python", SourcePython, "Path of a Python file defining an `Operator` class."},
	{"wasm", SourceWASM, "Path of a WebAssembly module (.wasm) exporting the dora operator ABI."},
}

var operatorFields = append(fields[operatorSpec]{
	{
		name:   "id",
		doc:    "Id of the operator, unique within its node; other nodes refer to its outputs as `node/operator/output`.",
		schema: ref("id"),
		parse: func(p *parser, at loc, k, v *yaml.Node, o *operatorSpec) {
			o.op.Line = k.Line
			if id, ok := p.scalar(at, "id", v); ok && p.checkID(k.Line, at, "operator id", id) {
				o.op.ID = id
			}
		},
	},
	{
		name:   "name",
		doc:    "Human-readable name.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) {
			o.op.Name, _ = p.scalar(at, "name", v)
		},
	},
	{
		name:   "description",
		doc:    "What the operator is for.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) {
			o.op.Description, _ = p.scalar(at, "description", v)
		},
	},
	{
		name:   "build",
		doc:    "Shell command run by `dora build` in the node's folder, before the dataflow starts.",
		schema: map[string]any{"type": "string"},
		parse: func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) {
			o.op.Build, _ = p.scalar(at, "build", v)
		},
	},
	{
		name:   "inputs",
		doc:    "Inputs by id: a source (`node/output`, `node/operator/output`, `dora/timer/millis/N`) or a mapping with `source` and `queue_size`.",
		schema: ref("inputs"),
		parse:  func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) { o.op.Inputs = p.inputs(at, v) },
	},
	{
		name:   "outputs",
		doc:    "Ids of the outputs the operator sends.",
		schema: ref("outputs"),
		parse:  func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) { o.op.Outputs = p.outputs(at, v) },
	},
	{
		name: "isolate",
		doc: "Run the operator in a process of its own, so that a crash, an exit or a hang in its code " +
			"cannot take down its runtime node or the node's other operators. Works for every source kind; " +
			"costs about 0.1 ms per event.",
		schema: map[string]any{"type": "boolean", "default": false},
		parse: func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) {
			if b, ok := p.boolean(at, "isolate", v); ok {
				o.op.Isolate = b
			}
		},
	},
	{
		name:   "sandbox",
		doc:    "Isolation settings of a wasm operator: filesystem mounts, memory and time limits.",
		schema: ref("sandbox"),
		parse: func(p *parser, at loc, _, v *yaml.Node, o *operatorSpec) {
			o.op.Sandbox = p.sandbox(at.key("sandbox"), v)
		},
	},
}, sourceFields()...)

func sourceFields() fields[operatorSpec] {
	out := make(fields[operatorSpec], 0, len(sourceKinds))
	for _, s := range sourceKinds {
		out = append(out, field[operatorSpec]{
			name:   s.key,
			doc:    s.doc,
			schema: map[string]any{"type": "string", "minLength": 1},
			parse: func(p *parser, at loc, k, v *yaml.Node, o *operatorSpec) {
				o.sources = append(o.sources, s.key)
				o.sourceLine = k.Line
				path, _ := p.text(at, s.key, v)
				o.op.Source = OperatorSource{Kind: s.kind, Path: path}
			},
		})
	}
	return out
}

// operator reads one operator; single is the `operator:` form, whose id is
// optional. It returns nil when v is not even a mapping.
func (p *parser) operator(at loc, v *yaml.Node, single bool) *operatorSpec {
	m := p.deref(v)
	if m.Kind != yaml.MappingNode {
		p.addf(m.Line, at, "an operator must be a mapping, got %s", describe(m))
		return nil
	}
	at.id = peekID(m)
	o := &operatorSpec{op: &Operator{Line: m.Line}, at: at}
	keys := walk(p, at, "an operator", m, operatorFields, o)
	if _, ok := keys["id"]; !ok {
		if single {
			o.op.ID = DefaultOperatorID
			o.at.id = DefaultOperatorID
		} else {
			p.addf(m.Line, at, "id is missing")
		}
	}
	switch len(o.sources) {
	case 1:
		if line, ok := keys["sandbox"]; ok && o.op.Source.Kind != SourceWASM {
			p.addf(line, o.at, "sandbox is only for wasm operators; this one is %s", o.op.Source.Kind)
		}
	case 0:
		p.addf(o.op.Line, o.at, "exactly one of %s is needed", strings.Join(uniqueKindNames(), ", "))
	default:
		p.addf(o.sourceLine, o.at, "exactly one of %s is needed; found %s", strings.Join(uniqueKindNames(), ", "), joinAnd(o.sources))
	}
	return o
}

// uniqueKindNames lists the source kinds once each, in the spelling of
// SourceKind ("shared-library", "python", "wasm").
func uniqueKindNames() []string {
	var out []string
	for _, s := range sourceKinds {
		if string(s.kind) == s.key {
			out = append(out, s.key)
		}
	}
	return out
}
