package runtime

import (
	"context"
	"os"
	"time"
)

// pollInterval is how often operator files are checked for changes.
// Polling needs no extra dependency and no inotify limits, and half a
// second is quick enough for an edit-build-reload loop.
const pollInterval = 500 * time.Millisecond

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	return fileStamp{st.ModTime(), st.Size()}, true
}

// watch asks an operator to reload once its file changed and then stayed
// the same for one poll, so a half-written build output is not loaded.
func (rt *nodeRuntime) watch(ctx context.Context) {
	last := make(map[*hosted]fileStamp)
	pending := make(map[*hosted]fileStamp)
	for _, h := range rt.order {
		if h.op != nil {
			last[h], _ = stamp(h.opSpec.Path)
		}
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for h, seen := range last {
			now, ok := stamp(h.opSpec.Path)
			switch {
			case !ok || now == seen:
				delete(pending, h)
			case pending[h] == now:
				delete(pending, h)
				last[h] = now
				h.queue.requestReload()
			default:
				pending[h] = now
			}
		}
	}
}
