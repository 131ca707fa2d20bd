package coordinator

import (
	"errors"
	"fmt"
	"time"

	"github.com/dora-go/dora/internal/control"
	"github.com/dora-go/dora/internal/descriptor"
)

// logReq is a LOGS request relayed to the daemon that ran the node.
type logReq struct {
	cli    *cliConn
	daemon *daemonConn
}

// destroyState tracks DESTROY: stop the dataflows, then shut the daemons
// down, then exit.
type destroyState struct {
	cli       *cliConn
	dataflows int
	daemons   int
	// deadline bounds the current phase.
	deadline time.Time
	shutdown bool // the daemons were told to exit
	finished bool // DESTROYED was sent
}

// After the daemons were told to exit, how long they get to disconnect.
const shutdownWait = 5 * time.Second

func (c *Coordinator) cliRequest(cli *cliConn, k control.Kind, body []byte) {
	fail := func(err error) { cli.sendLast(control.KindError, control.ErrorReply{Message: err.Error()}) }
	if c.destroy != nil {
		fail(errors.New("the coordinator is being destroyed"))
		return
	}
	switch k {
	case control.KindStart:
		var req control.StartRequest
		if err := control.Decode(k, body, &req); err != nil {
			fail(err)
			return
		}
		df, err := descriptor.Parse(req.File, req.YAML)
		if err != nil {
			fail(fmt.Errorf("invalid dataflow: %w", err))
			return
		}
		if req.Name != "" {
			for _, d := range c.dataflows {
				if d.name == req.Name {
					fail(fmt.Errorf("a dataflow named %q is already running (%s)", req.Name, d.uuid))
					return
				}
			}
		}
		nodes, err := c.place(df)
		if err != nil {
			fail(err)
			return
		}
		c.start(cli, req, df, nodes)
	case control.KindStop:
		var req control.StopRequest
		if err := control.Decode(k, body, &req); err != nil {
			fail(err)
			return
		}
		if req.Dataflow == "" && len(c.dataflows) == 0 {
			fail(errors.New("no dataflow is running"))
			return
		}
		d, err := c.find(req.Dataflow)
		if err != nil {
			fail(err)
			return
		}
		if !d.active() {
			cli.sendLast(control.KindResult, d.final)
			return
		}
		d.waiters = append(d.waiters, cli)
		c.stop(d, "stopped by `dora stop`", req.Grace)
	case control.KindList:
		rep := control.ListReply{}
		for _, d := range c.history {
			rep.Dataflows = append(rep.Dataflows, d.info())
		}
		for _, d := range c.sortedActive() {
			rep.Dataflows = append(rep.Dataflows, d.info())
		}
		for m, dc := range c.daemons {
			rep.Daemons = append(rep.Daemons, control.DaemonInfo{MachineID: m, Addr: dc.host})
		}
		cli.sendLast(control.KindListReply, rep)
	case control.KindLogs:
		var req control.LogsRequest
		if err := control.Decode(k, body, &req); err != nil {
			fail(err)
			return
		}
		d, err := c.find(req.Dataflow)
		if err != nil {
			fail(err)
			return
		}
		m, ok := d.machineOf[req.Node]
		if !ok {
			fail(fmt.Errorf("dataflow %s has no node %q", d.uuid, req.Node))
			return
		}
		dc := c.daemons[m]
		if dc == nil {
			fail(fmt.Errorf("node %q ran on machine %s, whose daemon is not connected", req.Node, machineName(m)))
			return
		}
		c.nextReq++
		c.logReqs[c.nextReq] = &logReq{cli: cli, daemon: dc}
		dc.send(control.KindReadLogs, control.ReadLogs{Req: c.nextReq, UUID: d.uuid, Node: req.Node, Follow: req.Follow})
	case control.KindDestroy:
		var req control.DestroyRequest
		if err := control.Decode(k, body, &req); err != nil {
			fail(err)
			return
		}
		grace := req.Grace
		if grace <= 0 {
			grace = 10 * time.Second
		}
		c.destroy = &destroyState{cli: cli, dataflows: len(c.dataflows), daemons: len(c.daemons), deadline: time.Now().Add(grace + 5*time.Second)}
		c.log.Info("destroying: stopping every dataflow", "dataflows", len(c.dataflows))
		for _, d := range c.sortedActive() {
			c.stop(d, "dora destroy", req.Grace)
		}
	default:
		fail(fmt.Errorf("%w: unexpected %s", control.ErrMalformed, k))
	}
}

// checkDestroy moves DESTROY on once its current phase is over.
func (c *Coordinator) checkDestroy(now time.Time) {
	ds := c.destroy
	if ds == nil || ds.finished {
		return
	}
	if !ds.shutdown {
		if len(c.dataflows) > 0 && now.Before(ds.deadline) {
			return
		}
		ds.shutdown = true
		ds.deadline = now.Add(shutdownWait)
		for _, d := range c.daemons {
			d.send(control.KindShutdown, nil)
		}
	}
	if len(c.daemons) > 0 && now.Before(ds.deadline) {
		return
	}
	ds.finished = true
	ds.cli.sendLast(control.KindDestroyed, control.Destroyed{Dataflows: ds.dataflows, Daemons: ds.daemons})
}

// cliLeft forgets a CLI that disconnected.
func (c *Coordinator) cliLeft(cli *cliConn) {
	for req, lr := range c.logReqs {
		if lr.cli == cli {
			delete(c.logReqs, req)
			lr.daemon.send(control.KindCancelLogs, control.LogChunk{Req: req})
		}
	}
	for _, d := range c.sortedActive() {
		if d.starter == cli {
			d.starter = nil
			if d.status == control.StatusStarting {
				c.stop(d, "the CLI that started it left before it started", 0)
			}
		}
		d.attached = remove(d.attached, cli)
		d.waiters = remove(d.waiters, cli)
	}
}

func remove(cs []*cliConn, c *cliConn) []*cliConn {
	out := cs[:0]
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}
