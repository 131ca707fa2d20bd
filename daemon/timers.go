package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/dora-go/dora/abi/wire"
)

// startTimers drives every dora/timer input; the returned function stops
// them and waits until no tick is in flight.
func (inst *instance) startTimers(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for period, queues := range inst.timers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(period)
			defer t.Stop()
			var e wire.Encoder
			for {
				select {
				case now := <-t.C:
					e.Reset()
					e.Begin(0)
					e.PutMetadata(&wire.Metadata{Timestamp: uint64(now.UnixNano())})
					m := newMessage(e.B[wire.HeaderSize:], nil, len(queues))
					for _, q := range queues {
						q.node.push(q, m)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
