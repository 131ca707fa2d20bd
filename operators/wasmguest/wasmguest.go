package wasmguest

import (
	"errors"

	wasmabi "github.com/dora-go/dora/abi/wasm"
)

// Status tells the runtime whether the operator goes on.
type Status int32

const (
	// Continue keeps the operator running.
	Continue Status = Status(wasmabi.StatusContinue)
	// Stop ends this operator; its outputs close.
	Stop Status = Status(wasmabi.StatusStop)
	// StopAll stops the whole dataflow.
	StopAll Status = Status(wasmabi.StatusStopAll)
)

// EventType tags an Event.
type EventType uint32

const (
	// Input: a message arrived on input ID.
	Input EventType = EventType(wasmabi.EventInput)
	// InputClosed: input ID will receive nothing more.
	InputClosed EventType = EventType(wasmabi.EventInputClosed)
	// StopEvent: the dataflow is stopping.
	StopEvent EventType = EventType(wasmabi.EventStop)
	// ErrorEvent: the runtime reports a problem; see Event.Error.
	ErrorEvent EventType = EventType(wasmabi.EventError)
)

func (t EventType) String() string {
	switch t {
	case Input:
		return "INPUT"
	case InputClosed:
		return "INPUT_CLOSED"
	case StopEvent:
		return "STOP"
	case ErrorEvent:
		return "ERROR"
	}
	return "EventType(?)"
}

// Event is one event. Its strings and slices point into host-written
// memory that is reused for the next event: they are valid during
// OnEvent only.
type Event struct {
	Type EventType
	// ID is the input id (Input, InputClosed).
	ID string
	// Data is the input's payload (Input).
	Data []byte
	// Error is the runtime's message (ErrorEvent).
	Error string
	// RawMetadata is the encoded metadata block of an Input (ABI.md,
	// "Metadata"); decode it with Metadata, or read the timestamp alone
	// with Timestamp.
	RawMetadata []byte
}

// Timestamp is the sender's clock at send time, in nanoseconds since the
// Unix epoch, or 0 when the event has no metadata. It does not allocate.
func (e *Event) Timestamp() uint64 { return wasmabi.MetadataTimestamp(e.RawMetadata) }

// Metadata decodes the event's metadata (timestamp, OpenTelemetry
// context, parameters and Arrow type information). It allocates; the
// result does not point into the event.
func (e *Event) Metadata() (Metadata, error) {
	if len(e.RawMetadata) == 0 {
		return Metadata{}, nil
	}
	return wasmabi.DecodeMetadata(e.RawMetadata)
}

// Sender sends outputs. It is valid during OnEvent only.
type Sender interface {
	// Send publishes data as output id. The host reads data during the
	// call: the slice may be reused as soon as Send returns.
	Send(id string, data []byte) error
	// SendWithMetadata also passes metadata: parameters, a trace
	// context, and md.Type when data holds an Arrow array. A zero
	// md.Timestamp is filled in by the runtime.
	SendWithMetadata(id string, data []byte, md *Metadata) error
}

// ErrSendFailed is what Send returns when the runtime could not send the
// output. The host already knows the cause and reports it with the
// event's result; returning this error from OnEvent is fine.
var ErrSendFailed = errors.New("dora: send_output failed (the runtime reports the cause)")

// ErrInvalidSend is returned for an output the host rejected as
// malformed, or sent outside OnEvent.
var ErrInvalidSend = errors.New("dora: send_output rejected (outside OnEvent or bad arguments)")

// Operator is what a wasm operator implements.
type Operator interface {
	// OnEvent handles one event. A returned error is reported with the
	// operator's id and the operator keeps running unless the status
	// says otherwise. A panic is recovered by the SDK and reported as a
	// panic with its stack; the operator keeps running.
	OnEvent(ev Event, out Sender) (Status, error)
}

// Initializer is implemented by operators that need to set up before the
// first event; an error fails the operator's load.
type Initializer interface {
	Init() error
}

// Dropper is implemented by operators that release something when the
// runtime unloads them.
type Dropper interface {
	Drop()
}

// StateSaver is implemented by operators whose state survives a hot
// reload: the runtime calls SaveState on the old instance and
// RestoreState on the new one, after its Init. The bytes are the
// operator's own format. Without it, a reloaded operator starts afresh.
type StateSaver interface {
	SaveState() ([]byte, error)
	RestoreState(state []byte) error
}

// OperatorFunc makes a function an Operator.
type OperatorFunc func(ev Event, out Sender) (Status, error)

// OnEvent implements Operator.
func (f OperatorFunc) OnEvent(ev Event, out Sender) (Status, error) { return f(ev, out) }

// Level is a log level; the values are those of log/slog.
type Level int32

const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

var registered Operator

// Register makes op the module's operator. Call it once, from an init
// function: the runtime initialises the module (runs its init functions)
// before it calls dora_init, and main is never called.
func Register(op Operator) {
	if op == nil {
		panic("wasmguest.Register(nil)")
	}
	if registered != nil {
		panic("wasmguest.Register called twice")
	}
	registered = op
}

// Registered returns the operator passed to Register, or nil. Native
// tests use it to drive the operator a program registers.
func Registered() Operator { return registered }

// Metadata types, shared with the host's codec (abi/wasm).
type (
	Metadata   = wasmabi.Metadata
	Parameter  = wasmabi.Parameter
	ParamKind  = wasmabi.ParamKind
	ArrayInfo  = wasmabi.ArrayInfo
	BufferSpan = wasmabi.BufferSpan
)
