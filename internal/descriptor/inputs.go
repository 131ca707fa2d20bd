package descriptor

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// timerUnits are the units of `dora/timer/<unit>/<n>`, with the period of
// n = 1; hz is special-cased (period = 1s / n).
var timerUnits = []struct {
	name string
	unit time.Duration
}{
	{"millis", time.Millisecond},
	{"secs", time.Second},
	{"hz", 0},
}

func timerUnitNames() []string {
	out := make([]string, len(timerUnits))
	for i, u := range timerUnits {
		out[i] = u.name
	}
	return out
}

// inputLong is the long form of an input: {source, queue_size}.
type inputLong struct {
	source     string
	sourceLine int
	queueSize  int
}

var inputFields = fields[inputLong]{
	{
		name:   "source",
		doc:    "Where the messages come from: `node/output`, `node/operator/output` or `dora/timer/<millis|secs|hz>/<n>`.",
		schema: ref("source"),
		parse: func(p *parser, at loc, k, v *yaml.Node, in *inputLong) {
			in.sourceLine = k.Line
			in.source, _ = p.text(at, "source", v)
		},
	},
	{
		name: "queue_size",
		doc: "How many undelivered messages are kept for this input before the oldest is dropped. Defaults to " +
			strconv.Itoa(DefaultQueueSize) + ".",
		schema: map[string]any{"type": "integer", "minimum": 1, "maximum": math.MaxInt32, "default": DefaultQueueSize},
		parse: func(p *parser, at loc, _, v *yaml.Node, in *inputLong) {
			if n, ok := p.positiveInt(at, "queue_size", v); ok {
				in.queueSize = int(n)
			}
		},
	},
}

// inputs reads an `inputs:` mapping into Inputs sorted by id. Sources are
// checked for syntax here and resolved against the graph later (link).
func (p *parser) inputs(at loc, v *yaml.Node) []Input {
	entries, _ := p.mapping(at, "inputs", v)
	seen := make(map[string]int, len(entries))
	var out []Input
	for _, e := range entries {
		id, line := e.key.Value, e.key.Line
		if first, dup := seen[id]; dup {
			p.addf(line, at, "input %q is declared twice (first at line %d)", id, first)
			continue
		}
		seen[id] = line
		if !p.checkID(line, at, "input id", id) {
			continue
		}
		if in, ok := p.input(at, id, e.key, e.val); ok {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b Input) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (p *parser) input(at loc, id string, k, v *yaml.Node) (Input, bool) {
	in := Input{ID: id, QueueSize: DefaultQueueSize, Line: k.Line}
	v = p.deref(v)
	var src string
	srcLine := k.Line
	switch {
	case v.Kind == yaml.MappingNode:
		long := inputLong{queueSize: DefaultQueueSize}
		keys := walk(p, at.key("inputs."+id), "input "+strconv.Quote(id), v, inputFields, &long)
		if _, ok := keys["source"]; !ok {
			p.addf(k.Line, at, "input %q needs a source", id)
			return in, false
		}
		src, srcLine, in.QueueSize = long.source, long.sourceLine, long.queueSize
	case v.Kind == yaml.ScalarNode && !isNull(v) && v.Value != "":
		src = v.Value
	default:
		p.addf(k.Line, at, "input %q must be a source like node/output or a mapping with source and queue_size, got %s", id, describeValue(v))
		return in, false
	}
	if src == "" { // reported by the source field
		return in, false
	}
	s, ok := p.source(at, srcLine, id, src)
	in.Source = s
	return in, ok
}

// source checks the syntax of an input source; whether the node and
// output exist is checked once all nodes are read.
func (p *parser) source(at loc, line int, id, src string) (InputSource, bool) {
	parts := strings.Split(src, "/")
	if parts[0] == reservedNodeID {
		d, ok := p.timer(at, line, id, src, parts)
		return InputSource{Timer: d}, ok
	}
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		p.addf(line, at, "input %q: source %q must be node/output, node/operator/output or dora/timer/<unit>/<n>", id, src)
		return InputSource{}, false
	}
	for _, part := range parts {
		if !idRe.MatchString(part) {
			p.addf(line, at, `input %q: source %q: %q may only contain letters, digits, "_", "." and "-"`, id, src, part)
			return InputSource{}, false
		}
	}
	if len(parts) == 2 {
		return InputSource{Node: parts[0], Output: parts[1]}, true
	}
	return InputSource{Node: parts[0], Operator: parts[1], Output: parts[2]}, true
}

// timer parses dora/timer/<unit>/<n> into its period.
func (p *parser) timer(at loc, line int, id, src string, parts []string) (time.Duration, bool) {
	units := timerUnitNames()
	if len(parts) != 4 || parts[1] != "timer" {
		p.addf(line, at, "input %q: unknown built-in source %q; the only one is dora/timer/<%s>/<n>", id, src, strings.Join(units, "|"))
		return 0, false
	}
	i := slices.Index(units, parts[2])
	if i < 0 {
		p.addf(line, at, "input %q: unknown timer unit %q%s; use %s", id, parts[2], didYouMean(parts[2], units), joinOr(units))
		return 0, false
	}
	n, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || n <= 0 || strings.Trim(parts[3], "0123456789") != "" {
		p.addf(line, at, "input %q: timer value %q must be a positive integer", id, parts[3])
		return 0, false
	}
	unit := timerUnits[i].unit
	if unit == 0 { // hz
		if n > int64(time.Second) {
			p.addf(line, at, "input %q: timer frequency %d Hz is above the 1 ns resolution of timers", id, n)
			return 0, false
		}
		return time.Second / time.Duration(n), true
	}
	if n > math.MaxInt64/int64(unit) {
		p.addf(line, at, "input %q: timer period %s is too long", id, src)
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// joinOr renders ["a","b","c"] as "a, b or c".
func joinOr(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// outputs reads an `outputs:` list, keeping its order.
func (p *parser) outputs(at loc, v *yaml.Node) []string {
	items, _ := p.sequence(at, "outputs", v)
	seen := make(map[string]int, len(items))
	var out []string
	for _, item := range items {
		item = p.deref(item)
		id, ok := p.scalar(at, "each output", item)
		if !ok || !p.checkID(item.Line, at, "output id", id) {
			continue
		}
		if first, dup := seen[id]; dup {
			p.addf(item.Line, at, "output %q is declared twice (first at line %d)", id, first)
			continue
		}
		seen[id] = item.Line
		out = append(out, id)
	}
	return out
}
