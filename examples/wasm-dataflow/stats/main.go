// Command stats is a WASM operator: for each batch of float64 samples it
// sends [batch, mean, stddev, min, max] of the samples after the first
// (which numbers the batch).
package main

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/dora-go/dora/operators/wasmguest"
)

type stats struct {
	out [5 * 8]byte
}

func (s *stats) OnEvent(ev wasmguest.Event, out wasmguest.Sender) (wasmguest.Status, error) {
	if ev.Type != wasmguest.Input {
		return wasmguest.Continue, nil
	}
	if len(ev.Data) < 16 || len(ev.Data)%8 != 0 {
		return wasmguest.Continue, errors.New("samples must be at least two float64 values")
	}
	at := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(ev.Data[8*i:])) }
	n := len(ev.Data)/8 - 1
	sum, sq, lo, hi := 0.0, 0.0, math.Inf(1), math.Inf(-1)
	for i := 1; i <= n; i++ {
		v := at(i)
		sum += v
		sq += v * v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	mean := sum / float64(n)
	std := math.Sqrt(math.Max(0, sq/float64(n)-mean*mean))
	for i, v := range []float64{at(0), mean, std, lo, hi} {
		binary.LittleEndian.PutUint64(s.out[8*i:], math.Float64bits(v))
	}
	return wasmguest.Continue, out.Send("summary", s.out[:])
}

func init() { wasmguest.Register(&stats{}) }

func main() {}
