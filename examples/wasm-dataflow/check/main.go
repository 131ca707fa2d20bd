// check recomputes every summary from its batch of samples and fails on
// any difference or missing batch.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"math"

	"github.com/dora-go/dora/apis/go/node"
)

func floats(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

func main() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	batches := map[float64][]float64{}
	checked := 0
	for ev := range n.Events(context.Background()) {
		if ev.Type != node.Input {
			continue
		}
		v := floats(ev.Data)
		ev.Release()
		switch ev.ID {
		case "samples":
			batches[v[0]] = v[1:]
		case "summary":
			samples, ok := batches[v[0]]
			if !ok {
				log.Fatalf("summary of batch %v arrived before its samples", v[0])
			}
			var sum, sq float64
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, s := range samples {
				sum += s
				sq += s * s
				lo, hi = math.Min(lo, s), math.Max(hi, s)
			}
			mean := sum / float64(len(samples))
			std := math.Sqrt(sq/float64(len(samples)) - mean*mean)
			for i, want := range []float64{mean, std, lo, hi} {
				if math.Abs(v[i+1]-want) > 1e-9*math.Max(1, math.Abs(want)) {
					log.Fatalf("batch %v: value %d is %v, want %v", v[0], i, v[i+1], want)
				}
			}
			checked++
			fmt.Printf("batch %2.0f: mean %.3f stddev %.3f min %.3f max %.3f ✓\n", v[0], mean, std, lo, hi)
		}
	}
	if err := n.Err(); err != nil {
		log.Fatal(err)
	}
	if checked != 50 {
		log.Fatalf("checked %d summaries, want 50", checked)
	}
	fmt.Println("check: all 50 summaries match")
}
