package wasm

import (
	"sync"
	"time"
)

// watchdogTick is how often the watchdog polls running calls: time limits
// and cancellations take effect within this much.
const watchdogTick = 5 * time.Millisecond

// watchdog enforces the event time limits and caller cancellations of one
// loader's instances by polling them, so that a guest call costs no timer
// and no context allocation. It runs only while instances are registered.
type watchdog struct {
	mu   sync.Mutex
	ctxs map[*eventCtx]struct{}
	stop chan struct{}
}

func (w *watchdog) add(c *eventCtx) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctxs == nil {
		w.ctxs = map[*eventCtx]struct{}{}
	}
	w.ctxs[c] = struct{}{}
	if w.stop == nil {
		w.stop = make(chan struct{})
		go w.run(w.stop)
	}
}

func (w *watchdog) remove(c *eventCtx) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.ctxs, c)
	if len(w.ctxs) == 0 && w.stop != nil {
		close(w.stop)
		w.stop = nil
	}
}

func (w *watchdog) run(stop chan struct{}) {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	var batch []*eventCtx
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.mu.Lock()
			batch = batch[:0]
			for c := range w.ctxs {
				batch = append(batch, c)
			}
			w.mu.Unlock()
			for _, c := range batch {
				c.check(now)
			}
		}
	}
}
