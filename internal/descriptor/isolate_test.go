package descriptor

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParse_Isolate(t *testing.T) {
	for _, kind := range []string{"shared-library: build/op", "python: op.py", "wasm: op.wasm"} {
		for yml, want := range map[string]bool{"": false, "isolate: true": true, "isolate: false": false} {
			src := "nodes:\n  - id: rt\n    operators:\n      - id: op\n        " + kind + "\n"
			if yml != "" {
				src += "        " + yml + "\n"
			}
			d, err := Parse("dataflow.yml", []byte(src))
			if err != nil {
				t.Fatalf("%s, %q: %v", kind, yml, err)
			}
			op := d.Nodes[0].Operators[0]
			if op.Isolate != want {
				t.Errorf("%s, %q: Isolate = %v, want %v", kind, yml, op.Isolate, want)
			}
			// A runtime node reads its operators from the node's JSON.
			b, _ := json.Marshal(d.Nodes[0])
			var back Node
			if err := json.Unmarshal(b, &back); err != nil || back.Operators[0].Isolate != want {
				t.Errorf("%s, %q: Isolate lost in JSON %s (%v)", kind, yml, b, err)
			}
		}
	}
}

func TestParse_IsolateProblems(t *testing.T) {
	src := `nodes:
  - id: rt
    operators:
      - id: a
        python: a.py
        isolate: yes
      - id: b
        python: b.py
        isolate: 1
      - id: c
        python: c.py
        isolated: true
`
	_, err := Parse("dataflow.yml", []byte(src))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	want := []string{
		`dataflow.yml:6: nodes[0].operators[0] (a): isolate must be true or false, got the string "yes"`,
		`dataflow.yml:9: nodes[0].operators[1] (b): isolate must be true or false, got 1`,
		`dataflow.yml:12: nodes[0].operators[2] (c): unknown key "isolated" (did you mean "isolate"?)`,
	}
	if got := verr.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.ReplaceAll(got, "\n", "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestJSONSchema_DocumentsIsolate(t *testing.T) {
	var s struct {
		Definitions map[string]struct {
			Properties map[string]map[string]any `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(JSONSchema(), &s); err != nil {
		t.Fatal(err)
	}
	p := s.Definitions["operator"].Properties["isolate"]
	if p["type"] != "boolean" || p["default"] != false {
		t.Errorf("operator.isolate schema = %v, want a boolean defaulting to false", p)
	}
}
