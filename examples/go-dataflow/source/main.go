// source sends 100 random uint64 values, one per timer tick, as Arrow
// uint64 arrays of length one.
package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dora-go/dora/apis/go/node"
)

func main() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	b := array.NewUint64Builder(memory.DefaultAllocator)
	defer b.Release()
	sent := 0
	for ev := range n.Events(context.Background()) {
		if ev.Type == node.Stop {
			fmt.Println("source: received stop")
			break
		}
		if ev.Type != node.Input || ev.ID != "tick" {
			ev.Release()
			continue
		}
		ev.Release()
		v := rand.Uint64()
		b.Append(v)
		arr := b.NewArray()
		err := n.SendOutput("random", arr)
		arr.Release()
		if err != nil {
			log.Fatal(err)
		}
		sent++
		fmt.Printf("tick %d, sending %#x\n", sent, v)
		if sent == 100 {
			break
		}
	}
	if err := n.Err(); err != nil {
		log.Fatal(err)
	}
}
