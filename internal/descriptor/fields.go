package descriptor

import (
	"maps"

	"gopkg.in/yaml.v3"
)

// field is one key a YAML mapping accepts. The parser dispatches on these
// tables and JSONSchema is generated from them, so the accepted keys, their
// documentation and the schema cannot drift apart.
type field[T any] struct {
	name string
	doc  string
	// schema is the JSON Schema of the value, without its description.
	schema map[string]any
	// parse reads the value v of key k into dst, reporting problems at at.
	parse func(p *parser, at loc, k, v *yaml.Node, dst *T)
}

type fields[T any] []field[T]

func (fs fields[T]) names() []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out
}

func (fs fields[T]) find(name string) *field[T] {
	for i := range fs {
		if fs[i].name == name {
			return &fs[i]
		}
	}
	return nil
}

// properties is the JSON Schema "properties" object of the table.
func (fs fields[T]) properties() map[string]any {
	props := make(map[string]any, len(fs))
	for _, f := range fs {
		s := maps.Clone(f.schema)
		s["description"] = f.doc
		props[f.name] = s
	}
	return props
}

// lift adapts fields of a part of T (such as the process spec shared by
// `custom:` and the node itself) so they can sit in T's table.
func lift[T, U any](fs fields[U], part func(*T) *U) fields[T] {
	out := make(fields[T], len(fs))
	for i, f := range fs {
		out[i] = field[T]{name: f.name, doc: f.doc, schema: f.schema,
			parse: func(p *parser, at loc, k, v *yaml.Node, dst *T) { f.parse(p, at, k, v, part(dst)) }}
	}
	return out
}

// walk reads mapping m into dst through the table fs. Unknown and repeated
// keys are problems; the walk goes on so that every problem is reported.
// It returns the line of each key found, for rules that span several keys;
// nil when m is not a mapping (reported as "what must be a mapping").
func walk[T any](p *parser, at loc, what string, m *yaml.Node, fs fields[T], dst *T) map[string]int {
	entries, ok := p.mapping(at, what, m)
	if !ok {
		return nil
	}
	seen := make(map[string]int, len(entries))
	for _, e := range entries {
		name := e.key.Value
		if first, dup := seen[name]; dup {
			p.addf(e.key.Line, at, "key %q is repeated (first at line %d)", name, first)
			continue
		}
		seen[name] = e.key.Line
		f := fs.find(name)
		if f == nil {
			p.addf(e.key.Line, at, "unknown key %q%s", name, didYouMean(name, fs.names()))
			continue
		}
		f.parse(p, at, e.key, e.val, dst)
	}
	return seen
}
