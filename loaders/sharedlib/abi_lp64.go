//go:build amd64 || arm64

package sharedlib

import "unsafe"

// Sizes of abi/c/operator_types.h on LP64 platforms; a mismatch fails the
// build.
const (
	sizeVec         = 24
	sizeResult      = 24
	sizeInitResult  = 32
	sizeOnEventRes  = 32
	sizeMetadata    = 24
	sizeInput       = 72
	sizeRawEvent    = 64
	sizeOutput      = 72
	sizeClosure     = 32
	sizeSendOutput  = 32
	sizeScratch     = sizeRawEvent + sizeInput + sizeSendOutput + sizeOnEventRes
	offStatus       = 24
	offRawEvStop    = 32
	offRawEvError   = 40
	offOutputData   = 24
	offOutputMeta   = 48
	offClosureCall  = 8
	offScratchInput = sizeRawEvent
)

// Compile-time checks: each line fails to compile (negative array length
// or constant overflow) when the Go layout drifts from the C one.
var (
	_ [unsafe.Sizeof(cVec{}) - sizeVec]byte
	_ [sizeVec - unsafe.Sizeof(cVec{})]byte
	_ [unsafe.Sizeof(cResult{}) - sizeResult]byte
	_ [sizeResult - unsafe.Sizeof(cResult{})]byte
	_ [unsafe.Sizeof(cInitResult{}) - sizeInitResult]byte
	_ [sizeInitResult - unsafe.Sizeof(cInitResult{})]byte
	_ [unsafe.Sizeof(cOnEventResult{}) - sizeOnEventRes]byte
	_ [sizeOnEventRes - unsafe.Sizeof(cOnEventResult{})]byte
	_ [unsafe.Sizeof(cMetadata{}) - sizeMetadata]byte
	_ [sizeMetadata - unsafe.Sizeof(cMetadata{})]byte
	_ [unsafe.Sizeof(cInput{}) - sizeInput]byte
	_ [sizeInput - unsafe.Sizeof(cInput{})]byte
	_ [unsafe.Sizeof(cRawEvent{}) - sizeRawEvent]byte
	_ [sizeRawEvent - unsafe.Sizeof(cRawEvent{})]byte
	_ [unsafe.Sizeof(cOutput{}) - sizeOutput]byte
	_ [sizeOutput - unsafe.Sizeof(cOutput{})]byte
	_ [unsafe.Sizeof(cClosure{}) - sizeClosure]byte
	_ [sizeClosure - unsafe.Sizeof(cClosure{})]byte
	_ [unsafe.Sizeof(cSendOutput{}) - sizeSendOutput]byte
	_ [sizeSendOutput - unsafe.Sizeof(cSendOutput{})]byte
	_ [unsafe.Sizeof(cScratch{}) - sizeScratch]byte
	_ [sizeScratch - unsafe.Sizeof(cScratch{})]byte
	_ [unsafe.Offsetof(cOnEventResult{}.status) - offStatus]byte
	_ [offStatus - unsafe.Offsetof(cOnEventResult{}.status)]byte
	_ [unsafe.Offsetof(cRawEvent{}.stop) - offRawEvStop]byte
	_ [offRawEvStop - unsafe.Offsetof(cRawEvent{}.stop)]byte
	_ [unsafe.Offsetof(cRawEvent{}.err) - offRawEvError]byte
	_ [offRawEvError - unsafe.Offsetof(cRawEvent{}.err)]byte
	_ [unsafe.Offsetof(cOutput{}.data) - offOutputData]byte
	_ [offOutputData - unsafe.Offsetof(cOutput{}.data)]byte
	_ [unsafe.Offsetof(cOutput{}.meta) - offOutputMeta]byte
	_ [offOutputMeta - unsafe.Offsetof(cOutput{}.meta)]byte
	_ [unsafe.Offsetof(cClosure{}.call) - offClosureCall]byte
	_ [offClosureCall - unsafe.Offsetof(cClosure{}.call)]byte
	_ [unsafe.Offsetof(cScratch{}.in) - offScratchInput]byte
	_ [offScratchInput - unsafe.Offsetof(cScratch{}.in)]byte
)
