// Command node is the dora C node API: built with -buildmode=c-archive (and
// c-shared) into bin/libdora_node_api_c.a, it exports the functions that
// abi/c/node_api.h declares, on top of the Go node API.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include "../../../abi/c/node_api.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/cgo"
	"unsafe"

	"github.com/dora-go/dora/apis/go/node"
)

func main() {}

// event is what a C event handle points to. C never holds Go pointers:
// handles are cgo.Handle values, and the bytes C reads are in C memory
// (inline payloads, ids) or in shared memory mapped by the node (large
// payloads, read in place).
type event struct {
	ev   *node.Event
	id   *C.char
	data *C.char // C copy of an inline payload; nil for shared memory
}

//export init_dora_context_from_env
func init_dora_context_from_env() unsafe.Pointer {
	n, err := node.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dora:", err)
		return nil
	}
	return handlePointer(cgo.NewHandle(n))
}

//export free_dora_context
func free_dora_context(ctx unsafe.Pointer) {
	if ctx == nil {
		return
	}
	pointerHandle(ctx).Value().(*node.Node).Close()
	freeHandle(ctx)
}

//export dora_next_event
func dora_next_event(ctx unsafe.Pointer) unsafe.Pointer {
	if ctx == nil {
		return nil
	}
	n := pointerHandle(ctx).Value().(*node.Node)
	ev, err := n.Recv(context.Background())
	if err != nil {
		if !errors.Is(err, io.EOF) {
			fmt.Fprintln(os.Stderr, "dora:", err)
		}
		return nil
	}
	e := &event{ev: ev}
	if ev.ID != "" {
		e.id = C.CString(ev.ID)
	}
	if ev.Type == node.Input && len(ev.Data) > 0 && !ev.InSharedMemory() {
		e.data = (*C.char)(C.CBytes(ev.Data))
	}
	return handlePointer(cgo.NewHandle(e))
}

//export free_dora_event
func free_dora_event(p unsafe.Pointer) {
	if p == nil {
		return
	}
	e := pointerHandle(p).Value().(*event)
	e.ev.Release()
	C.free(unsafe.Pointer(e.id))
	C.free(unsafe.Pointer(e.data))
	freeHandle(p)
}

//export read_dora_event_type
func read_dora_event_type(p unsafe.Pointer) C.enum_DoraEventType {
	if p == nil {
		return C.DoraEventType_Unknown
	}
	switch pointerHandle(p).Value().(*event).ev.Type {
	case node.Stop:
		return C.DoraEventType_Stop
	case node.Input:
		return C.DoraEventType_Input
	case node.InputClosed:
		return C.DoraEventType_InputClosed
	case node.Error:
		return C.DoraEventType_Error
	}
	return C.DoraEventType_Unknown
}

//export read_dora_input_id
func read_dora_input_id(p unsafe.Pointer, outPtr **C.char, outLen *C.size_t) {
	*outPtr, *outLen = nil, 0
	if p == nil {
		return
	}
	e := pointerHandle(p).Value().(*event)
	*outPtr, *outLen = e.id, C.size_t(len(e.ev.ID))
}

//export read_dora_input_data
func read_dora_input_data(p unsafe.Pointer, outPtr **C.char, outLen *C.size_t) {
	*outPtr, *outLen = nil, 0
	if p == nil {
		return
	}
	e := pointerHandle(p).Value().(*event)
	switch {
	case len(e.ev.Data) == 0:
	case e.data != nil:
		*outPtr = e.data
	default:
		*outPtr = (*C.char)(unsafe.Pointer(unsafe.SliceData(e.ev.Data)))
	}
	*outLen = C.size_t(len(e.ev.Data))
}

//export read_dora_input_timestamp
func read_dora_input_timestamp(p unsafe.Pointer) C.ulonglong {
	if p == nil {
		return 0
	}
	return C.ulonglong(pointerHandle(p).Value().(*event).ev.Metadata.Timestamp)
}

//export dora_send_output
func dora_send_output(ctx unsafe.Pointer, idPtr *C.char, idLen C.size_t, dataPtr *C.char, dataLen C.size_t) C.int {
	if ctx == nil {
		fmt.Fprintln(os.Stderr, "dora: dora_send_output: NULL context")
		return -1
	}
	n := pointerHandle(ctx).Value().(*node.Node)
	id := C.GoStringN(idPtr, C.int(idLen))
	var data []byte
	if dataLen > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(dataPtr)), int(dataLen))
	}
	if err := n.SendOutputBytes(id, data); err != nil {
		fmt.Fprintln(os.Stderr, "dora:", err)
		return -1
	}
	return 0
}

// handlePointer stores a handle in a cell of C memory, which is the opaque
// pointer C holds; freeHandle releases both.
func handlePointer(h cgo.Handle) unsafe.Pointer {
	p := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(p) = C.uintptr_t(h)
	return p
}

func pointerHandle(p unsafe.Pointer) cgo.Handle { return cgo.Handle(*(*C.uintptr_t)(p)) }

func freeHandle(p unsafe.Pointer) {
	pointerHandle(p).Delete()
	C.free(p)
}
