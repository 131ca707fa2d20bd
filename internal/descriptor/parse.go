package descriptor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads a dataflow file and parses it. A file that cannot be read is
// a plain error; an invalid dataflow is a *ValidationError.
func Load(file string) (*Dataflow, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading dataflow: %w", err)
	}
	return Parse(file, data)
}

// Parse parses and validates a dataflow. file names the source in messages
// ("dataflow.yml" when empty) and its folder becomes Dataflow.Dir. Every
// problem found is returned at once in a *ValidationError.
func Parse(file string, data []byte) (*Dataflow, error) {
	if file == "" {
		file = "dataflow.yml"
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("locating the folder of %s: %w", file, err)
	}
	p := &parser{problems: problems{file: file}}
	root := p.document(data)
	if root == nil {
		return nil, p.err()
	}
	spec := p.dataflow(root)
	d := p.assemble(spec)
	if err := p.err(); err != nil {
		return nil, err
	}
	d.File, d.Dir = file, dir
	return d, nil
}

// document decodes the single YAML document of data, or reports why not.
func (p *parser) document(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on crafted input in the past; a dataflow
		// file must never take down the CLI or the coordinator.
		if r := recover(); r != nil {
			p.addf(0, loc{}, "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf(0, loc{}, "the file is empty; a dataflow lists its nodes under `nodes:`")
		} else {
			p.yamlError(data, err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(data, err)
		return nil
	default:
		p.addf(next.Line, loc{}, "only one YAML document is allowed; another one starts here")
	}
	if len(doc.Content) == 0 {
		p.addf(0, loc{}, "the file is empty; a dataflow lists its nodes under `nodes:`")
		return nil
	}
	return doc.Content[0]
}

var (
	yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	// yamlParserErrRe matches the errors of yaml.v3's parser (as opposed to
	// its scanner), which name the 0-based line where the enclosing block
	// starts, and no line at all when that is the first one.
	yamlParserErrRe = regexp.MustCompile(`^did not find expected (key|node content|'-' indicator|',' or '\]'|',' or '\}'|<document start>)$`)
)

// yamlError turns a yaml.v3 syntax error into a Problem on the line it
// names, made 1-based where yaml.v3 is off by one.
func (p *parser) yamlError(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if yamlParserErrRe.MatchString(msg) {
		line++
		msg += " in the block that starts here"
	}
	lines := bytes.Split(data, []byte("\n"))
	if line > 0 && line <= len(lines) && bytes.HasPrefix(bytes.TrimLeft(lines[line-1], " "), []byte("\t")) {
		msg += " (YAML does not allow tabs for indentation)"
	}
	p.addf(line, loc{}, "invalid YAML: %s", msg)
}

// dataflowSpec is the top-level mapping as read, before nodes inherit the
// deploy defaults and references are checked.
type dataflowSpec struct {
	nodes    []*nodeSpec
	hasNodes bool
	deploy   deploySpec
}

var dataflowFields = fields[dataflowSpec]{
	{
		name: "nodes",
		doc:  "The nodes of the dataflow: custom executables (`path` or `custom`) and runtime nodes hosting operators (`operators` or `operator`).",
		schema: map[string]any{
			"type": "array", "minItems": 1, "items": ref("node"),
		},
		parse: func(p *parser, at loc, _, v *yaml.Node, d *dataflowSpec) {
			d.hasNodes = true
			d.nodes = p.nodes(v)
		},
	},
	deployField[dataflowSpec]("_unstable_deploy", "Defaults for every node's `_unstable_deploy`; a node's own values win field by field.",
		func(d *dataflowSpec) *deploySpec { return &d.deploy }),
	deployField[dataflowSpec]("deploy", "Same as `_unstable_deploy`.",
		func(d *dataflowSpec) *deploySpec { return &d.deploy }),
}

func (p *parser) dataflow(root *yaml.Node) *dataflowSpec {
	spec := &dataflowSpec{}
	root = p.deref(root)
	if root.Kind != yaml.MappingNode {
		p.addf(root.Line, loc{}, "a dataflow must be a mapping with a `nodes:` list, got %s", describe(root))
		return spec
	}
	walk(p, loc{}, "the dataflow", root, dataflowFields, spec)
	if !spec.hasNodes {
		p.addf(root.Line, loc{}, "`nodes:` is missing; a dataflow lists its nodes under it")
	} else if len(spec.nodes) == 0 {
		p.addf(root.Line, loc{}, "`nodes:` is empty; a dataflow needs at least one node")
	}
	return spec
}

// assemble applies the deploy defaults, checks what spans several nodes
// and returns the Dataflow (meaningful only when no problem was found).
func (p *parser) assemble(spec *dataflowSpec) *Dataflow {
	d := &Dataflow{Deploy: spec.deploy.resolve(deploySpec{})}
	var nodes []*nodeSpec
	for _, ns := range spec.nodes {
		if ns == nil {
			continue
		}
		ns.node.Deploy = ns.deploy.resolve(spec.deploy)
		ns.deployKey = ns.deploy.keyOr(spec.deploy.keyOr("_unstable_deploy"))
		nodes = append(nodes, ns)
		d.Nodes = append(d.Nodes, ns.node)
	}
	p.link(nodes)
	return d
}

// nodes reads the `nodes:` list.
func (p *parser) nodes(v *yaml.Node) []*nodeSpec {
	items, _ := p.sequence(loc{}, "nodes", v)
	out := make([]*nodeSpec, 0, len(items))
	for i, item := range items {
		out = append(out, p.node(loc{}.key("nodes").index(i), item))
	}
	return out
}
