// Package queue holds the bounded FIFO that input queues are made of.
package queue

// Ring is a fixed-capacity FIFO. Push drops the oldest element when the
// ring holds limit elements, which is how dora inputs keep the newest
// messages when their receiver is slow. It is not safe for concurrent use.
type Ring[T any] struct {
	buf     []T
	head, n int
}

// NewRing makes a ring that can hold capacity elements.
func NewRing[T any](capacity int) *Ring[T] {
	return &Ring[T]{buf: make([]T, capacity)}
}

// Push appends v. If the ring already holds limit (or all capacity)
// elements, the oldest is removed first and returned with dropped true.
func (r *Ring[T]) Push(v T, limit int) (old T, dropped bool) {
	if r.n >= limit || r.n == len(r.buf) {
		old, dropped = r.Pop()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
	return old, dropped
}

// Peek returns the oldest element without removing it.
func (r *Ring[T]) Peek() (v T, ok bool) {
	if r.n == 0 {
		return v, false
	}
	return r.buf[r.head], true
}

// Pop removes and returns the oldest element.
func (r *Ring[T]) Pop() (v T, ok bool) {
	if r.n == 0 {
		return v, false
	}
	v = r.buf[r.head]
	var zero T
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v, true
}

// Len is the number of elements held.
func (r *Ring[T]) Len() int { return r.n }
