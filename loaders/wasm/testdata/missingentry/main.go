// Command missingentry is runtimetest.FixtureMissingEntryPoint as a Go
// wasm guest: a valid reactor that exports dora_alloc and dora_init but
// not dora_on_event. It does not use the SDK, which exports everything.
package main

import "unsafe"

var buf []byte

//go:wasmexport dora_alloc
func doraAlloc(size uint32) uint32 {
	buf = make([]byte, size)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

//go:wasmexport dora_init
func doraInit() int32 { return 0 }

func main() {}
