// sink is the benchmark's receiver: it measures latency (receive time minus
// the send timestamp in the metadata) and throughput per message size.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"github.com/dora-go/dora/apis/go/node"
)

type batch struct {
	mode      string
	size      int
	latencies []time.Duration
	firstSent time.Time
	lastRecv  time.Time
}

func (b *batch) msgPerSec() float64 {
	return float64(len(b.latencies)) / b.lastRecv.Sub(b.firstSent).Seconds()
}

func main() {
	n, err := node.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	var done []*batch
	var cur *batch
	var ev node.Event
	for {
		err := n.RecvInto(context.Background(), &ev)
		if err != nil {
			break
		}
		if ev.Type == node.Stop {
			break
		}
		if ev.Type != node.Input {
			continue
		}
		now := time.Now()
		size := len(ev.Data)
		if ev.ID == "throughput" && size == 1 {
			cur = nil // sentinel: the batch ended
			continue
		}
		if cur == nil || cur.mode != ev.ID || cur.size != size {
			cur = &batch{mode: ev.ID, size: size, firstSent: time.Unix(0, int64(ev.Metadata.Timestamp))}
			done = append(done, cur)
		}
		cur.latencies = append(cur.latencies, now.Sub(time.Unix(0, int64(ev.Metadata.Timestamp))))
		cur.lastRecv = now
	}
	ev.Release()
	if err := report(done); err != nil {
		log.Fatal(err)
	}
}

func label(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%dKiB", size/1024)
	}
	return fmt.Sprintf("%dB", size)
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func report(batches []*batch) error {
	var csv *os.File
	if path := os.Getenv("BENCH_CSV"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		csv = f
	}
	fmt.Printf("%-10s %9s %6s %12s %10s %10s %10s %10s %10s %10s\n", "mode", "size", "n", "avg|msg/s", "p50", "p95", "p99", "p99.9", "min", "max")
	for _, b := range batches {
		l := slices.Clone(b.latencies)
		slices.Sort(l)
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		avg := float64(sum) / float64(len(l))
		if b.mode == "throughput" {
			avg = b.msgPerSec()
		}
		fmt.Printf("%-10s %9s %6d %12.0f %10v %10v %10v %10v %10v %10v\n", b.mode, label(b.size), len(l), avg,
			pct(l, .5), pct(l, .95), pct(l, .99), pct(l, .999), l[0], l[len(l)-1])
		if csv != nil {
			fmt.Fprintf(csv, "%s,%d,%s,%d,%.0f,%d,%d,%d,%d,%d,%d\n", b.mode, b.size, label(b.size), len(l), avg,
				pct(l, .5), pct(l, .95), pct(l, .99), pct(l, .999), l[0], l[len(l)-1])
		}
	}
	return nil
}
