package rxdb

import "testing"

func TestHubWakesAndCloses(t *testing.T) {
	t.Parallel()
	h := newHub()
	a := h.subscribe("ann\x00tasks")
	b := h.subscribe("bob\x00tasks")
	h.wake("ann\x00tasks")
	h.wake("ann\x00tasks") // coalesces with the pending one
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
	h.unsubscribe(a)
	h.wake("ann\x00tasks") // no subscriber: nothing happens
	h.close()
	h.close()
	select {
	case <-b.done:
	default:
		t.Fatal("close did not end the open stream")
	}
	select {
	case <-h.subscribe("ann\x00tasks").done:
	default:
		t.Fatal("a stream opened after close must end at once")
	}
}
