package rxdb

import (
	"fmt"
	"testing"
)

func TestHubFansOutAndResyncsLaggards(t *testing.T) {
	t.Parallel()
	h := newHub(3)
	a := h.subscribe("ann\x00tasks")
	b := h.subscribe("bob\x00tasks")
	h.publish("ann\x00tasks", []byte("1"))
	h.publish("ann\x00tasks", []byte("2"))
	if ev, resync := a.take(); resync || fmt.Sprintf("%s", ev) != "[1 2]" {
		t.Fatalf("ann got %s %v", ev, resync)
	}
	if ev, _ := b.take(); len(ev) != 0 {
		t.Fatalf("bob got ann's events: %s", ev)
	}
	for i := 0; i < 5; i++ {
		h.publish("ann\x00tasks", []byte("x"))
	}
	if ev, resync := a.take(); !resync || len(ev) != 0 {
		t.Fatalf("a laggard must get a resync: %s %v", ev, resync)
	}
	h.unsubscribe(a)
	h.publish("ann\x00tasks", []byte("3")) // no subscriber: no panic
	h.close()
	select {
	case <-b.done:
	default:
		t.Fatal("close did not end the open stream")
	}
	if late := h.subscribe("ann\x00tasks"); late.done == nil {
		t.Fatal("no done channel")
	} else {
		select {
		case <-late.done:
		default:
			t.Fatal("a stream opened after close must end at once")
		}
	}
}
