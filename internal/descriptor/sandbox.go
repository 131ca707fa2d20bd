package descriptor

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var sandboxFields = fields[Sandbox]{
	{
		name: "mounts",
		doc: "Folders the operator may access, as `host:guest` or `host:guest:ro`. The host side resolves against the node's folder; " +
			"the guest side is an absolute path inside the sandbox. Without mounts the operator has no filesystem.",
		schema: map[string]any{"type": "array", "items": map[string]any{"type": "string", "pattern": mountPattern}},
		parse: func(p *parser, at loc, _, v *yaml.Node, s *Sandbox) {
			items, _ := p.sequence(at, "mounts", v)
			for _, item := range items {
				item = p.deref(item)
				m, ok := p.text(at, "each mount", item)
				if !ok {
					continue
				}
				if err := checkMount(m); err != nil {
					p.addf(item.Line, at, "mount %q: %v", m, err)
					continue
				}
				s.Mounts = append(s.Mounts, m)
			}
		},
	},
	{
		name:   "memory_limit",
		doc:    "Largest linear memory the operator may use: bytes as an integer, or a size like \"64MiB\", \"512KiB\", \"1GiB\".",
		schema: map[string]any{"anyOf": []any{map[string]any{"type": "integer", "minimum": 1}, map[string]any{"type": "string", "pattern": sizePattern}}},
		parse: func(p *parser, at loc, _, v *yaml.Node, s *Sandbox) {
			if n, ok := p.size(at, "memory_limit", v); ok {
				s.MemoryLimit = n
			}
		},
	},
	{
		name:   "event_timeout",
		doc:    "Longest time one on_event call may take, as a Go duration like \"100ms\" or \"2s\"; \"none\" removes the limit (a runaway loop then cannot be interrupted, but each event costs less).",
		schema: map[string]any{"type": "string", "pattern": durationPattern + "|^none$"},
		parse: func(p *parser, at loc, _, v *yaml.Node, s *Sandbox) {
			v = p.deref(v)
			if v.Kind == yaml.ScalarNode && v.Value == "none" {
				s.EventTimeout = NoEventTimeout
				return
			}
			d, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || err != nil || d <= 0 {
				p.addf(v.Line, at, "event_timeout must be a positive duration like \"100ms\", or \"none\", got %s", describeValue(v))
				return
			}
			s.EventTimeout = d
		},
	},
}

const (
	mountPattern    = `^.+:/.*?(:ro)?$`
	durationPattern = `^([0-9]*(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`
	sizePattern     = `^[0-9]+ ?([KkMmGgTt][Ii]?[Bb]?|[Bb])?$`
)

// sandbox reads a wasm operator's `sandbox:` block.
func (p *parser) sandbox(at loc, v *yaml.Node) *Sandbox {
	s := &Sandbox{}
	if walk(p, at, "sandbox", v, sandboxFields, s) == nil {
		return nil
	}
	return s
}

// checkMount validates "host:guest[:ro]". The guest side must be absolute,
// which also tells a Windows drive letter (C:\data:/data) from the
// separator.
func checkMount(m string) error {
	rest := strings.TrimSuffix(m, ":ro")
	i := strings.LastIndex(rest, ":")
	if i <= 0 {
		return errors.New("must be host:guest or host:guest:ro")
	}
	if !strings.HasPrefix(rest[i+1:], "/") {
		return fmt.Errorf("the guest path %q must be absolute (start with /)", rest[i+1:])
	}
	return nil
}

var sizeRe = regexp.MustCompile(`^([0-9]+) ?([A-Za-z]*)$`)

// sizeUnits: KB, MB... are powers of 1000, KiB, MiB... of 1024, as in
// most tools; the B may be left out and case does not matter.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
}

var errBadSize = errors.New("not a size")

// size reads a positive byte count: a YAML integer or a string like
// "64MiB".
func (p *parser) size(at loc, what string, v *yaml.Node) (uint64, bool) {
	v = p.deref(v)
	n, err := parseSize(v)
	switch {
	case errors.Is(err, errBadSize):
		p.addf(v.Line, at, "%s must be a positive size in bytes like 67108864 or \"64MiB\", got %s", what, describeValue(v))
	case err != nil:
		p.addf(v.Line, at, "%s: %v", what, err)
	}
	return n, err == nil
}

func parseSize(v *yaml.Node) (uint64, error) {
	if v.Kind != yaml.ScalarNode {
		return 0, errBadSize
	}
	switch v.ShortTag() {
	case "!!int":
		var n int64
		if err := v.Decode(&n); err != nil || n <= 0 {
			return 0, errBadSize
		}
		return uint64(n), nil
	case "!!str":
		m := sizeRe.FindStringSubmatch(strings.TrimSpace(v.Value))
		if m == nil {
			return 0, errBadSize
		}
		mul, ok := sizeUnits[strings.ToLower(m[2])]
		if !ok {
			known := []string{"B", "KB", "MB", "GB", "KiB", "MiB", "GiB"}
			return 0, fmt.Errorf("unknown size unit %q%s; use %s", m[2], didYouMean(m[2], known), joinOr(known))
		}
		n, err := strconv.ParseUint(m[1], 10, 64)
		hi, total := bits.Mul64(n, mul)
		if err != nil || n == 0 || hi != 0 || total > math.MaxInt64 {
			return 0, errBadSize
		}
		return total, nil
	}
	return 0, errBadSize
}
