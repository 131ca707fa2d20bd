package descriptor

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// link checks the rules that span nodes: unique ids, inputs that resolve
// to declared outputs, and paths a remote machine can find.
func (p *parser) link(nodes []*nodeSpec) {
	byID := make(map[string]*nodeSpec, len(nodes))
	var ids []string
	for _, ns := range nodes {
		id := ns.node.ID
		if id == "" {
			continue
		}
		if first, dup := byID[id]; dup {
			p.addf(ns.node.Line, ns.at, "node id %q is used twice (first at line %d)", id, first.node.Line)
			continue
		}
		byID[id] = ns
		ids = append(ids, id)
	}
	for _, ns := range nodes {
		p.uniqueOperators(ns)
		for _, in := range ns.node.Inputs {
			p.resolve(ns.at, in, byID, ids)
		}
		for _, o := range ns.ops {
			for _, in := range o.op.Inputs {
				p.resolve(o.at, in, byID, ids)
			}
		}
		p.checkRemotePaths(ns)
	}
}

func (p *parser) uniqueOperators(ns *nodeSpec) {
	first := make(map[string]int, len(ns.ops))
	for _, o := range ns.ops {
		id := o.op.ID
		if id == "" {
			continue
		}
		if line, dup := first[id]; dup {
			p.addf(o.op.Line, o.at, "operator id %q is used twice in this node (first at line %d)", id, line)
			continue
		}
		first[id] = o.op.Line
	}
}

// resolve checks that an input's source is a timer or a declared output.
// Nodes whose kind is itself in error are skipped: their outputs are
// unknown and the user already has a message about them.
func (p *parser) resolve(at loc, in Input, byID map[string]*nodeSpec, ids []string) {
	src := in.Source
	if src.IsTimer() || src.Node == "" {
		return
	}
	target, ok := byID[src.Node]
	if !ok {
		p.addf(in.Line, at, "input %q refers to unknown node %q%s", in.ID, src.Node, didYouMean(src.Node, ids))
		return
	}
	if len(target.kinds) != 1 {
		return
	}
	n := target.node
	if !n.IsRuntime() {
		if src.Operator != "" {
			p.addf(in.Line, at, "input %q refers to %q, but %s is a custom node without operators; use %s/<output> (%s)",
				in.ID, src.String(), n.ID, n.ID, has(n.ID, n.Outputs))
			return
		}
		if !slices.Contains(n.Outputs, src.Output) {
			p.addf(in.Line, at, "input %q refers to unknown output %q (%s)", in.ID, src.String(), has(n.ID, n.Outputs))
		}
		return
	}
	opIDs := make([]string, len(n.Operators))
	for i, op := range n.Operators {
		opIDs[i] = op.ID
	}
	if src.Operator == "" {
		p.addf(in.Line, at, "input %q refers to %q, but %s is a runtime node; name one of its operators: %s/<operator>/%s (operators: %s)",
			in.ID, src.String(), n.ID, n.ID, src.Output, strings.Join(opIDs, ", "))
		return
	}
	op := n.Operator(src.Operator)
	if op == nil {
		p.addf(in.Line, at, "input %q refers to unknown operator %q%s (%s has operators: %s)",
			in.ID, src.Node+"/"+src.Operator, didYouMean(src.Operator, opIDs), n.ID, strings.Join(opIDs, ", "))
		return
	}
	if !slices.Contains(op.Outputs, src.Output) {
		p.addf(in.Line, at, "input %q refers to unknown output %q (%s)", in.ID, src.String(), has(n.ID+"/"+op.ID, op.Outputs))
	}
}

// has renders what a producer offers: "camera has: image, depth".
func has(who string, outputs []string) string {
	if len(outputs) == 0 {
		return who + " has no outputs"
	}
	return fmt.Sprintf("%s has: %s", who, strings.Join(outputs, ", "))
}

// checkRemotePaths applies seed 001's rule: a relative path on a machine
// other than the CLI's has nothing to resolve against unless working_dir
// says where the dataflow lives there.
func (p *parser) checkRemotePaths(ns *nodeSpec) {
	dep := ns.node.Deploy
	if dep.Local || dep.WorkingDir != "" || len(ns.kinds) != 1 {
		return
	}
	msg := "path %q is relative but the node is not local; set %s.working_dir"
	if path := ns.node.Path; path != "" && !isAbs(path) {
		p.addf(ns.pathLine, ns.at, msg, path, ns.deployKey)
	}
	for _, o := range ns.ops {
		if path := o.op.Source.Path; path != "" && !isAbs(path) {
			p.addf(o.sourceLine, o.at, msg, path, ns.deployKey)
		}
	}
}

// isAbs accepts absolute paths of either family: the node's machine may
// not run the CLI's operating system.
func isAbs(path string) bool {
	return strings.HasPrefix(path, "/") || strings.HasPrefix(path, `\`) || filepath.IsAbs(path) || windowsDrive(path)
}

func windowsDrive(path string) bool {
	return len(path) >= 3 && path[1] == ':' && (path[2] == '\\' || path[2] == '/') &&
		(path[0]|0x20 >= 'a' && path[0]|0x20 <= 'z')
}
