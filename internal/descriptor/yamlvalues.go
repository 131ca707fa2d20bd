package descriptor

import (
	"math"
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxSteps bounds the YAML values the parser visits. Aliases make a small
// file expand into a huge tree ("billion laughs"); no real dataflow comes
// near this.
const maxSteps = 1_000_000

// parser walks one YAML document, collecting problems instead of stopping.
type parser struct {
	problems
	steps int
	// merging holds the mappings whose `<<` keys are being expanded: an
	// anchor can be merged into itself, which would never end.
	merging map[*yaml.Node]bool
}

// deref follows aliases and counts the visit. Past maxSteps it reports once
// and hands back nulls, so every caller stays on its normal error path.
func (p *parser) deref(n *yaml.Node) *yaml.Node {
	for {
		p.steps++
		if p.steps > maxSteps {
			if p.steps == maxSteps+1 {
				p.addf(n.Line, loc{}, "the document is too large: over %d YAML values once aliases are expanded", maxSteps)
			}
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		}
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			return n
		}
		n = n.Alias
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a value's YAML type for "got ..." messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "an unsupported YAML value"
}

type entry struct{ key, val *yaml.Node }

// mapping returns the entries of a mapping, with `<<` merge keys expanded.
// A null value is an empty mapping: users comment out every entry and
// leave the key. Anything else is reported as "what must be a mapping".
func (p *parser) mapping(at loc, what string, n *yaml.Node) ([]entry, bool) {
	n = p.deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, at, "%s must be a mapping, got %s", what, describe(n))
		return nil, false
	}
	return p.entries(at, n), true
}

func (p *parser) entries(at loc, m *yaml.Node) []entry {
	if p.merging[m] {
		p.addf(m.Line, at, "<< merges a mapping into itself")
		return nil
	}
	if p.merging == nil {
		p.merging = make(map[*yaml.Node]bool)
	}
	p.merging[m] = true
	defer delete(p.merging, m)
	var own, merged []entry
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := p.deref(m.Content[i])
		if k.Kind != yaml.ScalarNode {
			p.addf(k.Line, at, "keys must be plain words, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, p.mergeSources(at, m.Content[i+1])...)
			continue
		}
		own = append(own, entry{k, m.Content[i+1]})
	}
	if len(merged) == 0 {
		return own
	}
	// YAML merge keys: keys written in the mapping win over merged ones,
	// and among merged mappings the first one wins.
	taken := make(map[string]bool, len(own)+len(merged))
	for _, e := range own {
		taken[e.key.Value] = true
	}
	out := own
	for _, e := range merged {
		if !taken[e.key.Value] {
			taken[e.key.Value] = true
			out = append(out, e)
		}
	}
	return out
}

func (p *parser) mergeSources(at loc, v *yaml.Node) []entry {
	v = p.deref(v)
	switch v.Kind {
	case yaml.MappingNode:
		return p.entries(at, v)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range v.Content {
			if item = p.deref(item); item.Kind == yaml.MappingNode {
				out = append(out, p.entries(at, item)...)
			} else {
				p.addf(item.Line, at, "<< merges mappings, got %s", describe(item))
			}
		}
		return out
	}
	p.addf(v.Line, at, "<< merges mappings, got %s", describe(v))
	return nil
}

// sequence returns the items of a sequence; null is an empty one.
func (p *parser) sequence(at loc, what string, n *yaml.Node) ([]*yaml.Node, bool) {
	n = p.deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.addf(n.Line, at, "%s must be a sequence, got %s", what, describe(n))
		return nil, false
	}
	return n.Content, true
}

// scalar returns a scalar as written. Numbers and booleans are accepted as
// their text: `id: 1` or `machine: 2` mean what they look like.
func (p *parser) scalar(at loc, what string, n *yaml.Node) (string, bool) {
	n = p.deref(n)
	if n.Kind != yaml.ScalarNode {
		p.addf(n.Line, at, "%s must be a string, got %s", what, describe(n))
		return "", false
	}
	if isNull(n) {
		p.addf(n.Line, at, "%s needs a value", what)
		return "", false
	}
	return n.Value, true
}

// text is scalar for values that must not be empty (paths, ids).
func (p *parser) text(at loc, what string, n *yaml.Node) (string, bool) {
	s, ok := p.scalar(at, what, n)
	if ok && s == "" {
		p.addf(n.Line, at, "%s must not be empty", what)
		return "", false
	}
	return s, ok
}

func (p *parser) boolean(at loc, what string, n *yaml.Node) (bool, bool) {
	n = p.deref(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.addf(n.Line, at, "%s must be true or false, got %s", what, describeValue(n))
		return false, false
	}
	return b, true
}

// positiveInt reads a YAML integer (any YAML spelling: 10, 0x0a, 1_000)
// that fits an int32, a bound far above any sane queue or count.
func (p *parser) positiveInt(at loc, what string, n *yaml.Node) (int64, bool) {
	n = p.deref(n)
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil || v <= 0 || v > math.MaxInt32 {
		p.addf(n.Line, at, "%s must be a positive integer, got %s", what, describeValue(n))
		return 0, false
	}
	return v, true
}

// describeValue is describe, but shows short scalars themselves: "got -1"
// says more than "got a number".
func describeValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) && len(n.Value) <= 40 {
		if n.ShortTag() == "!!str" {
			return "the string " + strconv.Quote(n.Value)
		}
		return n.Value
	}
	return describe(n)
}
