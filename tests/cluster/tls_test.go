package cluster

import (
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/testtls"
)

// TestTLSEverywhere: with a certificate on the coordinator, daemons and
// the CLI that trust its CA run a dataflow across two machines (control
// connections and NATS both over TLS), and a CLI that speaks plain text
// is told what to do.
func TestTLSEverywhere(t *testing.T) {
	files := testtls.New(t, "127.0.0.1")
	c, _ := twoMachines(t, []string{"DORA_TLS_CA=" + files.CA}, "--tls-cert", files.Cert, "--tls-key", files.Key)

	r := c.must("start", writeDataflow(t, `
nodes:
  - id: source
    path: TESTNODE
    args: source 20 100000
    inputs: {tick: dora/timer/millis/5}
    outputs: [data]
    deploy: {machine: A}
  - id: sink
    path: TESTNODE
    args: sink 20
    inputs: {data: {source: source/data, queue_size: 100}}
    deploy: {machine: B}
`), "--attach")
	wantContains(t, "attached output", r.stdout+r.stderr, "sink: received 20 messages, last 19", "finished: 2 nodes succeeded")

	plain := &cluster{t: t, ctrl: c.ctrl}
	got := plain.cli("list")
	if got.code != 1 || !strings.Contains(got.stderr, "requires TLS") || !strings.Contains(got.stderr, "pass the CA that signed its certificate with --tls-ca") {
		t.Errorf("dora list without the CA: exit %d, %s", got.code, got.stderr)
	}
}
