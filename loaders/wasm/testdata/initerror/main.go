// Command initerror is runtimetest.FixtureInitError as a Go wasm guest.
package main

import (
	"errors"

	"github.com/dora-go/dora/operators/wasmguest"
)

type op struct{}

func (op) Init() error { return errors.New("init failed on purpose") }

func (op) OnEvent(wasmguest.Event, wasmguest.Sender) (wasmguest.Status, error) {
	return wasmguest.Continue, nil
}

func init() { wasmguest.Register(op{}) }

func main() {}
