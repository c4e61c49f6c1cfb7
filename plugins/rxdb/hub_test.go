package rxdb

import (
	"errors"
	"testing"
)

func mustSubscribe(t *testing.T, h *hub, user, key string) *subscriber {
	t.Helper()
	s, err := h.subscribe(user, key)
	if err != nil {
		t.Fatalf("subscribe %s: %v", key, err)
	}
	return s
}

func TestHubWakesAndCloses(t *testing.T) {
	t.Parallel()
	h := newHub(10, 10)
	a := mustSubscribe(t, h, "ann", "ann\x00tasks")
	b := mustSubscribe(t, h, "bob", "bob\x00tasks")
	h.wake("ann\x00tasks", 1, 100)
	h.wake("ann\x00tasks", 2, 50) // coalesces with the pending one
	select {
	case <-a.notify:
	default:
		t.Fatal("ann's stream was not woken")
	}
	select {
	case <-a.notify:
		t.Fatal("wake-ups must coalesce")
	case <-b.notify:
		t.Fatal("bob's stream was woken by ann's commit")
	default:
	}
	if got := h.take(a); got != (pending{docs: 3, bytes: 150}) {
		t.Fatalf("pending after two commits: %+v", got)
	}
	if got := h.take(a); got != (pending{}) {
		t.Fatalf("take must start over: %+v", got)
	}
	h.unsubscribe(a)
	h.wake("ann\x00tasks", 1, 1) // no subscriber: nothing happens
	h.close()
	h.close()
	select {
	case <-b.done:
	default:
		t.Fatal("close did not end the open stream")
	}
	late := mustSubscribe(t, h, "ann", "ann\x00tasks")
	select {
	case <-late.done:
	default:
		t.Fatal("a stream opened after close must end at once")
	}
	h.unsubscribe(late)
	h.unsubscribe(b) // after close: nothing to undo
	if n := h.open(); n != 0 {
		t.Fatalf("open after close: %d", n)
	}
}

func TestHubCapsStreams(t *testing.T) {
	t.Parallel()
	h := newHub(2, 3)
	a1 := mustSubscribe(t, h, "ann", "ann\x00tasks")
	mustSubscribe(t, h, "ann", "ann\x00notes") // the cap is per user, over collections
	if _, err := h.subscribe("ann", "ann\x00tasks"); !errors.Is(err, errUserStreams) {
		t.Fatalf("ann's third stream: %v", err)
	}
	mustSubscribe(t, h, "bob", "bob\x00tasks")
	if _, err := h.subscribe("cat", "cat\x00tasks"); !errors.Is(err, errTotalStreams) {
		t.Fatalf("the fourth stream: %v", err)
	}
	h.unsubscribe(a1)
	h.unsubscribe(a1) // twice counts once
	if n := h.open(); n != 2 {
		t.Fatalf("open: %d", n)
	}
	mustSubscribe(t, h, "cat", "cat\x00tasks")
	if _, err := h.subscribe("ann", "ann\x00tasks"); !errors.Is(err, errTotalStreams) {
		t.Fatalf("full again: %v", err)
	}
}

func TestPendingSaturates(t *testing.T) {
	t.Parallel()
	var p pending
	for range 100 {
		p.add(1<<62, 1<<62)
	}
	if p.docs != saturated || p.bytes != saturated {
		t.Fatalf("pending %+v", p)
	}
}
