// node is the benchmark's sender.
package main

import (
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/dora-go/dora/apis/go/node"
)

// Sizes are dora's benchmark sizes, in bytes.
var sizes = []int{0, 8, 64, 512, 2048, 4096, 4 * 4096, 10 * 4096, 100 * 4096, 1000 * 4096}

func main() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	count := 100
	if s := os.Getenv("BENCH_COUNT"); s != "" {
		if count, err = strconv.Atoi(s); err != nil {
			log.Fatalf("BENCH_COUNT: %v", err)
		}
	}
	payload := make([]byte, sizes[len(sizes)-1])
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	send := func(id string, size int) {
		// Like dora's benchmark, the payload is copied into the message
		// buffer: for large messages that buffer is shared memory.
		if err := n.SendOutputRaw(id, size, func(buf []byte) { copy(buf, payload[:size]) }); err != nil {
			log.Fatal(err)
		}
	}
	for _, size := range sizes {
		for i := 0; i < count; i++ {
			send("latency", size)
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, size := range sizes {
		for i := 0; i < count; i++ {
			send("throughput", size)
		}
		send("throughput", 1)
	}
}
