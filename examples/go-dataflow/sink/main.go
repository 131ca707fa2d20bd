// sink checks that every message on its `random` input is an Arrow uint64
// array of length one, and that it received all 100 of them.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/dora-go/dora/apis/go/node"
)

func main() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	received := 0
	for ev := range n.Events(context.Background()) {
		switch ev.Type {
		case node.Input:
			arr, err := ev.Array()
			if err != nil {
				log.Fatalf("input %q: %v", ev.ID, err)
			}
			values, ok := arr.(*array.Uint64)
			if !ok || values.Len() != 1 {
				log.Fatalf("input %q: want one uint64, got %s of length %d", ev.ID, arr.DataType(), arr.Len())
			}
			received++
			fmt.Printf("sink received random value %#x\n", values.Value(0))
			ev.Release()
		case node.InputClosed:
			fmt.Printf("input %q closed\n", ev.ID)
		case node.Stop:
			fmt.Println("sink: received stop")
		}
	}
	if err := n.Err(); err != nil {
		log.Fatal(err)
	}
	if received != 100 {
		log.Fatalf("received %d values, want 100", received)
	}
	fmt.Println("sink: all 100 values received and checked")
}
