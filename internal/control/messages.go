package control

import (
	"fmt"
	"time"
)

// Kind identifies a frame. Each kind travels in one direction only; the
// ranges say which (abi/CONTROL.md lists them with their bodies).
type Kind uint8

// CLI → coordinator: one request per connection.
const (
	KindStart   Kind = 1
	KindStop    Kind = 2
	KindList    Kind = 3
	KindLogs    Kind = 4
	KindDestroy Kind = 5
)

// Coordinator → CLI.
const (
	KindError     Kind = 32
	KindStarted   Kind = 33
	KindOutput    Kind = 34
	KindResult    Kind = 35
	KindListReply Kind = 36
	KindLogData   Kind = 37
	KindEnd       Kind = 38
	KindDestroyed Kind = 39
)

// Daemon → coordinator.
const (
	KindRegister     Kind = 64
	KindHeartbeat    Kind = 65
	KindReady        Kind = 66
	KindStopAsked    Kind = 67
	KindNodeExited   Kind = 68
	KindFinished     Kind = 69
	KindNodeOutput   Kind = 70
	KindDaemonLog    Kind = 71
	KindDaemonLogEnd Kind = 72
	KindOutputClosed Kind = 73
)

// Coordinator → daemon.
const (
	KindRegisterReply Kind = 96
	KindPing          Kind = 97
	KindSpawn         Kind = 98
	KindAllNodesReady Kind = 99
	KindStopDataflow  Kind = 100
	KindReadLogs      Kind = 101
	KindCancelLogs    Kind = 102
	KindShutdown      Kind = 103
	KindInputClosed   Kind = 104
)

var kindNames = map[Kind]string{
	KindStart: "START", KindStop: "STOP", KindList: "LIST", KindLogs: "LOGS", KindDestroy: "DESTROY",
	KindError: "ERROR", KindStarted: "STARTED", KindOutput: "OUTPUT", KindResult: "RESULT",
	KindListReply: "LIST_REPLY", KindLogData: "LOG_DATA", KindEnd: "END", KindDestroyed: "DESTROYED",
	KindRegister: "REGISTER", KindHeartbeat: "HEARTBEAT", KindReady: "READY", KindStopAsked: "STOP_ASKED",
	KindNodeExited: "NODE_EXITED", KindFinished: "FINISHED", KindNodeOutput: "NODE_OUTPUT",
	KindDaemonLog: "DAEMON_LOG", KindDaemonLogEnd: "DAEMON_LOG_END", KindOutputClosed: "OUTPUT_CLOSED",
	KindRegisterReply: "REGISTER_REPLY", KindPing: "PING", KindSpawn: "SPAWN",
	KindAllNodesReady: "ALL_NODES_READY", KindStopDataflow: "STOP_DATAFLOW", KindReadLogs: "READ_LOGS",
	KindCancelLogs: "CANCEL_LOGS", KindShutdown: "SHUTDOWN", KindInputClosed: "INPUT_CLOSED",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Direction says who sends a kind to whom.
type Direction uint8

const (
	CLIToCoordinator Direction = iota + 1
	CoordinatorToCLI
	DaemonToCoordinator
	CoordinatorToDaemon
)

// Direction is the direction k travels in; 0 for unknown kinds.
func (k Kind) Direction() Direction {
	if _, ok := kindNames[k]; !ok {
		return 0
	}
	switch {
	case k < 32:
		return CLIToCoordinator
	case k < 64:
		return CoordinatorToCLI
	case k < 96:
		return DaemonToCoordinator
	default:
		return CoordinatorToDaemon
	}
}

// Expect checks that a received kind may travel in direction d.
func Expect(k Kind, d Direction) error {
	if k.Direction() != d {
		return fmt.Errorf("%w: unexpected %s frame", ErrMalformed, k)
	}
	return nil
}

// StartRequest (START) asks to run a dataflow.
type StartRequest struct {
	// File is the dataflow file's absolute path on the CLI's machine: local
	// nodes resolve relative paths against its folder.
	File string `json:"file"`
	YAML []byte `json:"yaml"`
	Name string `json:"name,omitempty"`
	// Attach keeps the connection: node output (OUTPUT) then the RESULT.
	Attach bool `json:"attach,omitempty"`
	// Env is added to every node's environment.
	Env []string `json:"env,omitempty"`
}

// StopRequest (STOP) stops a dataflow and waits for its RESULT.
type StopRequest struct {
	// Dataflow is a UUID or a name.
	Dataflow string `json:"dataflow"`
	// Grace overrides how long nodes get after Stop before they are
	// killed; 0 keeps the daemon's default.
	Grace time.Duration `json:"grace_ns,omitempty"`
}

// LogsRequest (LOGS) reads one node's log file.
type LogsRequest struct {
	// Dataflow is a UUID or a name; empty means the only dataflow known.
	Dataflow string `json:"dataflow,omitempty"`
	Node     string `json:"node"`
	Follow   bool   `json:"follow,omitempty"`
}

// DestroyRequest (DESTROY) stops every dataflow, the daemons and the
// coordinator.
type DestroyRequest struct {
	Grace time.Duration `json:"grace_ns,omitempty"`
}

// ErrorReply (ERROR) ends a request that failed.
type ErrorReply struct {
	Message string `json:"message"`
}

// Started (STARTED) says every node of the dataflow connected and the
// dataflow runs.
type Started struct {
	UUID     string   `json:"uuid"`
	Name     string   `json:"name,omitempty"`
	Machines []string `json:"machines"`
}

// Output (OUTPUT, NODE_OUTPUT) carries node output lines, each prefixed
// with the node id.
type Output struct {
	UUID string `json:"uuid,omitempty"`
	Data []byte `json:"data"`
}

// NodeResult is how one node ended.
type NodeResult struct {
	ID      string `json:"id"`
	Machine string `json:"machine"`
	// ExitCode is -1 when the process did not exit by itself.
	ExitCode   int               `json:"exit_code"`
	Signal     string            `json:"signal,omitempty"`
	Error      string            `json:"error,omitempty"`
	StderrTail []string          `json:"stderr_tail,omitempty"`
	Dropped    map[string]uint64 `json:"dropped,omitempty"`
	Lost       map[string]uint64 `json:"lost,omitempty"`
	// RemoteDropped counts, per output, messages dropped before they
	// left for other machines.
	RemoteDropped map[string]uint64 `json:"remote_dropped,omitempty"`
	LogFile       string            `json:"log_file,omitempty"`
}

// Failed reports whether the node did not finish successfully.
func (n *NodeResult) Failed() bool { return n.Error != "" || n.ExitCode != 0 }

// Result (RESULT, and in FINISHED one machine's part) is how a dataflow
// ended.
type Result struct {
	UUID       string       `json:"uuid"`
	Name       string       `json:"name,omitempty"`
	StopReason string       `json:"stop_reason,omitempty"`
	Nodes      []NodeResult `json:"nodes"`
}

// Failed reports whether some node failed.
func (r *Result) Failed() bool {
	for i := range r.Nodes {
		if r.Nodes[i].Failed() {
			return true
		}
	}
	return false
}

// Dataflow statuses in LIST_REPLY.
const (
	StatusStarting  = "starting"
	StatusRunning   = "running"
	StatusStopping  = "stopping"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// DataflowInfo is one row of `dora list`.
type DataflowInfo struct {
	UUID     string   `json:"uuid"`
	Name     string   `json:"name,omitempty"`
	Status   string   `json:"status"`
	Running  int      `json:"running"`
	Total    int      `json:"total"`
	Machines []string `json:"machines"`
	Reason   string   `json:"reason,omitempty"`
}

// DaemonInfo is one connected daemon.
type DaemonInfo struct {
	MachineID string `json:"machine_id"`
	Addr      string `json:"addr"`
}

// ListReply (LIST_REPLY) lists dataflows (running and recently ended,
// oldest first) and connected daemons.
type ListReply struct {
	Dataflows []DataflowInfo `json:"dataflows"`
	Daemons   []DaemonInfo   `json:"daemons"`
}

// LogData (LOG_DATA) is a piece of a log file.
type LogData struct {
	Data []byte `json:"data"`
}

// Destroyed (DESTROYED) is the last frame of DESTROY; the coordinator
// exits after sending it.
type Destroyed struct {
	Dataflows int `json:"dataflows"`
	Daemons   int `json:"daemons"`
}

// Register (REGISTER) is a daemon's first frame.
type Register struct {
	// MachineID is the daemon's --machine-id; empty is the default daemon.
	MachineID string `json:"machine_id"`
	// Dataflows are those still running on the daemon: after the
	// coordinator restarted, it learns them from here.
	Dataflows []RunningDataflow `json:"dataflows,omitempty"`
}

// RunningDataflow is a dataflow a re-registering daemon still runs.
type RunningDataflow struct {
	UUID     string   `json:"uuid"`
	Name     string   `json:"name,omitempty"`
	Machines []string `json:"machines"`
	Nodes    []string `json:"nodes"`
	Running  []string `json:"running"`
	// Ready is false while the dataflow waits for ALL_NODES_READY.
	Ready bool `json:"ready"`
}

// RegisterReply (REGISTER_REPLY) accepts or refuses a daemon and says how
// to reach the other machines.
type RegisterReply struct {
	Error string `json:"error,omitempty"`
	// NATSURL is the NATS server cross-machine messages go through. When
	// empty, it is the coordinator's embedded server at NATSPort, on the
	// host the daemon reached the coordinator at.
	NATSURL  string `json:"nats_url,omitempty"`
	NATSPort int    `json:"nats_port,omitempty"`
	// Heartbeat is how often each side sends a frame at least; a side
	// silent for HeartbeatTimeout is considered gone.
	Heartbeat        time.Duration `json:"heartbeat_ns"`
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout_ns"`
}

// Spawn (SPAWN) asks a daemon to run its nodes of a dataflow.
type Spawn struct {
	UUID string `json:"uuid"`
	Name string `json:"name,omitempty"`
	// File and YAML are as the CLI sent them.
	File string `json:"file"`
	YAML []byte `json:"yaml"`
	// Nodes are the ids of the nodes this daemon runs; the others run on
	// other machines.
	Nodes    []string `json:"nodes"`
	Machines []string `json:"machines"`
	// Placement is the machine of every node of the dataflow.
	Placement map[string]string `json:"placement"`
	Env       []string          `json:"env,omitempty"`
	// ForwardOutput asks for NODE_OUTPUT frames (a CLI is attached).
	ForwardOutput bool `json:"forward_output,omitempty"`
}

// DataflowRef (READY, ALL_NODES_READY) names a dataflow.
type DataflowRef struct {
	UUID string `json:"uuid"`
}

// StopDataflow (STOP_DATAFLOW, and STOP_ASKED from a daemon) stops a
// dataflow everywhere.
type StopDataflow struct {
	UUID   string        `json:"uuid"`
	Reason string        `json:"reason"`
	Grace  time.Duration `json:"grace_ns,omitempty"`
}

// NodeExited (NODE_EXITED) says one node's process ended.
type NodeExited struct {
	UUID string `json:"uuid"`
	Node string `json:"node"`
}

// Finished (FINISHED) is a daemon's part of a dataflow's result: every
// one of its nodes has ended. Error is set when the daemon could not run
// the dataflow at all.
type Finished struct {
	Result Result `json:"result"`
	Error  string `json:"error,omitempty"`
}

// OutputClosed (OUTPUT_CLOSED from the sending daemon, INPUT_CLOSED to
// the others) says an output read on other machines closed after Sent
// messages. It backs up the transport's own end-of-stream marker, which
// can be lost like any message.
type OutputClosed struct {
	UUID   string `json:"uuid"`
	Node   string `json:"node"`
	Output string `json:"output"`
	Sent   uint64 `json:"sent"`
}

// ReadLogs (READ_LOGS) asks a daemon for a node's log file, answered by
// DAEMON_LOG frames and one DAEMON_LOG_END with the same Req.
type ReadLogs struct {
	Req    uint64 `json:"req"`
	UUID   string `json:"uuid"`
	Node   string `json:"node"`
	Follow bool   `json:"follow,omitempty"`
}

// LogChunk (DAEMON_LOG, DAEMON_LOG_END, CANCEL_LOGS) is a piece of a
// READ_LOGS answer, or its end (Error set if it failed).
type LogChunk struct {
	Req   uint64 `json:"req"`
	Data  []byte `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
}
