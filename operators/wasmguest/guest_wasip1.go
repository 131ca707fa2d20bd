//go:build wasip1

package wasmguest

import (
	"fmt"
	"runtime/debug"
	"unsafe"

	wasmabi "github.com/dora-go/dora/abi/wasm"
)

// The host's imports (ABI.md, "Imports"). A Go string is passed as two
// i32 (pointer, length).

//go:wasmimport dora send_output
func hostSendOutput(id string, data unsafe.Pointer, dataLen uint32) int32

//go:wasmimport dora send_output_meta
func hostSendOutputMeta(id string, data unsafe.Pointer, dataLen uint32, meta unsafe.Pointer, metaLen uint32) int32

//go:wasmimport dora set_error
func hostSetError(msg string)

//go:wasmimport dora set_state
func hostSetState(state unsafe.Pointer, stateLen uint32)

//go:wasmimport dora log
func hostLog(level int32, msg string)

// inBuf is the buffer the host writes events into: the one dora_alloc
// returned last. Keeping it in a global keeps it alive.
var inBuf []byte

// metaBuf is reused to encode output metadata.
var metaBuf []byte

//go:wasmexport dora_abi_version
func doraABIVersion() int32 { return wasmabi.Version }

//go:wasmexport dora_alloc
func doraAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	inBuf = make([]byte, size)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
}

// view maps a (pointer, length) pair the host passed back to the part of
// inBuf it designates. ok is false when it lies outside inBuf.
func view(ptr, n uint32) (b []byte, ok bool) {
	if n == 0 {
		return nil, true
	}
	base := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
	off := uint64(ptr) - uint64(base)
	if ptr < base || off+uint64(n) > uint64(len(inBuf)) {
		return nil, false
	}
	return inBuf[off : off+uint64(n) : off+uint64(n)], true
}

func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

type hostSender struct{}

var sender Sender = hostSender{}

func sendResult(r int32) error {
	switch r {
	case wasmabi.SendOK:
		return nil
	case wasmabi.SendFailed:
		return ErrSendFailed
	}
	return ErrInvalidSend
}

func (hostSender) Send(id string, data []byte) error {
	return sendResult(hostSendOutput(id, unsafe.Pointer(unsafe.SliceData(data)), uint32(len(data))))
}

func (hostSender) SendWithMetadata(id string, data []byte, md *wasmabi.Metadata) error {
	if md == nil {
		return hostSender{}.Send(id, data)
	}
	metaBuf = wasmabi.AppendMetadata(metaBuf[:0], md)
	return sendResult(hostSendOutputMeta(id, unsafe.Pointer(unsafe.SliceData(data)), uint32(len(data)),
		unsafe.Pointer(unsafe.SliceData(metaBuf)), uint32(len(metaBuf))))
}

func setError(err error) {
	hostSetError(err.Error())
}

// recovered turns a recovered panic into a set_error message.
func recovered(r any) int32 {
	hostSetError(fmt.Sprintf("panic: %v\n\n%s", r, debug.Stack()))
	return wasmabi.ResultPanic
}

//go:wasmexport dora_init
func doraInit() (res int32) {
	defer func() {
		if r := recover(); r != nil {
			res = recovered(r)
		}
	}()
	if registered == nil {
		hostSetError("no operator: call wasmguest.Register from an init function (main is never called)")
		return wasmabi.ResultError
	}
	if in, ok := registered.(Initializer); ok {
		if err := in.Init(); err != nil {
			setError(err)
			return wasmabi.ResultError
		}
	}
	return 0
}

//go:wasmexport dora_on_event
func doraOnEvent(kind, idPtr, idLen, dataPtr, dataLen, metaPtr, metaLen uint32) (res int32) {
	defer func() {
		if r := recover(); r != nil {
			res = recovered(r)
		}
	}()
	id, ok1 := view(idPtr, idLen)
	data, ok2 := view(dataPtr, dataLen)
	meta, ok3 := view(metaPtr, metaLen)
	if !ok1 || !ok2 || !ok3 {
		hostSetError("wasmguest: dora_on_event arguments lie outside the dora_alloc buffer")
		return wasmabi.ResultError
	}
	ev := Event{Type: EventType(kind), ID: str(id), RawMetadata: meta}
	if ev.Type == ErrorEvent {
		ev.Error = str(data)
	} else {
		ev.Data = data
	}
	st, err := registered.OnEvent(ev, sender)
	if err != nil {
		setError(err)
		if st == Continue {
			return wasmabi.ResultError
		}
	}
	return int32(st)
}

//go:wasmexport dora_drop
func doraDrop() {
	defer func() { _ = recover() }()
	if d, ok := registered.(Dropper); ok {
		d.Drop()
	}
}

//go:wasmexport dora_save_state
func doraSaveState() (res int32) {
	defer func() {
		if r := recover(); r != nil {
			res = recovered(r)
		}
	}()
	s, ok := registered.(StateSaver)
	if !ok {
		return 0 // nothing to carry over
	}
	state, err := s.SaveState()
	if err != nil {
		setError(err)
		return wasmabi.ResultError
	}
	hostSetState(unsafe.Pointer(unsafe.SliceData(state)), uint32(len(state)))
	return 0
}

//go:wasmexport dora_restore_state
func doraRestoreState(ptr, n uint32) (res int32) {
	defer func() {
		if r := recover(); r != nil {
			res = recovered(r)
		}
	}()
	state, ok := view(ptr, n)
	if !ok {
		hostSetError("wasmguest: dora_restore_state arguments lie outside the dora_alloc buffer")
		return wasmabi.ResultError
	}
	s, ok := registered.(StateSaver)
	if !ok {
		return 0
	}
	if err := s.RestoreState(state); err != nil {
		setError(err)
		return wasmabi.ResultError
	}
	return 0
}

// Log sends a message to the runtime's logger, tagged with the node and
// operator. Printing to os.Stdout or os.Stderr works too; those go to the
// operator's output streams.
func Log(level Level, msg string) { hostLog(int32(level), msg) }
