package coordinator

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/dora-go/dora/internal/descriptor"
)

// dataflow is one dataflow the coordinator runs, or ran recently.
type dataflow struct {
	uuid, name string
	status     string
	reason     string
	started    time.Time
	// machines lists the machines involved, sorted; nodes are the node
	// ids of each, machineOf the reverse.
	machines  []string
	nodes     map[string][]string
	machineOf map[string]string
	// expect are the machines whose FINISHED ends the dataflow: all of
	// them, or for a dataflow learnt from re-registering daemons, those
	// that reported it.
	expect  map[string]bool
	ready   map[string]bool
	results map[string]*control.Result
	exited  map[string]bool

	starter  *cliConn   // waits for STARTED
	attach   bool       // starter stays for OUTPUT and RESULT
	attached []*cliConn // get OUTPUT and the RESULT
	waiters  []*cliConn // get the RESULT (dora stop)
	final    *control.Result
}

// maxHistory bounds the ended dataflows kept for `dora list` and logs.
const maxHistory = 100

func (df *dataflow) active() bool { return df.final == nil }

func (df *dataflow) info() control.DataflowInfo {
	in := control.DataflowInfo{UUID: df.uuid, Name: df.name, Status: df.status, Reason: df.reason}
	for _, m := range df.machines {
		in.Machines = append(in.Machines, machineName(m))
		in.Total += len(df.nodes[m])
	}
	if df.active() {
		in.Running = in.Total - len(df.exited)
	}
	return in
}

// place decides the machine of every node: its deploy.machine, or the
// default daemon (the one without a machine id, or the only one).
func (c *Coordinator) place(df *descriptor.Dataflow) (map[string][]string, error) {
	nodes := make(map[string][]string)
	var problems []string
	for _, n := range df.Nodes {
		m := n.Deploy.Machine
		if m == "" {
			var err error
			if m, err = c.defaultMachine(); err != nil {
				problems = append(problems, fmt.Sprintf("node %q: %v", n.ID, err))
				continue
			}
		} else if c.daemons[m] == nil {
			problems = append(problems, fmt.Sprintf("node %q is placed on machine %q (deploy.machine) but no daemon with that machine id is connected", n.ID, m))
			continue
		}
		nodes[m] = append(nodes[m], n.ID)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s (connected daemons: %s)", strings.Join(problems, "; "), c.connectedMachines())
	}
	return nodes, nil
}

func (c *Coordinator) defaultMachine() (string, error) {
	if c.daemons[""] != nil {
		return "", nil
	}
	if len(c.daemons) == 1 {
		for m := range c.daemons {
			return m, nil
		}
	}
	if len(c.daemons) == 0 {
		return "", fmt.Errorf("no daemon is connected: start one with `dora daemon` (or `dora up`)")
	}
	return "", fmt.Errorf("it has no deploy.machine and there is no default daemon (one started without --machine-id)")
}

func (c *Coordinator) connectedMachines() string {
	if len(c.daemons) == 0 {
		return "none"
	}
	var ms []string
	for m := range c.daemons {
		ms = append(ms, machineName(m))
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// start deploys a parsed dataflow: SPAWN to each machine involved.
func (c *Coordinator) start(cli *cliConn, req control.StartRequest, df *descriptor.Dataflow, nodes map[string][]string) {
	d := &dataflow{
		uuid: newUUID(), name: req.Name, status: control.StatusStarting, started: time.Now(),
		nodes: nodes, machineOf: make(map[string]string), expect: make(map[string]bool),
		ready: make(map[string]bool), results: make(map[string]*control.Result), exited: make(map[string]bool),
		starter: cli, attach: req.Attach,
	}
	for m, ids := range nodes {
		d.machines = append(d.machines, m)
		d.expect[m] = true
		for _, id := range ids {
			d.machineOf[id] = m
		}
	}
	sort.Strings(d.machines)
	c.dataflows[d.uuid] = d
	c.log.Info("starting dataflow", "dataflow", d.uuid, "name", d.name, "machines", d.machines)
	for _, m := range d.machines {
		c.daemons[m].send(control.KindSpawn, control.Spawn{
			UUID: d.uuid, Name: d.name, File: req.File, YAML: req.YAML,
			Nodes: nodes[m], Machines: d.machines, Placement: d.machineOf, Env: req.Env, ForwardOutput: req.Attach,
		})
	}
}

// ready is READY from machine m.
func (c *Coordinator) ready(d *dataflow, m string) {
	if d.status != control.StatusStarting {
		return
	}
	d.ready[m] = true
	for _, mm := range d.machines {
		if !d.ready[mm] {
			return
		}
	}
	d.status = control.StatusRunning
	for _, mm := range d.machines {
		if dc := c.daemons[mm]; dc != nil {
			dc.send(control.KindAllNodesReady, control.DataflowRef{UUID: d.uuid})
		}
	}
	c.log.Info("dataflow running", "dataflow", d.uuid)
	if cli := d.starter; cli != nil {
		d.starter = nil
		st := control.Started{UUID: d.uuid, Name: d.name}
		for _, mm := range d.machines {
			st.Machines = append(st.Machines, machineName(mm))
		}
		if d.attach {
			cli.send(control.KindStarted, st)
			d.attached = append(d.attached, cli)
		} else {
			cli.sendLast(control.KindStarted, st)
		}
	}
}

// stop stops a dataflow on every machine that still runs it; the first
// reason is the one reported.
func (c *Coordinator) stop(d *dataflow, reason string, grace time.Duration) {
	if !d.active() {
		return
	}
	if d.reason == "" {
		d.reason = reason
	}
	if d.status == control.StatusStarting || d.status == control.StatusRunning {
		d.status = control.StatusStopping
	}
	for _, m := range d.machines {
		if dc := c.daemons[m]; dc != nil && d.results[m] == nil {
			dc.send(control.KindStopDataflow, control.StopDataflow{UUID: d.uuid, Reason: reason, Grace: grace})
		}
	}
}

// finished is FINISHED from machine m (or the loss of its daemon).
func (c *Coordinator) finished(d *dataflow, m string, res *control.Result, failure string) {
	if !d.active() || d.results[m] != nil {
		return
	}
	d.results[m] = res
	switch {
	case failure != "":
		c.stop(d, failure, 0)
	case d.status == control.StatusStarting:
		reason := res.StopReason
		if reason == "" {
			reason = "its nodes ended"
		}
		c.stop(d, fmt.Sprintf("machine %s ended before the dataflow started: %s", machineName(m), reason), 0)
	}
	for mm := range d.expect {
		if d.results[mm] == nil {
			return
		}
	}
	c.finalize(d)
}

// finalize merges the machines' results and tells every waiting CLI.
func (c *Coordinator) finalize(d *dataflow) {
	res := &control.Result{UUID: d.uuid, Name: d.name, StopReason: d.reason}
	for _, m := range d.machines {
		if r := d.results[m]; r != nil {
			res.Nodes = append(res.Nodes, r.Nodes...)
			if res.StopReason == "" {
				res.StopReason = r.StopReason
			}
		}
	}
	sort.SliceStable(res.Nodes, func(i, j int) bool { return res.Nodes[i].ID < res.Nodes[j].ID })
	d.final = res
	d.status = control.StatusSucceeded
	if res.Failed() {
		d.status = control.StatusFailed
	}
	c.log.Info("dataflow ended", "dataflow", d.uuid, "status", d.status, "reason", d.reason)
	for _, cli := range slices.Concat([]*cliConn{d.starter}, d.attached, d.waiters) {
		if cli != nil {
			cli.sendLast(control.KindResult, res)
		}
	}
	d.starter, d.attached, d.waiters = nil, nil, nil
	delete(c.dataflows, d.uuid)
	c.history = append(c.history, d)
	if len(c.history) > maxHistory {
		c.history = c.history[1:]
	}
}

// lostMachine ends machine m's part of every dataflow when its daemon is
// gone.
func (c *Coordinator) lostMachine(m, why string) {
	for _, d := range c.sortedActive() {
		if !d.expect[m] || d.results[m] != nil {
			continue
		}
		reason := fmt.Sprintf("lost the daemon of machine %s: %s", machineName(m), why)
		res := &control.Result{UUID: d.uuid, Name: d.name, StopReason: reason}
		for _, id := range d.nodes[m] {
			res.Nodes = append(res.Nodes, control.NodeResult{ID: id, Machine: m, ExitCode: -1, Error: fmt.Sprintf("lost with the daemon of machine %s: %s", machineName(m), why)})
		}
		c.finished(d, m, res, reason)
	}
}

func (c *Coordinator) sortedActive() []*dataflow {
	out := make([]*dataflow, 0, len(c.dataflows))
	for _, d := range c.dataflows {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].started.Before(out[j].started) })
	return out
}

// find resolves a UUID, a unique UUID prefix or a name: the running
// dataflow, else the latest that ended.
func (c *Coordinator) find(ref string) (*dataflow, error) {
	if ref == "" {
		active := c.sortedActive()
		switch {
		case len(active) == 1:
			return active[0], nil
		case len(active) == 0 && len(c.history) > 0:
			return c.history[len(c.history)-1], nil
		case len(active) == 0:
			return nil, fmt.Errorf("no dataflow is running")
		}
		return nil, fmt.Errorf("%d dataflows are running; name one (dora list)", len(active))
	}
	if d := c.dataflows[ref]; d != nil {
		return d, nil
	}
	all := slices.Concat(c.sortedActive(), reversed(c.history))
	for _, d := range all {
		if d.uuid == ref || (d.name != "" && d.name == ref) {
			return d, nil
		}
	}
	var match []*dataflow
	for _, d := range all {
		if strings.HasPrefix(d.uuid, ref) {
			match = append(match, d)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("no dataflow with UUID or name %q (dora list)", ref)
	}
	return nil, fmt.Errorf("%q is the start of %d dataflow UUIDs; give more of it", ref, len(match))
}

func reversed(ds []*dataflow) []*dataflow {
	out := slices.Clone(ds)
	slices.Reverse(out)
	return out
}
