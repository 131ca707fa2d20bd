package natstransport

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/testtls"
	"github.com/dora-go/dora/internal/transport"
)

// recorder is a Handler that keeps what it got.
type recorder struct {
	mu     sync.Mutex
	msgs   [][2][]byte
	lost   uint64
	closed bool
	change chan struct{}
}

func newRecorder() *recorder { return &recorder{change: make(chan struct{}, 1)} }

func (r *recorder) Message(meta, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, [2][]byte{bytes.Clone(meta), bytes.Clone(data)})
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Closed() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Lost(n uint64) {
	r.mu.Lock()
	r.lost += n
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.change <- struct{}{}:
	default:
	}
}

// waitClosed waits until the stream ended.
func (r *recorder) waitClosed(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		r.mu.Lock()
		done := r.closed
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.change:
		case <-ctx.Done():
			t.Fatalf("the stream did not end: %v", ctx.Err())
		}
	}
}

func startServer(t *testing.T, maxPayload int, token string) *Server {
	t.Helper()
	s, err := StartServer(ServerOptions{Host: "127.0.0.1", MaxPayload: maxPayload, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func dial(t *testing.T, url, token string) *Conn {
	t.Helper()
	c, err := Dial(url, Options{Name: t.Name(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func payload(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

// TestMessagesOfAnySizeArriveWholeAndInOrder publishes across a server
// whose max payload is far below the largest message, so most messages
// travel in many chunks.
func TestMessagesOfAnySizeArriveWholeAndInOrder(t *testing.T) {
	const maxPayload = 64 << 10
	room := maxPayload - headerSize
	sizes := []int{0, 1, 8, room - 16, room - 15, room, room + 1, 3*room - 16, 1 << 20, 4096000}
	s := startServer(t, maxPayload, "secret")
	pub, sub := dial(t, s.URL(), "secret"), dial(t, s.URL(), "secret")
	stream := transport.Stream{Dataflow: "df", Node: "cam.era", Output: "op/image"}
	rec := newRecorder()
	if _, err := sub.Subscribe(stream, rec); err != nil {
		t.Fatal(err)
	}
	p := pub.Publisher(stream, 1)
	meta := payload(16, 99)
	for i, n := range sizes {
		if err := p.Publish(meta, payload(n, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.End(); err != nil {
		t.Fatal(err)
	}
	rec.waitClosed(t)
	if rec.lost != 0 || len(rec.msgs) != len(sizes) {
		t.Fatalf("got %d messages, lost %d; want %d, 0", len(rec.msgs), rec.lost, len(sizes))
	}
	for i, n := range sizes {
		if !bytes.Equal(rec.msgs[i][0], meta) || !bytes.Equal(rec.msgs[i][1], payload(n, i)) {
			t.Errorf("message %d (%d bytes) arrived damaged (%d bytes)", i, n, len(rec.msgs[i][1]))
		}
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	s := startServer(t, 0, "secret")
	if c, err := Dial(s.URL(), Options{Token: "guess"}); err == nil {
		c.Close()
		t.Fatal("connected with a wrong token")
	}
}

// TestTLSServerRefusesPlainText: with TLS, messages flow between clients
// that trust the server's CA, and a client without TLS cannot connect.
func TestTLSServerRefusesPlainText(t *testing.T) {
	files := testtls.New(t, "127.0.0.1")
	s, err := StartServer(ServerOptions{Host: "127.0.0.1", TLS: files.ServerConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	url := "127.0.0.1:" + strconv.Itoa(s.Port())
	if c, err := Dial(url, Options{}); err == nil {
		c.Close()
		t.Fatal("connected without TLS")
	}
	pub, sub := dialWith(t, url, Options{TLS: files.ClientConfig(t)}), dialWith(t, url, Options{TLS: files.ClientConfig(t)})
	stream := transport.Stream{Dataflow: "df", Node: "cam", Output: "image"}
	rec := newRecorder()
	if _, err := sub.Subscribe(stream, rec); err != nil {
		t.Fatal(err)
	}
	p := pub.Publisher(stream, 1)
	if err := p.Publish(nil, payload(8, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.End(); err != nil {
		t.Fatal(err)
	}
	rec.waitClosed(t)
	if len(rec.msgs) != 1 {
		t.Fatalf("got %d messages over TLS, want 1", len(rec.msgs))
	}
}

// chunks cuts messages as a publisher would, without a server.
func chunks(room int, msgs ...[]byte) [][]byte {
	var out [][]byte
	for i, m := range msgs {
		count := max(1, (len(m)+room-1)/room)
		for c := 0; c < count; c++ {
			h := header{kind: kindData, seq: uint64(i + 1), index: uint32(c), count: uint32(count), dataLen: uint64(len(m))}
			out = append(out, append(h.put(nil), m[c*room:min((c+1)*room, len(m))]...))
		}
	}
	return out
}

func TestReassemblerCountsWhatWasLost(t *testing.T) {
	msgs := [][]byte{payload(250, 1), payload(10, 2), payload(300, 3), payload(5, 4)}
	all := chunks(100, msgs...) // chunks: m1 0-2, m2 3, m3 4-6, m4 7
	tests := []struct {
		name string
		drop []int
		want []int // indexes of msgs that arrive
		lost uint64
	}{
		{"nothing lost", nil, []int{0, 1, 2, 3}, 0},
		{"middle chunk of the first message", []int{1}, []int{1, 2, 3}, 1},
		{"a whole single-chunk message", []int{3}, []int{0, 2, 3}, 1},
		{"first chunk of a message", []int{4}, []int{0, 1, 3}, 1},
		{"last chunk of a message", []int{6}, []int{0, 1, 3}, 1},
		{"two messages in a row", []int{2, 3}, []int{2, 3}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			r := &reassembler{h: rec, log: testLogger(t)}
			for i, c := range all {
				if !contains(tt.drop, i) {
					r.chunk(c)
				}
			}
			var got []int
			for _, m := range rec.msgs {
				for j, want := range msgs {
					if bytes.Equal(m[1], want) {
						got = append(got, j)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || rec.lost != tt.lost {
				t.Errorf("delivered %v, lost %d; want %v, %d", got, rec.lost, tt.want, tt.lost)
			}
		})
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func FuzzReassembler(f *testing.F) {
	for _, c := range chunks(64, payload(200, 1), payload(3, 2)) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &reassembler{h: newRecorder(), log: testLogger(t)}
		r.chunk(b)
		r.chunk(b)
	})
}

// TestRetargetMovesSubscriptions follows a coordinator that restarted
// with its NATS server on another port.
func TestRetargetMovesSubscriptions(t *testing.T) {
	a := startServer(t, 0, "")
	sub := dial(t, a.URL(), "")
	stream := transport.Stream{Dataflow: "df", Node: "n", Output: "o"}
	rec := newRecorder()
	if _, err := sub.Subscribe(stream, rec); err != nil {
		t.Fatal(err)
	}
	b := startServer(t, 0, "")
	if err := sub.Retarget(b.URL()); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, b.URL(), "")
	p := pub.Publisher(stream, 1)
	// The subscription reaches b once sub has reconnected: publish until
	// a message arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if err := p.Publish(nil, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		n := len(rec.msgs)
		rec.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-rec.change:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no message after retargeting")
		}
	}
}
