package descriptor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestParse_Problems has one bad dataflow per rule and the exact messages
// it must produce; files are written with one key per line so that the
// line numbers are easy to check.
func TestParse_Problems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown output, as in the docs",
			yaml: `nodes:
  - id: camera
    path: cam.py
    outputs:
      - image
      - depth
  - id: detect
    path: detect.py
    outputs:
      - bbox
  - id: plot
    path: plot.py
    inputs:
      image: camera/imgae
`,
			want: []string{`dataflow.yml:14: nodes[2] (plot): input "image" refers to unknown output "camera/imgae" (camera has: image, depth)`},
		},
		{
			name: "no source for an operator",
			yaml: `nodes:
  - id: rt
    operators:
      - id: op
        outputs: [x]
`,
			want: []string{`dataflow.yml:4: nodes[0].operators[0] (op): exactly one of shared-library, python, wasm is needed`},
		},
		{
			name: "two sources for an operator",
			yaml: `nodes:
  - id: rt
    operators:
      - id: op
        python: op.py
        wasm: op.wasm
`,
			want: []string{`dataflow.yml:6: nodes[0].operators[0] (op): exactly one of shared-library, python, wasm is needed; found python and wasm`},
		},
		{
			name: "both shared library spellings",
			yaml: `nodes:
  - id: rt
    operator:
      shared-library: a
      shared_library: b
`,
			want: []string{`dataflow.yml:5: nodes[0].operator (op): exactly one of shared-library, python, wasm is needed; found shared-library and shared_library`},
		},
		{
			name: "node with two kinds",
			yaml: `nodes:
  - id: a
    path: a.py
  - id: x
    path: x.py
    operators:
      - id: op
        python: op.py
`,
			want: []string{`dataflow.yml:4: nodes[1] (x): a node needs exactly one of custom, path, operators, operator; found path and operators`},
		},
		{
			name: "node with no kind",
			yaml: `nodes:
  - id: x
    outputs: [a]
`,
			want: []string{`dataflow.yml:2: nodes[0] (x): a node needs exactly one of custom, path, operators, operator; found none`},
		},
		{
			name: "unknown keys with and without suggestion",
			yaml: `nodes:
  - id: cam
    path: cam.py
    ouputs:
      - image
    colour: red
`,
			want: []string{
				`dataflow.yml:4: nodes[0] (cam): unknown key "ouputs" (did you mean "outputs"?)`,
				`dataflow.yml:6: nodes[0] (cam): unknown key "colour"`,
			},
		},
		{
			name: "unknown keys in nested blocks",
			yaml: `nodes:
  - id: cam
    custom:
      sorce: cam.py
      working_directory: cam
    _unstable_deploy:
      machin: A
`,
			want: []string{
				`dataflow.yml:3: nodes[0] (cam): custom needs a source (the executable to run)`,
				`dataflow.yml:4: nodes[0].custom (cam): unknown key "sorce" (did you mean "source"?)`,
				`dataflow.yml:5: nodes[0].custom (cam): unknown key "working_directory" (did you mean "working-directory"?)`,
				`dataflow.yml:7: nodes[0]._unstable_deploy (cam): unknown key "machin" (did you mean "machine"?)`,
			},
		},
		{
			name: "unknown top-level key",
			yaml: `node:
  - id: a
`,
			want: []string{
				`dataflow.yml:1: unknown key "node" (did you mean "nodes"?)`,
				"dataflow.yml:1: `nodes:` is missing; a dataflow lists its nodes under it",
			},
		},
		{
			name: "wrong YAML types",
			yaml: `nodes:
  - id: cam
    path:
      - cam.py
    inputs:
      - tick
    outputs: image
    env: 3
    args: {a: 1}
  - just a string
`,
			want: []string{
				`dataflow.yml:4: nodes[0] (cam): path must be a string, got a sequence`,
				`dataflow.yml:6: nodes[0] (cam): inputs must be a mapping, got a sequence`,
				`dataflow.yml:7: nodes[0] (cam): outputs must be a sequence, got a string`,
				`dataflow.yml:8: nodes[0] (cam): env must be a mapping, got a number`,
				`dataflow.yml:9: nodes[0] (cam): args must be a string or a sequence, got a mapping`,
				`dataflow.yml:10: nodes[1]: a node must be a mapping with an id, got a string`,
			},
		},
		{
			name: "duplicate node ids, operator ids, inputs, outputs and keys",
			yaml: `nodes:
  - id: a
    path: a
    outputs:
      - x
      - x
  - id: a
    path: b
    path: c
  - id: rt
    operators:
      - id: op
        python: op.py
        inputs:
          i: a/x
          i: a/x
      - id: op
        python: op2.py
`,
			want: []string{
				`dataflow.yml:6: nodes[0] (a): output "x" is declared twice (first at line 5)`,
				`dataflow.yml:7: nodes[1] (a): node id "a" is used twice (first at line 2)`,
				`dataflow.yml:9: nodes[1] (a): key "path" is repeated (first at line 8)`,
				`dataflow.yml:16: nodes[2].operators[0] (op): input "i" is declared twice (first at line 15)`,
				`dataflow.yml:17: nodes[2].operators[1] (op): operator id "op" is used twice in this node (first at line 12)`,
			},
		},
		{
			name: "bad ids",
			yaml: `nodes:
  - id: a/b
    path: a
    outputs: ["out put", ""]
    inputs:
      "x/y": dora/timer/secs/1
  - id: dora
    path: d
  - id: ""
    path: e
  - path: f
  - id: rt
    operators:
      - id: o p
        python: op.py
`,
			want: []string{
				`dataflow.yml:2: nodes[0]: node id "a/b" may only contain letters, digits, "_", "." and "-"`,
				`dataflow.yml:4: nodes[0]: output id "out put" may only contain letters, digits, "_", "." and "-"`,
				`dataflow.yml:4: nodes[0]: output id must not be empty`,
				`dataflow.yml:6: nodes[0]: input id "x/y" may only contain letters, digits, "_", "." and "-"`,
				`dataflow.yml:7: nodes[1] (dora): node id "dora" is reserved for built-in sources like dora/timer/millis/10`,
				`dataflow.yml:9: nodes[2]: node id must not be empty`,
				`dataflow.yml:11: nodes[3]: id is missing`,
				`dataflow.yml:14: nodes[4].operators[0]: operator id "o p" may only contain letters, digits, "_", "." and "-"`,
			},
		},
		{
			name: "unknown node, operator and runtime node without operator",
			yaml: `nodes:
  - id: camera
    path: cam
    outputs: [image]
  - id: rt
    operators:
      - id: detect
        python: d.py
        inputs:
          image: camra/image
        outputs: [bbox]
      - id: track
        python: t.py
        inputs:
          bbox: rt/bbox
          bbox2: rt/detekt/bbox
          bbox3: rt/detect/boxes
          image: camera/op/image
          other: nobody/out
`,
			want: []string{
				`dataflow.yml:10: nodes[1].operators[0] (detect): input "image" refers to unknown node "camra" (did you mean "camera"?)`,
				`dataflow.yml:15: nodes[1].operators[1] (track): input "bbox" refers to "rt/bbox", but rt is a runtime node; name one of its operators: rt/<operator>/bbox (operators: detect, track)`,
				`dataflow.yml:16: nodes[1].operators[1] (track): input "bbox2" refers to unknown operator "rt/detekt" (did you mean "detect"?) (rt has operators: detect, track)`,
				`dataflow.yml:17: nodes[1].operators[1] (track): input "bbox3" refers to unknown output "rt/detect/boxes" (rt/detect has: bbox)`,
				`dataflow.yml:18: nodes[1].operators[1] (track): input "image" refers to "camera/op/image", but camera is a custom node without operators; use camera/<output> (camera has: image)`,
				`dataflow.yml:19: nodes[1].operators[1] (track): input "other" refers to unknown node "nobody"`,
			},
		},
		{
			name: "bad sources and timers",
			yaml: `nodes:
  - id: n
    path: n
    outputs: [o]
    inputs:
      a: dora/timer/milis/10
      b: dora/timer/secs/0
      c: dora/timer/hz/-5
      d: dora/clock/1
      e: n
      f: n/o/p/q
      g: ""
      h: dora/timer/hz/2000000000
      i: dora/timer/secs/99999999999
`,
			want: []string{
				`dataflow.yml:6: nodes[0] (n): input "a": unknown timer unit "milis" (did you mean "millis"?); use millis, secs or hz`,
				`dataflow.yml:7: nodes[0] (n): input "b": timer value "0" must be a positive integer`,
				`dataflow.yml:8: nodes[0] (n): input "c": timer value "-5" must be a positive integer`,
				`dataflow.yml:9: nodes[0] (n): input "d": unknown built-in source "dora/clock/1"; the only one is dora/timer/<millis|secs|hz>/<n>`,
				`dataflow.yml:10: nodes[0] (n): input "e": source "n" must be node/output, node/operator/output or dora/timer/<unit>/<n>`,
				`dataflow.yml:11: nodes[0] (n): input "f": source "n/o/p/q" must be node/output, node/operator/output or dora/timer/<unit>/<n>`,
				`dataflow.yml:12: nodes[0] (n): input "g" must be a source like node/output or a mapping with source and queue_size, got the string ""`,
				`dataflow.yml:13: nodes[0] (n): input "h": timer frequency 2000000000 Hz is above the 1 ns resolution of timers`,
				`dataflow.yml:14: nodes[0] (n): input "i": timer period dora/timer/secs/99999999999 is too long`,
			},
		},
		{
			name: "queue sizes",
			yaml: `nodes:
  - id: n
    path: n
    inputs:
      a:
        source: dora/timer/secs/1
        queue_size: 0
      b:
        source: dora/timer/secs/1
        queue_size: "10"
      c:
        queue_size: 3
      d:
        source: dora/timer/secs/1
        queue: 3
`,
			want: []string{
				`dataflow.yml:7: nodes[0].inputs.a (n): queue_size must be a positive integer, got 0`,
				`dataflow.yml:10: nodes[0].inputs.b (n): queue_size must be a positive integer, got the string "10"`,
				`dataflow.yml:11: nodes[0] (n): input "c" needs a source`,
				`dataflow.yml:15: nodes[0].inputs.d (n): unknown key "queue" (did you mean "queue_size"?)`,
			},
		},
		{
			name: "relative paths on a remote node need working_dir",
			yaml: `nodes:
  - id: cam
    _unstable_deploy:
      local: false
    path: cam.py
  - id: rt
    deploy:
      machine: B
      local: false
    operators:
      - id: op
        python: ops/op.py
      - id: abs
        python: /opt/ops/op.py
  - id: fine
    _unstable_deploy:
      local: false
      working_dir: /srv/df
    path: cam.py
  - id: absolute
    _unstable_deploy:
      local: false
    path: /usr/bin/cam
`,
			want: []string{
				`dataflow.yml:5: nodes[0] (cam): path "cam.py" is relative but the node is not local; set _unstable_deploy.working_dir`,
				`dataflow.yml:12: nodes[1].operators[0] (op): path "ops/op.py" is relative but the node is not local; set deploy.working_dir`,
			},
		},
		{
			name: "dataflow-level deploy makes nodes remote",
			yaml: `_unstable_deploy:
  local: false
nodes:
  - id: cam
    custom:
      source: cam
`,
			want: []string{
				`dataflow.yml:6: nodes[0] (cam): path "cam" is relative but the node is not local; set _unstable_deploy.working_dir`,
			},
		},
		{
			name: "deploy values",
			yaml: `deploy:
  local: yes
_unstable_deploy:
  machine: A
nodes:
  - id: n
    path: /n
    deploy:
      working_dir: ""
`,
			want: []string{
				`dataflow.yml:2: deploy: local must be true or false, got the string "yes"`,
				`dataflow.yml:3: _unstable_deploy is the same setting as deploy (line 1); keep one`,
				`dataflow.yml:9: nodes[0].deploy (n): working_dir must not be empty`,
			},
		},
		{
			name: "sandbox rules",
			yaml: `nodes:
  - id: rt
    operators:
      - id: py
        python: op.py
        sandbox:
          mounts: [data:/data]
      - id: w
        wasm: op.wasm
        sandbox:
          mounts:
            - data
            - data:data
            - C:\data:/data:ro
          memory_limit: 64MX
          event_timeout: 100
      - id: w2
        wasm: op.wasm
        sandbox:
          memory_limit: -1
          event_timeout: soon
`,
			want: []string{
				`dataflow.yml:6: nodes[0].operators[0] (py): sandbox is only for wasm operators; this one is python`,
				`dataflow.yml:12: nodes[0].operators[1].sandbox (w): mount "data": must be host:guest or host:guest:ro`,
				`dataflow.yml:13: nodes[0].operators[1].sandbox (w): mount "data:data": the guest path "data" must be absolute (start with /)`,
				`dataflow.yml:15: nodes[0].operators[1].sandbox (w): memory_limit: unknown size unit "MX" (did you mean "MB"?); use B, KB, MB, GB, KiB, MiB or GiB`,
				`dataflow.yml:16: nodes[0].operators[1].sandbox (w): event_timeout must be a positive duration like "100ms", or "none", got 100`,
				`dataflow.yml:20: nodes[0].operators[2].sandbox (w2): memory_limit must be a positive size in bytes like 67108864 or "64MiB", got -1`,
				`dataflow.yml:21: nodes[0].operators[2].sandbox (w2): event_timeout must be a positive duration like "100ms", or "none", got the string "soon"`,
			},
		},
		{
			name: "custom and node-level keys",
			yaml: `nodes:
  - id: a
    build: make a
    custom:
      source: a
      build: make
  - id: rt
    inputs:
      x: a/y
    args: --fast
    env:
      FAST: 1
    operators:
      - id: op
        python: op.py
  - id: empty
    operators: []
`,
			want: []string{
				`dataflow.yml:6: nodes[0] (a): build is set both inside custom and next to it; keep one`,
				`dataflow.yml:8: nodes[1] (rt): inputs is only for custom nodes; a runtime node's inputs, outputs and settings belong to its operators`,
				`dataflow.yml:10: nodes[1] (rt): args is only for custom nodes; a runtime node's inputs, outputs and settings belong to its operators`,
				`dataflow.yml:17: nodes[2] (empty): operators is empty; a runtime node needs at least one operator`,
			},
		},
		{
			name: "env problems",
			yaml: `nodes:
  - id: n
    path: n
    env:
      - A: 1
      - A: 2
      - B:
      - C: [1]
      - just-a-string
      - "X=Y": 1
`,
			want: []string{
				`dataflow.yml:6: nodes[0] (n): env "A" is set twice (first at line 5)`,
				`dataflow.yml:7: nodes[0] (n): env "B" needs a value (write "" for an empty string)`,
				`dataflow.yml:8: nodes[0] (n): env "C" must be a string, number or boolean, got a sequence`,
				"dataflow.yml:9: nodes[0] (n): env list items must be mappings like `- NAME: value`, got a string",
				`dataflow.yml:10: nodes[0] (n): env name "X=Y" is not a valid variable name`,
			},
		},
		{
			name: "args problems",
			yaml: `nodes:
  - id: n
    path: n
    args: --name 'unterminated
  - id: m
    path: m
    args: [a, [b]]
`,
			want: []string{
				`dataflow.yml:4: nodes[0] (n): args: a single quote is not closed`,
				`dataflow.yml:7: nodes[1] (m): each of args must be a string, got a sequence`,
			},
		},
		{
			name: "empty file",
			yaml: "",
			want: []string{"dataflow.yml: the file is empty; a dataflow lists its nodes under `nodes:`"},
		},
		{
			name: "comments only",
			yaml: "# nothing yet\n",
			want: []string{"dataflow.yml: the file is empty; a dataflow lists its nodes under `nodes:`"},
		},
		{
			name: "empty nodes",
			yaml: "nodes: []\n",
			want: []string{"dataflow.yml:1: `nodes:` is empty; a dataflow needs at least one node"},
		},
		{
			name: "not a mapping",
			yaml: "- id: a\n",
			want: []string{"dataflow.yml:1: a dataflow must be a mapping with a `nodes:` list, got a sequence"},
		},
		{
			name: "malformed YAML",
			yaml: "nodes:\n  - id: a\n    path: [x\n",
			want: []string{"dataflow.yml:3: invalid YAML: did not find expected ',' or ']' in the block that starts here"},
		},
		{
			name: "bad indentation",
			yaml: "nodes:\n  - id: a\n    path: x\n   inputs: 3\n",
			want: []string{"dataflow.yml:2: invalid YAML: did not find expected '-' indicator in the block that starts here"},
		},
		{
			name: "tabs",
			yaml: "nodes:\n\t- id: a\n",
			want: []string{"dataflow.yml:2: invalid YAML: found character that cannot start any token (YAML does not allow tabs for indentation)"},
		},
		{
			name: "two documents",
			yaml: "nodes:\n  - id: a\n    path: a\n---\nnodes: []\n",
			want: []string{"dataflow.yml:4: only one YAML document is allowed; another one starts here"},
		},
		{
			name: "messages stay on one line",
			yaml: "nodes:\n  - id: n\n    path: n\n    inputs:\n      a: {source: dora/timer/secs/1, queue_size: !!int \"1\\n2\"}\n",
			want: []string{`dataflow.yml:5: nodes[0].inputs.a (n): queue_size must be a positive integer, got 1\n2`},
		},
		{
			name: "merge of a scalar",
			yaml: "nodes:\n  - id: a\n    path: a\n    env:\n      <<: 3\n",
			want: []string{"dataflow.yml:5: nodes[0] (a): << merges mappings, got a number"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("dataflow.yml", []byte(tt.yaml))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			got := strings.Split(verr.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
			if len(verr.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d", len(verr.Problems), len(tt.want))
			}
		})
	}
}

func TestProblem_String(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yml", Line: 3, Path: "nodes[0]", ID: "a", Message: "m"}, "f.yml:3: nodes[0] (a): m"},
		{Problem{File: "f.yml", Line: 3, Path: "nodes[0]", Message: "m"}, "f.yml:3: nodes[0]: m"},
		{Problem{File: "f.yml", Line: 1, Message: "m"}, "f.yml:1: m"},
		{Problem{File: "f.yml", Message: "m"}, "f.yml: m"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParse_ManyProblemsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("nodes:\n")
	for range maxProblems + 5 {
		b.WriteString("  - 1\n")
	}
	_, err := Parse("dataflow.yml", []byte(b.String()))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	if n := len(verr.Problems); n != maxProblems+1 {
		t.Fatalf("%d problems, want %d and a summary", n, maxProblems+1)
	}
	if last := verr.Problems[maxProblems].String(); last != "dataflow.yml: and 5 more problems" {
		t.Errorf("last problem = %q", last)
	}
}

// TestParse_AliasBomb proves a few lines of merged aliases cannot make the
// parser do unbounded work ("billion laughs").
func TestParse_AliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("nodes:\n  - id: n\n    path: n\n    env:\n")
	b.WriteString("      - &l0 {A: 1}\n")
	for i := 1; i <= 9; i++ {
		ten := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", ")
		fmt.Fprintf(&b, "      - &l%d {<<: [%s]}\n", i, ten)
	}
	start := time.Now()
	_, err := Parse("dataflow.yml", []byte(b.String()))
	if !strings.Contains(fmt.Sprint(err), "the document is too large") {
		t.Errorf("err = %v, want the document to be too large", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse took %v", d)
	}
}
