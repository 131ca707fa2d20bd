// Command echo is runtimetest.FixtureEcho as a Go wasm guest. It also
// carries its count across a hot reload (wasmguest.StateSaver).
package main

import (
	"errors"
	"runtime"
	"strconv"

	"github.com/dora-go/dora/operators/wasmguest"
)

type echo struct {
	inputs int
	num    []byte // reused by "count": no allocation per event
}

func (e *echo) OnEvent(ev wasmguest.Event, out wasmguest.Sender) (wasmguest.Status, error) {
	if ev.Type != wasmguest.Input {
		return wasmguest.Continue, nil
	}
	e.inputs++
	switch ev.ID {
	case "fail":
		return wasmguest.Continue, errors.New("requested failure")
	case "stop":
		return wasmguest.Stop, nil
	case "stop_all":
		return wasmguest.StopAll, nil
	case "count":
		e.num = strconv.AppendInt(e.num[:0], int64(e.inputs), 10)
		return wasmguest.Continue, out.Send("count", e.num)
	case "noop":
		return wasmguest.Continue, nil
	case "mallocs":
		// Not part of FixtureEcho: the guest's heap allocation count,
		// for the test that the SDK allocates nothing per event.
		runtime.ReadMemStats(&memStats)
		e.num = strconv.AppendUint(e.num[:0], memStats.Mallocs, 10)
		return wasmguest.Continue, out.Send("mallocs", e.num)
	}
	return wasmguest.Continue, out.Send(ev.ID, ev.Data)
}

func (e *echo) SaveState() ([]byte, error) { return strconv.AppendInt(nil, int64(e.inputs), 10), nil }

func (e *echo) RestoreState(b []byte) error {
	n, err := strconv.Atoi(string(b))
	e.inputs = n
	return err
}

var memStats runtime.MemStats

func init() { wasmguest.Register(&echo{}) }

func main() {}
