package natstransport

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/transport"
)

func dialWith(t *testing.T, url string, o Options) *Conn {
	t.Helper()
	o.Name, o.Logger = t.Name(), testLogger(t)
	c, err := Dial(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// slowSink is a subscriber that takes its time with the first message,
// so that an unchecked publisher runs far ahead, and records the most
// messages the publisher had sent beyond what it had handled.
type slowSink struct {
	published *atomic.Int64
	handled   atomic.Int64
	maxAhead  atomic.Int64
	done      chan struct{}
}

func (s *slowSink) Message(_, _ []byte) {
	if s.handled.Load() == 0 {
		time.Sleep(200 * time.Millisecond)
	}
	if ahead := s.published.Load() - s.handled.Load(); ahead > s.maxAhead.Load() {
		s.maxAhead.Store(ahead)
	}
	s.handled.Add(1)
}

func (s *slowSink) Closed()     { close(s.done) }
func (s *slowSink) Lost(uint64) {}

// fastSink handles everything at once.
type fastSink struct{ done chan struct{} }

func (fastSink) Message(_, _ []byte) {}
func (f fastSink) Closed()           { close(f.done) }
func (fastSink) Lost(uint64)         {}

// TestPublisherWaitsForItsSlowestSubscriber: however far ahead an
// unchecked publisher would run, it stays within its window of the
// slowest subscriber's acknowledgements, in messages and in bytes, while
// a fast subscriber of the same stream does not speed it up.
func TestPublisherWaitsForItsSlowestSubscriber(t *testing.T) {
	tests := []struct {
		name            string
		messages, bytes int
		size            int
		wantAhead       int64 // most messages sent beyond those handled
	}{
		{"message window", 8, 1 << 20, 100, 8},
		{"byte window", 64, 1 << 20, 300_000, 3},
		{"messages larger than the window go two at a time", 64, 1 << 20, 3 << 19, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, 0, "")
			stream := transport.Stream{Dataflow: "df", Node: "cam", Output: "image"}
			var published atomic.Int64
			slow := &slowSink{published: &published, done: make(chan struct{})}
			fast := fastSink{done: make(chan struct{})}
			if _, err := dialWith(t, s.URL(), Options{}).Subscribe(stream, slow); err != nil {
				t.Fatal(err)
			}
			if _, err := dialWith(t, s.URL(), Options{}).Subscribe(stream, fast); err != nil {
				t.Fatal(err)
			}
			p := dialWith(t, s.URL(), Options{WindowMessages: tt.messages, WindowBytes: tt.bytes, StallTimeout: time.Hour}).Publisher(stream, 2)
			data := payload(tt.size, 1)
			const count = 40
			for range count {
				if err := p.Publish(nil, data); err != nil {
					t.Fatal(err)
				}
				published.Add(1)
			}
			if err := p.End(); err != nil {
				t.Fatal(err)
			}
			waitDone(t, slow.done)
			waitDone(t, fast.done)
			if got := slow.handled.Load(); got != count {
				t.Fatalf("the slow subscriber handled %d of %d messages", got, count)
			}
			if got := slow.maxAhead.Load(); got > tt.wantAhead {
				t.Errorf("the publisher ran %d messages ahead of the slow subscriber; its window allows %d", got, tt.wantAhead)
			}
		})
	}
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end")
	}
}

// TestPublisherStopsWaitingForGoneSubscribers: a subscription that
// unsubscribes says so, and one whose connection dies without a word is
// given up after the stall timeout, so a publisher never waits forever.
func TestPublisherStopsWaitingForGoneSubscribers(t *testing.T) {
	tests := []struct {
		name  string
		stall time.Duration
		leave func(sub transport.Subscription, conn *Conn)
	}{
		{"unsubscribed", time.Hour, func(sub transport.Subscription, _ *Conn) { sub.Unsubscribe() }},
		{"connection lost", 100 * time.Millisecond, func(_ transport.Subscription, conn *Conn) { conn.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, 0, "")
			stream := transport.Stream{Dataflow: "df", Node: "cam", Output: "image"}
			conn := dialWith(t, s.URL(), Options{})
			rec := newRecorder()
			sub, err := conn.Subscribe(stream, rec)
			if err != nil {
				t.Fatal(err)
			}
			p := dialWith(t, s.URL(), Options{WindowMessages: 4, StallTimeout: tt.stall}).Publisher(stream, 1)
			publish := func(n int) {
				for range n {
					if err := p.Publish(nil, payload(8, 0)); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(4)
			waitMessages(t, rec, 4) // the subscriber is known to the publisher now
			tt.leave(sub, conn)
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				publish(20)
			}()
			select {
			case <-finished:
			case <-time.After(30 * time.Second):
				t.Fatal("the publisher still waits for a subscriber that is gone")
			}
		})
	}
}

func waitMessages(t *testing.T, r *recorder, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		r.mu.Lock()
		got := len(r.msgs)
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.change:
		case <-ctx.Done():
			t.Fatalf("got %d messages, want %d", got, n)
		}
	}
}

// FuzzAcknowledgement feeds a publisher's window whatever arrives on its
// acknowledgement subject: nothing may panic, and no acknowledgement may
// claim more than was sent.
func FuzzAcknowledgement(f *testing.F) {
	f.Add(putAck(nil, kindAck, 7, 3))
	f.Add(putAck(nil, kindBye, 7, 0))
	f.Add(putAck(nil, kindAck, 0, 1))
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newWindow(&Options{WindowMessages: 4, WindowBytes: 1 << 10, StallTimeout: time.Second}, 1, func() {}, testLogger(t))
		w.published(1, 10)
		w.published(2, 10)
		w.ack(b)
		for _, p := range w.peers {
			if p.acked > w.sent {
				t.Fatalf("acknowledged %d of %d sent", p.acked, w.sent)
			}
		}
	})
}

// stuckSink never finishes handling its first message.
type stuckSink struct{ release chan struct{} }

func (s stuckSink) Message(_, _ []byte) { <-s.release }
func (stuckSink) Closed()               {}
func (stuckSink) Lost(uint64)           {}

// TestClosingTheConnectionEndsAWait: a daemon shutting down is not held
// up by a publisher waiting for room.
func TestClosingTheConnectionEndsAWait(t *testing.T) {
	s := startServer(t, 0, "")
	stream := transport.Stream{Dataflow: "df", Node: "cam", Output: "image"}
	stuck := stuckSink{release: make(chan struct{})}
	defer close(stuck.release)
	if _, err := dialWith(t, s.URL(), Options{}).Subscribe(stream, stuck); err != nil {
		t.Fatal(err)
	}
	conn := dialWith(t, s.URL(), Options{WindowMessages: 2, StallTimeout: time.Hour})
	p := conn.Publisher(stream, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for range 3 { // the third waits for room that never comes
			p.Publish(nil, payload(8, 0))
		}
	}()
	select {
	case <-returned:
		t.Fatal("the publisher did not wait for the stuck subscriber")
	case <-time.After(300 * time.Millisecond):
	}
	conn.Close()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish still waits after Close")
	}
}
