package descriptor

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, returns either a Dataflow or a
// *ValidationError with one problem per line, and that what it accepts
// keeps the promises other components rely on.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no example dataflows in testdata: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("dataflow.yml", data)
		if (d == nil) == (err == nil) {
			t.Fatalf("Parse returned %v and %v; want exactly one", d, err)
		}
		if err != nil {
			checkValidationError(t, err)
			return
		}
		checkDataflow(t, d)
	})
}

func checkValidationError(t *testing.T, err error) {
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %T is not a *ValidationError: %v", err, err)
	}
	if len(verr.Problems) == 0 {
		t.Fatal("ValidationError without problems")
	}
	for _, p := range verr.Problems {
		if p.Message == "" || strings.ContainsAny(p.String(), "\n\r") {
			t.Fatalf("problem %q must be one non-empty line", p.String())
		}
	}
}

func checkDataflow(t *testing.T, d *Dataflow) {
	if len(d.Nodes) == 0 {
		t.Fatal("a valid dataflow has no nodes")
	}
	check := func(who string, ins []Input) {
		if !slices.IsSortedFunc(ins, func(a, b Input) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatalf("%s: inputs not sorted", who)
		}
		for _, in := range ins {
			if in.QueueSize <= 0 {
				t.Fatalf("%s: input %s has queue_size %d", who, in.ID, in.QueueSize)
			}
			if in.Source.IsTimer() {
				continue
			}
			n := d.Node(in.Source.Node)
			if n == nil {
				t.Fatalf("%s: input %s names missing node %s", who, in.ID, in.Source.Node)
			}
			outs := n.Outputs
			if in.Source.Operator != "" {
				op := n.Operator(in.Source.Operator)
				if op == nil {
					t.Fatalf("%s: input %s names a missing operator", who, in.ID)
				}
				outs = op.Outputs
			}
			if !slices.Contains(outs, in.Source.Output) {
				t.Fatalf("%s: input %s names a missing output", who, in.ID)
			}
		}
	}
	for _, n := range d.Nodes {
		if n.ID == "" || (n.Path == "") == (len(n.Operators) == 0) {
			t.Fatalf("node %+v must have an id and be either custom or runtime", n)
		}
		check(n.ID, n.Inputs)
		for _, op := range n.Operators {
			if op.ID == "" || op.Source.Path == "" {
				t.Fatalf("operator %+v must have an id and a source", op)
			}
			if op.Sandbox != nil && op.Source.Kind != SourceWASM {
				t.Fatalf("operator %s: sandbox on a %s operator", op.ID, op.Source.Kind)
			}
			check(n.ID+"/"+op.ID, op.Inputs)
		}
	}
	_ = d.Mermaid()
	if _, err := json.Marshal(d); err != nil {
		t.Fatalf("a valid dataflow does not marshal: %v", err)
	}
}
