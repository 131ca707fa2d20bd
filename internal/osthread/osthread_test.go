package osthread

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestEveryCallRunsOnTheSameThread(t *testing.T) {
	th := Start()
	defer th.Stop()
	var first int
	th.Run(func() { first = unix.Gettid() })
	for range 100 {
		var tid int
		th.Run(func() { tid = unix.Gettid() })
		if tid != first {
			t.Fatalf("call ran on thread %d, the first on %d", tid, first)
		}
	}
	if first == unix.Gettid() {
		t.Error("the calls ran on the caller's thread")
	}
}
