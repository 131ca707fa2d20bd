// Command faults is a Go wasm guest that misbehaves on request, for the
// loader's fault tests. The input id says what to do:
//
//	oob     read far outside linear memory (a wasm trap)
//	nil     dereference a nil pointer (a Go panic the SDK recovers)
//	exit    os.Exit(3) (the guest ends itself)
//	loop    spin forever (the event time limit must stop it)
//	grow    allocate and keep the data's decimal value in MiB
//	read    send output "file" with the content of the file named by data
//	write   write "x" into the file named by data
//	print   print the data to stdout and stderr
//	log     log the data at warning level
//	meta    send output "meta" with the input's data and decoded metadata
//	other   echo
package main

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"github.com/dora-go/dora/operators/wasmguest"
)

type faults struct {
	kept [][]byte
	sink byte
}

var nilPtr *faults

func (f *faults) OnEvent(ev wasmguest.Event, out wasmguest.Sender) (wasmguest.Status, error) {
	if ev.Type != wasmguest.Input {
		return wasmguest.Continue, nil
	}
	switch ev.ID {
	case "oob":
		p := (*byte)(unsafe.Add(unsafe.Pointer(nil), 0xfffffff0))
		f.sink = *p
	case "nil":
		f.sink = nilPtr.sink
	case "exit":
		os.Exit(3)
	case "loop":
		for i := 0; ; i++ {
			f.sink += byte(i)
		}
	case "grow":
		n, err := strconv.Atoi(string(ev.Data))
		if err != nil {
			return wasmguest.Continue, err
		}
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		f.kept = append(f.kept, b)
	case "read":
		b, err := os.ReadFile(string(ev.Data))
		if err != nil {
			return wasmguest.Continue, err
		}
		return wasmguest.Continue, out.Send("file", b)
	case "write":
		return wasmguest.Continue, os.WriteFile(string(ev.Data), []byte("x"), 0o644)
	case "print":
		fmt.Fprintf(os.Stdout, "stdout: %s\n", ev.Data)
		fmt.Fprintf(os.Stderr, "stderr: %s\n", ev.Data)
	case "log":
		wasmguest.Log(wasmguest.LevelWarn, string(ev.Data))
	case "meta":
		md, err := ev.Metadata()
		if err != nil {
			return wasmguest.Continue, err
		}
		if md.Timestamp != ev.Timestamp() {
			return wasmguest.Continue, fmt.Errorf("Timestamp() %d != Metadata().Timestamp %d", ev.Timestamp(), md.Timestamp)
		}
		md.Timestamp = 0
		return wasmguest.Continue, out.SendWithMetadata("meta", ev.Data, &md)
	default:
		return wasmguest.Continue, out.Send(ev.ID, ev.Data)
	}
	return wasmguest.Continue, nil
}

func init() { wasmguest.Register(&faults{}) }

func main() {}
