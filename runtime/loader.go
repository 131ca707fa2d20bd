package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
)

// Loader turns a validated operator spec into a running Operator. There is
// one Loader per operator source kind (shared-library, python, wasm), each in
// its own package under loaders/.
//
// The contract every implementation keeps, and that the conformance suite in
// runtime/runtimetest checks:
//   - Load initialises the operator exactly once (dora_init_operator,
//     Operator.__init__, the guest's init export) and returns only when it
//     is ready to take events, or with an error wrapped in *OperatorError.
//   - Load never hangs: it returns when ctx is done.
//   - Whatever Load mapped or loaded (a .so, a wasm module, a Python module)
//     stays loaded until Operator.Close returns.
type Loader interface {
	Load(ctx context.Context, spec OperatorSpec) (Operator, error)
}

// Operator is a loaded operator.
//
// The runtime calls OnEvent from one goroutine at a time (each operator has
// its own goroutine and queue), and Close exactly once, after the last
// OnEvent has returned. An operator must not keep ev.Data, or anything
// pointing into it, after OnEvent returns: the buffer may be shared memory
// that is handed back to its sender.
type Operator interface {
	// OnEvent handles one event and says whether the operator continues.
	// Outputs are sent through out during the call only. A returned error
	// is reported with the operator's id; the operator keeps running
	// unless the status says otherwise. OnEvent should return when ctx is
	// done; loaders that can interrupt their code (wasm) enforce it.
	OnEvent(ctx context.Context, ev *Event, out Sender) (Status, error)
	// Close releases the operator (dora_drop_operator, ...). It is safe to
	// call more than once; calls after the first return nil.
	Close() error
}

// Reloader is implemented by operators that can swap their code in place,
// keeping their queue (the runtime's) and their state where the loader can
// carry it over. The runtime calls Reload between two events, never during
// one. On error the old code keeps running.
type Reloader interface {
	Reload(ctx context.Context, spec OperatorSpec) error
}

// Prober is implemented by loaders that may be unusable on a machine (no
// libpython, for example). `dora check` uses it to say why.
type Prober interface {
	// Probe returns nil when the loader can run here, or an error a user
	// can act on.
	Probe() error
}

// OperatorSpec is everything a loader needs to load one operator.
type OperatorSpec struct {
	// NodeID is the runtime node hosting the operator.
	NodeID   string
	Operator *descriptor.Operator
	// Path is Operator.Source.Path made absolute against the node's working
	// directory. Shared-library loaders still add the platform's prefix and
	// extension when the file does not exist as given.
	Path string
	// WorkDir is the node's working directory.
	WorkDir string
	// Logger carries node= and operator= attributes already.
	Logger *slog.Logger
	// Stdout and Stderr receive what the operator prints, for loaders that
	// can redirect it (wasm, python). Native code writes to the process's
	// own file descriptors, which the daemon captures.
	Stdout, Stderr io.Writer
	// DedicatedThread is set when the caller makes every call for this
	// operator (Load, OnEvent, Reload, Close) from one goroutine locked to
	// its OS thread, as the runtime does: a loader may then run
	// thread-bound code on the caller's thread instead of a thread of its
	// own.
	DedicatedThread bool
}

// Status is what an operator returns from OnEvent. The values are those of
// DORA_STATUS_* in abi/c/operator_types.h and of the Python DoraStatus enum.
type Status int32

const (
	// StatusContinue keeps the operator running.
	StatusContinue Status = 0
	// StatusStop ends this operator; its outputs close.
	StatusStop Status = 1
	// StatusStopAll stops the whole dataflow.
	StatusStopAll Status = 2
)

func (s Status) String() string {
	switch s {
	case StatusContinue:
		return "CONTINUE"
	case StatusStop:
		return "STOP"
	case StatusStopAll:
		return "STOP_ALL"
	}
	return fmt.Sprintf("Status(%d)", int32(s))
}

// EventType tags an Event.
type EventType uint8

const (
	EventInput EventType = iota + 1
	EventInputClosed
	EventStop
	EventError
)

func (t EventType) String() string {
	switch t {
	case EventInput:
		return "INPUT"
	case EventInputClosed:
		return "INPUT_CLOSED"
	case EventStop:
		return "STOP"
	case EventError:
		return "ERROR"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one event for an operator.
type Event struct {
	Type EventType
	// ID is the operator-local input id, for EventInput and EventInputClosed.
	ID string
	// Data is the input's payload. It is only valid until OnEvent returns.
	Data     []byte
	Metadata wire.Metadata
	// Error is the message of an EventError.
	Error string
}

// Output is one message sent by an operator.
type Output struct {
	// ID is the operator-local output id; the runtime publishes it as
	// node/operator/output.
	ID string
	// Data is read during Send only.
	Data []byte
	// Metadata.Type describes Data as an Arrow array, or is nil for raw
	// bytes. A zero Timestamp is filled in by the runtime.
	Metadata wire.Metadata
}

// Sender publishes an operator's outputs. It is only valid during the
// OnEvent call it was passed to.
type Sender interface {
	Send(out Output) error
}

// Phase says what an operator was doing when it failed.
type Phase string

const (
	PhaseLoad   Phase = "load"
	PhaseInit   Phase = "init"
	PhaseEvent  Phase = "on_event"
	PhaseClose  Phase = "drop"
	PhaseReload Phase = "reload"
)

// OperatorError is the error loaders return: it names the node, the
// operator, the loader and the phase, so a user can find the culprit.
type OperatorError struct {
	Node     string
	Operator string
	Loader   descriptor.SourceKind
	Phase    Phase
	Err      error
}

func (e *OperatorError) Error() string {
	return fmt.Sprintf("node %q, operator %q (%s): %s: %v", e.Node, e.Operator, e.Loader, e.Phase, e.Err)
}

func (e *OperatorError) Unwrap() error { return e.Err }

// Sentinel causes, matched with errors.Is through an *OperatorError.
var (
	// ErrMissingSymbol: a shared library or wasm module lacks a required
	// symbol or export. The wrapping error names it.
	ErrMissingSymbol = errors.New("missing symbol")
	// ErrTrap: wasm code trapped (unreachable, out-of-bounds access, ...).
	ErrTrap = errors.New("wasm trap")
	// ErrTimeout: an event took longer than the operator's time limit.
	ErrTimeout = errors.New("event time limit exceeded")
	// ErrPythonException: Python code raised; the message has the traceback.
	ErrPythonException = errors.New("python exception")
	// ErrPanic: Go code panicked inside an operator.
	ErrPanic = errors.New("operator panicked")
	// ErrOperatorError: the operator itself reported an error (an error
	// string from dora_on_event or dora_init_operator, for instance).
	ErrOperatorError = errors.New("operator reported an error")
	// ErrOperatorCrashed: the process hosting an isolated operator died
	// (a signal, an exit, a broken connection). The wrapping error gives
	// the exit status or signal and the last lines of its stderr. The
	// runtime records it as the operator's failure; the returned status
	// says whether the operator goes on (its loader restarted it) or not.
	ErrOperatorCrashed = errors.New("operator process crashed")
)
