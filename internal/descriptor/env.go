package descriptor

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// env reads `env:` as a mapping, or as the seed's list of one-key mappings
// (`- ENVIRONMENT_VARIABLE_1: true`). Values keep the text they were
// written with: `1.50` stays "1.50", `True` stays "True".
func (p *parser) env(at loc, v *yaml.Node) map[string]string {
	v = p.deref(v)
	var entries []entry
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.MappingNode:
		entries = p.entries(at, v)
	case v.Kind == yaml.SequenceNode:
		for _, item := range v.Content {
			item = p.deref(item)
			if item.Kind != yaml.MappingNode {
				p.addf(item.Line, at, "env list items must be mappings like `- NAME: value`, got %s", describe(item))
				continue
			}
			entries = append(entries, p.entries(at, item)...)
		}
	default:
		p.addf(v.Line, at, "env must be a mapping, got %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(entries))
	lines := make(map[string]int, len(entries))
	for _, e := range entries {
		name, line := e.key.Value, e.key.Line
		if first, dup := lines[name]; dup {
			p.addf(line, at, "env %q is set twice (first at line %d)", name, first)
			continue
		}
		lines[name] = line
		if name == "" || strings.ContainsAny(name, "=\x00") {
			p.addf(line, at, "env name %q is not a valid variable name", name)
			continue
		}
		val := p.deref(e.val)
		switch {
		case isNull(val):
			p.addf(line, at, "env %q needs a value (write \"\" for an empty string)", name)
		case val.Kind != yaml.ScalarNode:
			p.addf(val.Line, at, "env %q must be a string, number or boolean, got %s", name, describe(val))
		default:
			out[name] = val.Value
		}
	}
	return out
}
