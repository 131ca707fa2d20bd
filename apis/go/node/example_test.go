package node_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dora-go/dora/apis/go/node"
)

// A node is a program that dora starts: Init connects it to its daemon.
// Events come until the last one (Stop).
func Example() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	for ev := range n.Events(context.Background()) {
		switch ev.Type {
		case node.Input:
			fmt.Printf("input %s: %d bytes\n", ev.ID, len(ev.Data))
			ev.Release()
		case node.Stop:
			fmt.Println("stopping")
		}
	}
	if err := n.Err(); err != nil {
		log.Fatal(err)
	}
}

// SendOutputRaw hands out the message buffer itself: for large messages it
// is shared memory that receivers map, so the data is written once.
func ExampleNode_SendOutputRaw() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	frame := make([]byte, 640*480*3) // a camera frame
	err = n.SendOutputRaw("image", len(frame), func(buf []byte) {
		copy(buf, frame) // or decode the camera's output straight into buf
	})
	if err != nil {
		log.Fatal(err)
	}
}

// SendOutput sends an Arrow array; the receiver gets the same type back
// from Event.Array, viewing the message in place.
func ExampleNode_SendOutput() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues([]float64{0.1, 0.2, 0.3}, nil)
	arr := b.NewArray()
	defer arr.Release()
	if err := n.SendOutput("ranges", arr, node.WithParameters(map[string]node.Parameter{
		"frame": {Kind: node.ParamInt, Int: 42},
	})); err != nil {
		log.Fatal(err)
	}
}

// RecvInto reuses one Event, so a hot loop does not allocate; it releases
// what the event held before filling it again. A context bounds the wait.
func ExampleNode_RecvInto() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	var ev node.Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := n.RecvInto(ctx, &ev)
		cancel()
		if err == context.DeadlineExceeded {
			fmt.Println("no input for a second")
			continue
		}
		if err != nil {
			break // io.EOF after Stop
		}
		if ev.Type == node.Input && len(ev.Data) >= 8 {
			fmt.Println(binary.LittleEndian.Uint64(ev.Data))
		}
	}
	ev.Release()
}
