package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferrysync/ferry/framework/client"
)

// TestInterruptedResetStillForgets: the pull from the start after a 410 is
// interrupted. The next sync must still forget the records the server no
// longer has (found by the convergence simulation: the client used to
// clear its cursor when the reset began, so the next sync pulled from the
// start without knowing it was a reset).
func TestInterruptedResetStillForgets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Interrupted")
	a := e.device(u, func(c *client.Config) { c.Retry.MaxAttempts = 1 })
	b := e.device(u)
	ctx := context.Background()
	a.put("keep", note{"keep"})
	a.put("gone", note{"to be deleted and purged"})
	a.sync()
	b.sync()
	if err := b.Delete(ctx, "data.Note", "gone"); err != nil {
		t.Fatal(err)
	}
	b.sync()
	e.purgeTombstones(1)
	// A's first pull gets 410; its pull from the start is cut off.
	var mu sync.Mutex
	pulls := 0
	a.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(req.URL.Path, "/pull") {
			pulls++
			if pulls == 2 {
				return nil, errors.New("connection reset (injected)")
			}
		}
		return nil, nil
	})
	if _, err := a.Sync(ctx); err == nil {
		t.Fatal("the interrupted reset did not fail the sync")
	}
	a.tr.setBefore(nil)
	if res := a.sync(); !res.Reset {
		t.Fatalf("the next sync did not reset: %+v", res)
	}
	if _, err := a.Get(ctx, "data.Note", "gone"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the purged record is still on the device: %v", err)
	}
	e.assertConverged(u, a)
}

// TestFirstPullForgetsPurged: a device pushes, but its first pull fails;
// meanwhile another device deletes the record and the server purges the
// tombstone. The device's first complete pull must drop the record (found
// by the convergence simulation).
func TestFirstPullForgetsPurged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("FirstPull")
	a := e.device(u, func(c *client.Config) { c.Retry.MaxAttempts = 1 })
	b := e.device(u)
	ctx := context.Background()
	a.put("keep", note{"keep"})
	a.put("gone", note{"to be deleted and purged"})
	a.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		if strings.HasSuffix(req.URL.Path, "/pull") {
			return nil, errors.New("connection reset (injected)")
		}
		return nil, nil
	})
	if res, err := a.Sync(ctx); err == nil || res.Applied != 2 {
		t.Fatalf("sync with a failing pull: %+v, %v", res, err)
	}
	a.tr.setBefore(nil)
	b.sync()
	if err := b.Delete(ctx, "data.Note", "gone"); err != nil {
		t.Fatal(err)
	}
	b.sync()
	e.purgeTombstones(1)
	a.sync()
	if _, err := a.Get(ctx, "data.Note", "gone"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the purged record is still on the device: %v", err)
	}
	e.assertConverged(u, a)
}
