// sensor sends 50 batches of 64 noisy float64 samples, one per tick, each
// batch numbered by its first value so check can pair it with its summary.
package main

import (
	"context"
	"encoding/binary"
	"log"
	"math"
	"math/rand/v2"

	"github.com/dora-go/dora/apis/go/node"
)

const batches, perBatch = 50, 64

func main() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	sent := 0
	for ev := range n.Events(context.Background()) {
		if ev.Type == node.Stop {
			break
		}
		if ev.Type != node.Input {
			continue
		}
		ev.Release()
		err := n.SendOutputRaw("samples", perBatch*8, func(buf []byte) {
			binary.LittleEndian.PutUint64(buf, math.Float64bits(float64(sent)))
			for i := 1; i < perBatch; i++ {
				v := 20 + 5*math.Sin(float64(sent+i)/10) + rand.NormFloat64()
				binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
			}
		})
		if err != nil {
			log.Fatal(err)
		}
		if sent++; sent == batches {
			break
		}
	}
}
