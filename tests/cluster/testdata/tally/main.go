// tally is a sink for the cluster tests: every EVERY-th message it prints
// the index the test node put in the message, so a test can watch
// messages arrive through `dora logs`.
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
	got := 0
	var ev node.Event
	for {
		if err := n.RecvInto(context.Background(), &ev); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		switch ev.Type {
		case node.Input:
			if got++; got%every == 0 && len(ev.Data) >= 8 {
				fmt.Println("tally", binary.LittleEndian.Uint64(ev.Data))
			}
		case node.Stop:
			fmt.Println("received", got)
			return
		}
	}
}
