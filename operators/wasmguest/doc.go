// Package wasmguest is the Go SDK for dora operators compiled to
// WebAssembly and run, sandboxed, by the runtime's wasm loader
// (loaders/wasm). It implements the guest side of the ABI in
// abi/wasm/ABI.md, so an operator is a few lines of Go:
//
//	package main
//
//	import "github.com/dora-go/dora/operators/wasmguest"
//
//	type op struct{ n int }
//
//	func (o *op) OnEvent(ev wasmguest.Event, out wasmguest.Sender) (wasmguest.Status, error) {
//		if ev.Type == wasmguest.Input {
//			o.n++
//			return wasmguest.Continue, out.Send("echo", ev.Data)
//		}
//		return wasmguest.Continue, nil
//	}
//
//	func init() { wasmguest.Register(&op{}) }
//
//	func main() {} // never called
//
// built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o op.wasm .
//
// The -buildmode=c-shared flag is required: it makes a WASI reactor whose
// _initialize export runs the package init functions (so Register must be
// called from init, not main) and keeps the instance alive between calls.
//
// Event.ID, Event.Data and Event.Error point into a buffer the host
// reuses: they are valid during OnEvent only; copy what you keep. The SDK
// allocates nothing per event: it reports errors and recovered panics
// through the ABI's set_error import (a panic is reported as such and the
// operator keeps running).
//
// The types in this package compile on every platform, so an operator's
// logic can be unit-tested natively by calling its OnEvent with a fake
// Sender; only the wasm glue (the //go:wasmexport and //go:wasmimport
// functions) is limited to GOOS=wasip1.
package wasmguest
