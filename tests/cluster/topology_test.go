package cluster

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// netLab is a set of network namespaces standing for separate hosts, all
// plugged by veth pairs into a bridge living in a namespace of its own.
// Nothing is added to the test's own namespace: its traffic stays on the
// hosts' loopbacks and their own addresses.
type netLab struct {
	prefix string
	subnet string // "10.X.Y."
	hosts  map[string]int
}

// newNetLab creates the hosts, or skips the test saying why it cannot.
func newNetLab(t *testing.T, hosts ...string) *netLab {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("creating network namespaces needs root (CI runs these tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the ip tool (iproute2) is not installed")
	}
	var r [3]byte
	rand.Read(r[:])
	lab := &netLab{
		prefix: fmt.Sprintf("d%02x%02x", r[0], r[1]),
		subnet: fmt.Sprintf("10.%d.%d.", 200+int(r[2])%50, r[1]),
		hosts:  make(map[string]int),
	}
	sw := lab.prefix + "-sw"
	if out, err := exec.Command("ip", "netns", "add", sw).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	created := []string{sw}
	t.Cleanup(func() {
		for _, ns := range created {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("-n", sw, "link", "add", "br0", "type", "bridge")
	ip("-n", sw, "link", "set", "br0", "up")
	for i, h := range hosts {
		ns := lab.ns(h)
		ip("netns", "add", ns)
		created = append(created, ns)
		host, port := fmt.Sprintf("%s%sh", lab.prefix, h), fmt.Sprintf("%s%ss", lab.prefix, h)
		ip("link", "add", host, "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
		ip("-n", sw, "link", "set", port, "master", "br0")
		ip("-n", sw, "link", "set", port, "up")
		lab.hosts[h] = i + 1
		ip("-n", ns, "addr", "add", lab.addr(h)+"/24", "dev", host)
		ip("-n", ns, "link", "set", host, "up")
		ip("-n", ns, "link", "set", "lo", "up")
	}
	return lab
}

func (l *netLab) ns(host string) string { return l.prefix + "-" + host }

// shape limits what reaches host to rate (tc's syntax, "8mbit"), or skips
// the test when this kernel cannot.
func (l *netLab) shape(t *testing.T, host, rate string) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("the tc tool (iproute2) is not installed")
	}
	port := fmt.Sprintf("%s%ss", l.prefix, host)
	out, err := exec.Command("tc", "-n", l.prefix+"-sw", "qdisc", "add", "dev", port, "root",
		"tbf", "rate", rate, "burst", "32kbit", "latency", "400ms").CombinedOutput()
	if err != nil {
		t.Skipf("cannot shape a link here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
}

func (l *netLab) addr(host string) string { return fmt.Sprintf("%s%d", l.subnet, l.hosts[host]) }

// TestTopologies runs a dataflow with nodes on machines A and B for each
// placement of seed 001's table: the CLI, the coordinator, daemon A and
// daemon B each on the CLI's host ("local") or a host of their own.
func TestTopologies(t *testing.T) {
	lab := newNetLab(t, "L", "C", "A", "B")
	tests := []struct {
		n                             int
		coordinator, daemonA, daemonB string // a host of the lab
	}{
		{1, "L", "L", "L"},
		{2, "L", "L", "B"},
		{3, "L", "A", "B"},
		{4, "C", "L", "L"},
		{5, "C", "L", "B"},
		{6, "C", "A", "B"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%d_coordinator_%s_A_%s_B_%s", tt.n, local(tt.coordinator), local(tt.daemonA), local(tt.daemonB))
		t.Run(name, func(t *testing.T) {
			c := &cluster{t: t, ns: lab.ns("L"), daemons: make(map[string]*proc)}
			o := coordOpts{ns: lab.ns(tt.coordinator), controlPort: 6012, port: 53290, nats: 53291}
			allLocal := tt.coordinator == "L" && tt.daemonA == "L" && tt.daemonB == "L"
			if !allLocal {
				o.bind = "0.0.0.0"
				c.env = []string{"DORA_TOKEN=topology-" + lab.prefix}
			}
			c.startCoordinator(o)
			c.ctrl = reach("L", tt.coordinator, lab) + ":6012"
			c.startDaemon("A", lab.ns(tt.daemonA), reach(tt.daemonA, tt.coordinator, lab)+":53290")
			c.startDaemon("B", lab.ns(tt.daemonB), reach(tt.daemonB, tt.coordinator, lab)+":53290")
			c.waitDaemons(2)
			if !allLocal && !strings.Contains(c.coordinator.out.String(), "warning: listening on 0.0.0.0") {
				t.Errorf("no warning for listening beyond loopback:\n%s", c.coordinator.out.String())
			}

			file := topologyDataflow(t, tt.daemonA == "L", tt.daemonB == "L")
			r := c.must("start", file, "--attach")
			wantContains(t, "attached output", r.stdout+r.stderr,
				"sink-b: received 10 messages, last 9", "sink-b: closed data",
				"sink-a: received 20 messages, last 19", "sink-a: closed data",
				"finished: 4 nodes succeeded")
			uuid := strings.TrimSpace(strings.Split(r.stdout, "\n")[0])
			for _, sink := range []string{"sink-a", "sink-b"} {
				wantContains(t, "dora logs "+sink, c.must("logs", uuid, sink).stdout, "received ", "closed data")
			}
			if f := row(c.must("list"), uuid); f == nil || f[2] != "succeeded" || f[4] != "A,B" {
				t.Errorf("dora list row %q", f)
			}
		})
	}
}

func local(host string) string {
	if host == "L" {
		return "local"
	}
	return "remote"
}

// reach is the address from which host `from` reaches host `to`.
func reach(from, to string, lab *netLab) string {
	if from == to {
		return "127.0.0.1"
	}
	return lab.addr(to)
}

// topologyDataflow sends 10 large messages from A to B and 20 small ones
// from B to A. Nodes on the CLI's host are local and use paths relative to
// the dataflow; the others are not, and find the node in their own
// working_dir (seed 001).
func topologyDataflow(t *testing.T, aLocal, bLocal bool) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, testnode, filepath.Join(dir, "bin", "testnode"))
	placement := func(machine string, isLocal bool) (path, deploy string) {
		if isLocal {
			return "bin/testnode", fmt.Sprintf("{machine: %s}", machine)
		}
		wd := filepath.Join(t.TempDir(), "machine-"+machine)
		copyFile(t, testnode, filepath.Join(wd, "testnode"))
		return "testnode", fmt.Sprintf("{machine: %s, local: false, working_dir: %s}", machine, wd)
	}
	pathA, deployA := placement("A", aLocal)
	pathB, deployB := placement("B", bLocal)
	yml := fmt.Sprintf(`
nodes:
  - id: source-a
    path: %[1]s
    args: source 10 4096000
    inputs: {tick: dora/timer/millis/20}
    outputs: [data]
    _unstable_deploy: %[2]s
  - id: sink-a
    path: %[1]s
    args: sink 20
    inputs: {data: {source: source-b/data, queue_size: 100}}
    _unstable_deploy: %[2]s
  - id: source-b
    path: %[3]s
    args: source 20 40960
    inputs: {tick: dora/timer/millis/5}
    outputs: [data]
    _unstable_deploy: %[4]s
  - id: sink-b
    path: %[3]s
    args: sink 10
    inputs: {data: {source: source-a/data, queue_size: 100}}
    _unstable_deploy: %[4]s
`, pathA, deployA, pathB, deployB)
	file := filepath.Join(dir, "dataflow.yml")
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
