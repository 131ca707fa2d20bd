package queue

import "testing"

func TestRingDropsOldestAtLimit(t *testing.T) {
	r := NewRing[int](4)
	for i := 1; i <= 3; i++ {
		if _, dropped := r.Push(i, 3); dropped {
			t.Fatalf("dropped while filling, at %d", i)
		}
	}
	old, dropped := r.Push(4, 3)
	if !dropped || old != 1 {
		t.Fatalf("push over the limit dropped %d (%t), want 1", old, dropped)
	}
	// Pushing with a higher limit uses the spare slot without dropping.
	if _, dropped := r.Push(99, 4); dropped {
		t.Fatal("marker push dropped an element")
	}
	for _, want := range []int{2, 3, 4, 99} {
		if v, ok := r.Pop(); !ok || v != want {
			t.Fatalf("pop = %d %t, want %d", v, ok, want)
		}
	}
	if _, ok := r.Pop(); ok || r.Len() != 0 {
		t.Fatal("ring not empty")
	}
}

func TestRingWrapsAround(t *testing.T) {
	r := NewRing[int](3)
	for i := 0; i < 100; i++ {
		r.Push(i, 3)
	}
	if v, _ := r.Peek(); v != 97 || r.Len() != 3 {
		t.Fatalf("peek %d len %d", v, r.Len())
	}
}
