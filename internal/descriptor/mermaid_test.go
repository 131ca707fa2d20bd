package descriptor

import (
	"strings"
	"testing"
	"time"
)

func TestDataflow_Mermaid(t *testing.T) {
	d := mustLoad(t, "seed_example.yml")
	want := `flowchart TB
  t0(["dora/timer/millis/10"])
  t1(["dora/timer/millis/100"])
  n0["rust-node"]
  subgraph n1 ["runtime-node"]
    n1_0["rust-operator"]
  end
  n2["rust-sink"]
  t0 -->|"tick"| n0
  n0 -->|"random → random"| n1_0
  t1 -->|"tick"| n1_0
  n1_0 -->|"status → message"| n2
`
	if got := d.Mermaid(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDataflow_MermaidShowsQueueSize(t *testing.T) {
	d := mustLoad(t, "seed_form.yml")
	const edge = `  n1_1 -->|"bbox → bbox (queue_size 100)"| n2_0` + "\n"
	if got := d.Mermaid(); !strings.Contains(got, edge) {
		t.Errorf("no edge %q in:\n%s", edge, got)
	}
}

func TestDataflow_TimerPeriods(t *testing.T) {
	d := mustLoad(t, "seed_form.yml")
	got := d.TimerPeriods()
	if len(got) != 2 || got[0] != time.Second/30 || got[1] != time.Second {
		t.Errorf("TimerPeriods() = %v, want [1/30s 1s]", got)
	}
}
