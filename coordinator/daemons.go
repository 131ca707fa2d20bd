package coordinator

import (
	"fmt"
	"sort"
	"time"

	"github.com/dora-go/dora/internal/control"
)

// daemonJoined is REGISTER: accept the daemon (one per machine id), tell
// it where cross-machine messages go, and reconcile the dataflows it
// still runs with what the coordinator knows.
func (c *Coordinator) daemonJoined(d *daemonConn, reg control.Register) {
	if old := c.daemons[d.machine]; old != nil {
		d.sendLast(control.KindRegisterReply, control.RegisterReply{
			Error: fmt.Sprintf("a daemon with machine id %s is already connected (from %s)", machineName(d.machine), old.host),
		})
		return
	}
	if c.destroy != nil {
		d.sendLast(control.KindRegisterReply, control.RegisterReply{Error: "the coordinator is being destroyed"})
		return
	}
	c.daemons[d.machine] = d
	rep := control.RegisterReply{NATSURL: c.cfg.NATSURL, Heartbeat: c.cfg.Heartbeat, HeartbeatTimeout: c.cfg.HeartbeatTimeout}
	if c.nats != nil {
		rep.NATSPort = c.nats.Port()
	}
	d.send(control.KindRegisterReply, rep)
	c.log.Info("daemon registered", "machine", machineName(d.machine), "addr", d.host, "dataflows", len(reg.Dataflows))
	for _, rd := range reg.Dataflows {
		c.reconcile(d, rd)
	}
}

// reconcile handles a dataflow a registering daemon still runs.
func (c *Coordinator) reconcile(dc *daemonConn, rd control.RunningDataflow) {
	m := dc.machine
	stop := func(reason string) {
		dc.send(control.KindStopDataflow, control.StopDataflow{UUID: rd.UUID, Reason: reason})
	}
	d := c.dataflows[rd.UUID]
	switch {
	case d == nil && c.ended(rd.UUID):
		stop("the dataflow already ended on the other machines")
		return
	case d == nil && !rd.Ready:
		stop("the coordinator restarted while the dataflow was starting")
		return
	case d == nil:
		d = &dataflow{
			uuid: rd.UUID, name: rd.Name, status: control.StatusRunning, started: time.Now(),
			nodes: make(map[string][]string), machineOf: make(map[string]string), expect: make(map[string]bool),
			ready: make(map[string]bool), results: make(map[string]*control.Result), exited: make(map[string]bool),
		}
		c.dataflows[d.uuid] = d
		c.log.Info("learnt a running dataflow from a daemon", "dataflow", d.uuid, "machine", machineName(m))
	case d.results[m] != nil:
		stop("the dataflow already ended for this machine: " + d.reason)
		return
	}
	if !d.expect[m] {
		d.expect[m] = true
		d.machines = append(d.machines, m)
		sort.Strings(d.machines)
	}
	d.nodes[m] = rd.Nodes
	running := make(map[string]bool)
	for _, id := range rd.Running {
		running[id] = true
	}
	for _, id := range rd.Nodes {
		d.machineOf[id] = m
		if !running[id] {
			d.exited[id] = true
		}
	}
	if !rd.Ready && d.status == control.StatusStarting {
		return // its READY is still to come
	}
	if d.status == control.StatusStopping {
		stop(d.reason)
	}
}

func (c *Coordinator) ended(uuid string) bool {
	for _, d := range c.history {
		if d.uuid == uuid {
			return true
		}
	}
	return false
}

// daemonFrame handles one frame of a registered daemon.
func (c *Coordinator) daemonFrame(dc *daemonConn, k control.Kind, body []byte) error {
	m := dc.machine
	switch k {
	case control.KindReady:
		var ref control.DataflowRef
		if err := control.Decode(k, body, &ref); err != nil {
			return err
		}
		if d := c.dataflows[ref.UUID]; d != nil && d.expect[m] {
			c.ready(d, m)
		}
	case control.KindStopAsked:
		var st control.StopDataflow
		if err := control.Decode(k, body, &st); err != nil {
			return err
		}
		if d := c.dataflows[st.UUID]; d != nil && d.expect[m] {
			c.stop(d, fmt.Sprintf("machine %s: %s", machineName(m), st.Reason), 0)
		}
	case control.KindNodeExited:
		var ne control.NodeExited
		if err := control.Decode(k, body, &ne); err != nil {
			return err
		}
		if d := c.dataflows[ne.UUID]; d != nil && d.machineOf[ne.Node] == m {
			d.exited[ne.Node] = true
		}
	case control.KindFinished:
		var f control.Finished
		if err := control.Decode(k, body, &f); err != nil {
			return err
		}
		if d := c.dataflows[f.Result.UUID]; d != nil && d.expect[m] {
			for i := range f.Result.Nodes {
				f.Result.Nodes[i].Machine = m
				if d.machineOf[f.Result.Nodes[i].ID] != m {
					return fmt.Errorf("FINISHED reports node %q, which is not on machine %s", f.Result.Nodes[i].ID, machineName(m))
				}
			}
			c.finished(d, m, &f.Result, f.Error)
		}
	case control.KindNodeOutput:
		var out control.Output
		if err := control.Decode(k, body, &out); err != nil {
			return err
		}
		if d := c.dataflows[out.UUID]; d != nil {
			for _, cli := range d.attached {
				cli.send(control.KindOutput, control.Output{Data: out.Data})
			}
		}
	case control.KindOutputClosed:
		var oc control.OutputClosed
		if err := control.Decode(k, body, &oc); err != nil {
			return err
		}
		if d := c.dataflows[oc.UUID]; d != nil && d.machineOf[oc.Node] == m {
			for _, mm := range d.machines {
				if dc := c.daemons[mm]; dc != nil && mm != m && d.results[mm] == nil {
					dc.send(control.KindInputClosed, oc)
				}
			}
		}
	case control.KindDaemonLog, control.KindDaemonLogEnd:
		var chunk control.LogChunk
		if err := control.Decode(k, body, &chunk); err != nil {
			return err
		}
		lr := c.logReqs[chunk.Req]
		if lr == nil || lr.daemon != dc {
			return nil // the CLI left
		}
		if k == control.KindDaemonLog {
			lr.cli.send(control.KindLogData, control.LogData{Data: chunk.Data})
			return nil
		}
		delete(c.logReqs, chunk.Req)
		if chunk.Error != "" {
			lr.cli.sendLast(control.KindError, control.ErrorReply{Message: chunk.Error})
		} else {
			lr.cli.sendLast(control.KindEnd, nil)
		}
	default:
		return fmt.Errorf("%w: unexpected %s", control.ErrMalformed, k)
	}
	return nil
}

// daemonLeft drops a daemon whose connection ended: every dataflow with
// nodes on its machine fails with the reason.
func (c *Coordinator) daemonLeft(d *daemonConn, err error) {
	if c.daemons[d.machine] != d {
		return
	}
	delete(c.daemons, d.machine)
	why := "its connection closed"
	if err != nil {
		why = err.Error()
	}
	if c.destroy == nil {
		c.log.Warn("lost a daemon", "machine", machineName(d.machine), "err", why)
	}
	for req, lr := range c.logReqs {
		if lr.daemon == d {
			delete(c.logReqs, req)
			lr.cli.sendLast(control.KindError, control.ErrorReply{Message: fmt.Sprintf("lost the daemon of machine %s: %s", machineName(d.machine), why)})
		}
	}
	c.lostMachine(d.machine, why)
}
