// tally is a sink for the cluster tests: every EVERY-th message it prints
// the index the test node put in the message, so a test can watch
// messages arrive through `dora logs`. On Stop it prints how many it
// received and how many indices were missing between them, which a test
// compares with what the daemons reported as dropped or lost.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"github.com/dora-go/dora/apis/go/node"
)

func main() {
	every, err := strconv.Atoi(os.Args[1])
	if err != nil || every <= 0 {
		fmt.Fprintln(os.Stderr, "usage: tally EVERY")
		os.Exit(2)
	}
	n, err := node.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer n.Close()
	got, missed := 0, uint64(0)
	next := int64(-1) // the index expected next; -1 before the first
	var ev node.Event
	for {
		if err := n.RecvInto(context.Background(), &ev); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		switch ev.Type {
		case node.Input:
			if len(ev.Data) < 8 {
				continue
			}
			i := int64(binary.LittleEndian.Uint64(ev.Data))
			if next >= 0 && i > next {
				missed += uint64(i - next)
			}
			next = i + 1
			if got++; got%every == 0 {
				fmt.Println("tally", i)
			}
		case node.Stop:
			fmt.Println("received", got, "missed", missed)
			return
		}
	}
}
