package client_test

import (
	"context"
	"testing"
)

// TestPushCarriesTheCursor: a push carries the device's cursor, and the
// pull after it does not bring the device's own writes back, but does
// bring another device's.
func TestPushCarriesTheCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("PushCursor")
	a, b := e.device(u), e.device(u)
	a.put("n1", note{"one"})
	a.sync()
	a.put("n2", note{"two"})
	a.put("n3", note{"three"})
	if res := a.sync(); res.Applied != 2 || res.Pulled != 0 {
		t.Fatalf("second sync: %+v; want 2 applied and nothing pulled back", res)
	}
	b.put("from-b", note{"B"})
	b.sync()
	a.put("n4", note{"four"})
	if res := a.sync(); res.Applied != 1 || res.Pulled != 2 || a.title("from-b") != "B" {
		t.Fatalf("sync after B wrote: %+v; want B's note and A's own (the cursor may not skip B's)", res)
	}
	b.sync()
	e.assertConverged(u, a, b)

	// A cursor the server does not understand does not block the push.
	if err := a.store.SetCursor(context.Background(), "junk"); err != nil {
		t.Fatal(err)
	}
	a.put("n5", note{"five"})
	if res := a.sync(); res.Applied != 1 || !res.Reset {
		t.Fatalf("sync with a junk cursor: %+v; want the push applied and a reset", res)
	}
	b.sync()
	e.assertConverged(u, a, b)
}
