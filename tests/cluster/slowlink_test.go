package cluster

import (
	"strings"
	"testing"
)

// slowFlow offers 5 MB/s (50 kB every 10 ms) from machine A to machine B.
const slowFlow = `
nodes:
  - id: source
    path: TESTNODE
    args: source 300 50000
    inputs: {tick: dora/timer/millis/10}
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: TALLY
    args: "50"
    inputs: {data: source/data}
    deploy: {machine: B}
`

// TestSlowLinkDropsAtTheSender sends five times what the link to B
// carries. The oldest messages must be dropped in the sending daemon's
// queue, where they are counted, instead of piling up in NATS on the way
// (where latency grows without bound and, past the server's limits, the
// subscriber is cut off and everything in between lost); and every
// message the sink missed must be one the summary reports.
func TestSlowLinkDropsAtTheSender(t *testing.T) {
	lab := newNetLab(t, "C", "A", "B")
	lab.shape(t, "B", "8mbit")
	c := &cluster{t: t, ns: lab.ns("C"), env: []string{"DORA_TOKEN=slow-" + lab.prefix}, daemons: make(map[string]*proc)}
	c.startCoordinator(coordOpts{ns: lab.ns("C"), bind: "0.0.0.0", controlPort: 6012, port: 53290, nats: 53291})
	c.startDaemon("A", lab.ns("A"), lab.addr("C")+":53290")
	c.startDaemon("B", lab.ns("B"), lab.addr("C")+":53290")
	c.waitDaemons(2)

	r := c.must("start", writeDataflow(t, slowFlow), "--attach")
	out := r.stdout + r.stderr
	wantContains(t, "attached output", out, "finished: 2 nodes succeeded", `node "source" output "data" dropped `)
	if strings.Contains(out, " lost ") {
		t.Errorf("messages were lost on the way instead of dropped at the sender:\n%s", out)
	}
	got, missed := tallied(t, out)
	t.Logf("the sink received %d of 300 messages", got)
	if reported := reportedMissing(out); reported != missed {
		t.Errorf("the sink missed %d messages but the summary reports %d:\n%s", missed, reported, out)
	}
}
