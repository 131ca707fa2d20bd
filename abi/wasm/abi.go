// Package wasm holds the Go side of the dora WASM operator ABI that
// ABI.md documents byte by byte: the export and import names, the event
// kinds and status codes, and the metadata codec shared by the host
// (loaders/wasm) and the Go guest SDK (operators/wasmguest). C guests use
// dora_operator.h next to this file.
//
// The package is pure Go without build constraints, so it compiles both
// for the host and for GOOS=wasip1 GOARCH=wasm guests.
package wasm

// Version is the ABI version this package speaks. A guest may export
// dora_abi_version returning it; a guest that returns another value is
// refused.
const Version = 1

// Names of the guest's exports.
const (
	ExportMemory         = "memory"
	ExportAlloc          = "dora_alloc"
	ExportInit           = "dora_init"
	ExportOnEvent        = "dora_on_event"
	ExportDrop           = "dora_drop"
	ExportABIVersion     = "dora_abi_version"
	ExportSaveState      = "dora_save_state"
	ExportRestoreState   = "dora_restore_state"
	ExportInitializeWASI = "_initialize"
)

// Names of the host's imports, all in module ImportModule.
const (
	ImportModule         = "dora"
	ImportSendOutput     = "send_output"
	ImportSendOutputMeta = "send_output_meta"
	ImportSetError       = "set_error"
	ImportSetState       = "set_state"
	ImportLog            = "log"
)

// Event kinds, the first argument of dora_on_event. They equal the values
// of runtime.EventType.
const (
	EventInput       uint32 = 1
	EventInputClosed uint32 = 2
	EventStop        uint32 = 3
	EventError       uint32 = 4
)

// Results of dora_on_event. Non-negative values are statuses (equal to
// runtime.Status); negative values are errors, with the message passed
// through set_error, and leave the operator running (status CONTINUE).
const (
	StatusContinue int32 = 0
	StatusStop     int32 = 1
	StatusStopAll  int32 = 2
	// ResultError: the operator reported an error.
	ResultError int32 = -1
	// ResultPanic: the guest's own code crashed (a Go panic, a C++
	// exception, a Rust panic) and the guest caught it.
	ResultPanic int32 = -2
)

// Results of the dora.send_output and dora.send_output_meta imports.
const (
	SendOK int32 = 0
	// SendFailed: the runtime could not send; the host reports the cause
	// with the event's result.
	SendFailed int32 = 1
	// SendInvalid: bad arguments (out-of-range pointers, undecodable
	// metadata, an output sent outside dora_on_event).
	SendInvalid int32 = 2
)

// MaxErrorLen bounds what the host keeps of a set_error or log message.
const MaxErrorLen = 64 << 10
