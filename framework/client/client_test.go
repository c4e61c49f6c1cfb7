package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
)

type note struct {
	Title string `json:"title"`
}

func TestTwoDevicesConverge(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Ada")
		a, b := e.device(u), e.device(u)
		base := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second)

		a.clock.Set(base)
		a.put("n1", note{"one"})
		a.put("n2", note{"two"})
		if res := a.sync(); res.Pushed != 2 || res.Applied != 2 {
			t.Fatalf("first push: %+v", res)
		}
		b.sync()
		if b.title("n1") != "one" || b.title("n2") != "two" {
			t.Fatal("device B did not receive A's notes")
		}
		e.assertConverged(u, a, b)

		// Both devices work offline.
		ctx := context.Background()
		a.clock.Set(base.Add(10 * time.Second))
		a.put("n1", note{"A's edit"})
		if err := a.Delete(ctx, "data.Note", "n2"); err != nil {
			t.Fatal(err)
		}
		a.put("n4", note{"four, from A"})
		b.clock.Set(base.Add(5 * time.Second))
		b.put("n2", note{"two, edited by B before A deleted it"})
		b.clock.Set(base.Add(20 * time.Second))
		b.put("n1", note{"B's later edit"})
		b.put("n3", note{"three, from B"})
		if err := b.Delete(ctx, "data.Note", "n3"); err != nil {
			t.Fatal(err)
		}
		b.put("n5", note{"five, from B"})

		// Sync in turns.
		if res := a.sync(); res.Pushed != 3 || res.Applied != 3 {
			t.Fatalf("A's push: %+v", res)
		}
		res := b.sync()
		if res.Pushed != 4 || res.Applied != 3 || res.Stale != 1 {
			t.Fatalf("B's push: %+v", res)
		}
		a.sync()
		e.assertConverged(u, a, b)

		want := map[string]string{"n1": "B's later edit", "n4": "four, from A", "n5": "five, from B"}
		for uid, title := range want {
			if got := a.title(uid); got != title {
				t.Errorf("%s: title %q, want %q", uid, got, title)
			}
		}
		for _, uid := range []string{"n2", "n3"} {
			rec, err := a.Get(ctx, "data.Note", uid)
			if err != nil || !rec.IsDeleted {
				t.Errorf("%s should be a tombstone: %+v, %v", uid, rec, err)
			}
		}
		live, err := b.List(ctx, "data.Note")
		if err != nil || len(live) != 3 {
			t.Errorf("B lists %d live notes (%v), want 3", len(live), err)
		}

		// A device that starts from nothing gets the same state.
		c := e.device(u)
		c.sync()
		e.assertConverged(u, a, b, c)
	})
}

func TestEditedTenTimesPushedOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Bea")
		d := e.device(u)
		for i := 1; i <= 10; i++ {
			d.put("n1", note{fmt.Sprintf("edit %d", i)})
		}
		if n := d.pending(); n != 1 {
			t.Fatalf("%d queued changes, want 1", n)
		}
		res := d.sync()
		pushes := d.tr.pushBodies()
		if len(pushes) != 1 || len(pushes[0].Changes) != 1 || res.Pushed != 1 {
			t.Fatalf("pushed %d requests (%+v), want one with one change", len(pushes), res)
		}
		if !strings.Contains(string(pushes[0].Changes[0].Data), "edit 10") {
			t.Fatalf("pushed %s, want the latest state", pushes[0].Changes[0].Data)
		}
		rec, err := d.Get(context.Background(), "data.Note", "n1")
		if err != nil || !rec.Synced || rec.Version == 0 || d.title("n1") != "edit 10" {
			t.Fatalf("local record after sync: %+v, %v", rec, err)
		}
		e.assertConverged(u, d)
	})
}

func TestEditDuringInFlightPush(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Cy")
		d := e.device(u, func(c *client.Config) { c.Retry.MaxAttempts = 1 })
		d.put("n1", note{"before"})
		d.put("n2", note{"other"})

		ctx := context.Background()
		var pushes int
		d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
			if !strings.HasSuffix(req.URL.Path, "/push") {
				return nil, nil
			}
			pushes++
			switch pushes {
			case 1:
				// The user edits n1 while its push is on the wire.
				if _, err := d.Put(ctx, "data.Note", "n1", note{"edited in flight"}); err != nil {
					t.Errorf("put in flight: %v", err)
				}
				return nil, nil
			default:
				// The connection drops before the edit is pushed.
				return nil, syscall.ECONNRESET
			}
		})
		_, err := d.Sync(ctx)
		if err == nil {
			t.Fatal("sync should fail when the second push fails")
		}
		rec, err := d.Get(ctx, "data.Note", "n1")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Synced || d.title("n1") != "edited in flight" {
			t.Fatalf("edit made in flight was lost or marked synced: %+v", rec)
		}
		if n := d.pending(); n != 1 {
			t.Fatalf("%d queued changes, want the in-flight edit only", n)
		}
		if other, _ := d.Get(ctx, "data.Note", "n2"); !other.Synced {
			t.Error("n2 was acknowledged but is not synced")
		}

		d.tr.setBefore(nil)
		d.tr.reset()
		res := d.sync()
		bodies := d.tr.pushBodies()
		if res.Pushed != 1 || len(bodies) != 1 || !strings.Contains(string(bodies[0].Changes[0].Data), "edited in flight") {
			t.Fatalf("second sync pushed %+v", bodies)
		}
		e.assertConverged(u, d)
		if d.title("n1") != "edited in flight" {
			t.Fatalf("title %q after sync", d.title("n1"))
		}
	})
}

func TestEditDuringInFlightPushIsPushedInTheSameSync(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Dee")
		d := e.device(u)
		d.put("n1", note{"before"})
		ctx := context.Background()
		var once sync.Once
		d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
			if strings.HasSuffix(req.URL.Path, "/push") {
				once.Do(func() {
					if _, err := d.Put(ctx, "data.Note", "n1", note{"edited in flight"}); err != nil {
						t.Errorf("put in flight: %v", err)
					}
				})
			}
			return nil, nil
		})
		res := d.sync()
		if res.Requeued != 1 || res.Pushed != 2 || len(d.tr.pushBodies()) != 2 {
			t.Fatalf("sync: %+v, %d pushes", res, len(d.tr.pushBodies()))
		}
		e.assertConverged(u, d)
		if d.title("n1") != "edited in flight" {
			t.Fatalf("title %q after sync", d.title("n1"))
		}
	})
}

func TestRejectedAndForbiddenLeaveTheQueue(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u, other := e.signUp("Eve"), e.signUp("Finn")
		theirs := e.device(other)
		theirs.put("finns-note", note{"mine"})
		theirs.sync()

		var mu sync.Mutex
		var got []client.Rejection
		d := e.device(u, func(c *client.Config) {
			c.OnRejected = func(_ context.Context, r client.Rejection) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, r)
			}
		})
		d.put("good", note{"fine"})
		d.put("blank", note{""})
		d.put("extra", map[string]any{"title": "x", "colour": "red"})
		// Finn's uid is Eve's own note (records are keyed by owner, model
		// and uid); Finn's user record is his alone.
		d.put("finns-note", note{"taken over"})
		if _, err := d.Put(context.Background(), "data.User", other.ID, map[string]any{"name": "Eve", "email": "finn@example.com"}); err != nil {
			t.Fatal(err)
		}
		res := d.sync()
		if res.Applied != 2 || res.Rejected != 2 || res.Forbidden != 1 {
			t.Fatalf("sync: %+v", res)
		}
		if n := d.pending(); n != 0 {
			t.Fatalf("%d changes still queued", n)
		}
		if len(got) != 3 {
			t.Fatalf("OnRejected got %d reports, want 3: %+v", len(got), got)
		}
		byUID := map[string]client.Rejection{}
		for _, r := range got {
			byUID[r.Change.UID] = r
		}
		for _, uid := range []string{"blank", "extra"} {
			r := byUID[uid]
			if r.Status != client.StatusRejected || r.Code != "invalid" || len(r.Errors) == 0 || !strings.HasPrefix(r.Errors[0].Path, "/data") {
				t.Errorf("%s: %+v", uid, r)
			}
		}
		if r := byUID[other.ID]; r.Status != client.StatusForbidden || r.Change.Model != "data.User" {
			t.Errorf("finn's user record: %+v", r)
		}
		if d.title("finns-note") != "taken over" {
			t.Errorf("eve's own finns-note: %q", d.title("finns-note"))
		}
		// Nothing about the other user's records leaked, and a second
		// sync pushes nothing.
		d.tr.reset()
		d.sync()
		if n := len(d.tr.pushBodies()); n != 0 {
			t.Errorf("second sync pushed %d times", n)
		}
		if theirs.sync(); theirs.title("finns-note") != "mine" {
			t.Error("the other user's note changed")
		}
	})
}

func TestRetriesNetworkErrorsAnd5xx(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Gus")
		d := e.device(u, func(c *client.Config) {
			c.Retry = client.Retry{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}
		})
		d.put("n1", note{"retried"})
		var failed int
		d.tr.setBefore(func(n int, req *http.Request) (*http.Response, error) {
			// The first push fails twice with a network error, then
			// once with 503; the first pull once with 502.
			switch n {
			case 1, 2:
				failed++
				return nil, syscall.ECONNREFUSED
			case 3:
				failed++
				return errorResponse(req, http.StatusServiceUnavailable, "internal"), nil
			case 5:
				failed++
				return errorResponse(req, http.StatusBadGateway, "internal"), nil
			}
			return nil, nil
		})
		res := d.sync()
		if failed != 4 || res.Applied != 1 {
			t.Fatalf("failed %d times, result %+v", failed, res)
		}
		e.assertConverged(u, d)
	})
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Hal")
	d := e.device(u, func(c *client.Config) {
		c.Retry = client.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	})
	d.put("n1", note{"never arrives"})
	d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		return errorResponse(req, http.StatusServiceUnavailable, "internal"), nil
	})
	_, err := d.Sync(context.Background())
	var pe *client.Error
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusServiceUnavailable || pe.Code != "internal" || pe.Message == "" {
		t.Fatalf("err = %v, want a 503 *client.Error", err)
	}
	if d.tr.calls != 3 {
		t.Fatalf("%d tries, want 3", d.tr.calls)
	}
	if d.pending() != 1 {
		t.Fatal("the change left the queue")
	}

	// A cancelled context ends the waiting at once.
	d2 := e.device(u, func(c *client.Config) {
		c.Retry = client.Retry{MaxAttempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}
	})
	d2.put("n2", note{"x"})
	d2.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		return nil, syscall.ECONNRESET
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d2.Sync(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNRESET) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Ida")
		u.Token = "not-a-token"
		d := e.device(u)
		d.put("n1", note{"kept"})
		_, err := d.Sync(context.Background())
		if !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("err = %v, want ErrUnauthenticated", err)
		}
		var pe *client.Error
		if !errors.As(err, &pe) || pe.StatusCode != http.StatusUnauthorized || pe.Code != "unauthenticated" || pe.Message == "" {
			t.Fatalf("err = %#v", pe)
		}
		if d.tr.calls != 1 {
			t.Errorf("401 was retried: %d calls", d.tr.calls)
		}
		if d.pending() != 1 {
			t.Error("the change left the queue")
		}
	})
}

func TestResetRequired(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Jo")
		a, b := e.device(u), e.device(u)
		a.put("n1", note{"one"})
		a.put("gone", note{"to be purged"})
		a.sync()
		b.sync()
		ctx := context.Background()
		if err := b.Delete(ctx, "data.Note", "gone"); err != nil {
			t.Fatal(err)
		}
		b.put("n1", note{"B's edit"})
		b.sync()
		// The server purges the tombstone: A's cursor is now older than
		// the purge horizon.
		e.purgeTombstones(1)
		// A edits n1 while its pull is in flight: the reset must keep it.
		var once sync.Once
		a.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
			if strings.HasSuffix(req.URL.Path, "/pull") {
				once.Do(func() {
					if _, err := a.Put(ctx, "data.Note", "n1", note{"A's pending edit"}); err != nil {
						t.Errorf("put: %v", err)
					}
				})
			}
			return nil, nil
		})
		res := a.sync()
		if !res.Reset {
			t.Fatalf("no reset: %+v", res)
		}
		if _, err := a.Get(ctx, "data.Note", "gone"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("the purged record is still on the device: %v", err)
		}
		if a.title("n1") != "A's pending edit" || a.pending() != 1 {
			t.Fatalf("the pending edit was lost: %q, %d queued", a.title("n1"), a.pending())
		}
		cur, err := a.store.Cursor(ctx)
		if err != nil || cur == "" {
			t.Fatalf("cursor %q, %v", cur, err)
		}
		a.tr.setBefore(nil)
		a.sync()
		b.sync()
		e.assertConverged(u, a)
		// B saw the tombstone before the purge and keeps it; the rest
		// matches.
		if b.title("n1") != "A's pending edit" {
			t.Errorf("B has %q", b.title("n1"))
		}
		if rec, err := b.Get(ctx, "data.Note", "gone"); err != nil || !rec.IsDeleted {
			t.Errorf("B's tombstone: %+v, %v", rec, err)
		}
	})
}

func TestPullPagesAndCursor(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Kim")
		a := e.device(u)
		for i := range 7 {
			a.put(fmt.Sprintf("n%d", i), note{fmt.Sprintf("note %d", i)})
		}
		a.sync()

		b := e.device(u, func(c *client.Config) {
			c.PullLimit = 2
			c.Retry.MaxAttempts = 1
		})
		var pulls int
		b.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
			if strings.HasSuffix(req.URL.Path, "/pull") {
				if pulls++; pulls == 3 {
					return nil, syscall.ECONNRESET
				}
			}
			return nil, nil
		})
		if _, err := b.Sync(context.Background()); err == nil {
			t.Fatal("sync should fail on the third page")
		}
		if cur, _ := b.store.Cursor(context.Background()); cur != "" {
			t.Fatalf("cursor %q stored before the last page", cur)
		}
		b.tr.setBefore(nil)
		res := b.sync()
		if res.Pulled != 8 || b.tr.pulls < 4 {
			t.Fatalf("pulled %d records in %d pages", res.Pulled, b.tr.pulls)
		}
		e.assertConverged(u, a, b)

		// Nothing new: one page, nothing pulled.
		b.tr.reset()
		if res := b.sync(); res.Pulled != 0 || b.tr.pulls != 1 {
			t.Fatalf("second sync pulled %d in %d pages", res.Pulled, b.tr.pulls)
		}
	})
}

func TestBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Lou")
	d := e.device(u, func(c *client.Config) { c.MaxBatch = 3 })
	for i := range 7 {
		d.put(fmt.Sprintf("n%d", i), note{"x"})
	}
	res := d.sync()
	var sizes []int
	for _, p := range d.tr.pushBodies() {
		sizes = append(sizes, len(p.Changes))
	}
	if fmt.Sprint(sizes) != "[3 3 1]" || res.Applied != 7 {
		t.Fatalf("batches %v, result %+v", sizes, res)
	}
	e.assertConverged(u, d)

	for _, tc := range []struct{ in, want int }{{0, 500}, {1, 1}, {1000, 1000}, {5000, 1000}} {
		c, err := client.New(client.Config{BaseURL: e.url, Token: "t", Owner: "o", MaxBatch: tc.in})
		if err != nil || c.MaxBatch() != tc.want {
			t.Errorf("MaxBatch %d: got %d, %v; want %d", tc.in, c.MaxBatch(), err, tc.want)
		}
	}
}

func TestConcurrentSyncs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Max")
		a, b := e.device(u), e.device(u)
		ctx := context.Background()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := a
				if g%2 == 1 {
					d = b
				}
				for i := range 5 {
					if _, err := d.Put(ctx, "data.Note", fmt.Sprintf("g%d-%d", g, i%3), note{fmt.Sprintf("g%d edit %d", g, i)}); err != nil {
						t.Errorf("put: %v", err)
					}
					if _, err := d.Sync(ctx); err != nil {
						t.Errorf("sync: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		a.sync()
		b.sync()
		a.sync()
		e.assertConverged(u, a, b)
	})
}

func TestErrorShapeDecoded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Ned")
	d := e.device(u, func(c *client.Config) { c.Mount = "/nowhere" })
	_, err := d.Sync(context.Background())
	var pe *client.Error
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusNotFound || pe.Code != "not_found" || pe.Message == "" || pe.Path != "/pull" {
		t.Fatalf("err = %v", err)
	}
}

func TestLocalValidation(t *testing.T) {
	t.Parallel()
	d := (&env{t: t, url: "http://127.0.0.1:1"}).device(account{ID: "me", Token: "t"})
	ctx := context.Background()
	for _, tc := range []struct {
		uid  string
		data any
	}{
		{"", note{"x"}},
		{"has space", note{"x"}},
		{strings.Repeat("a", 65), note{"x"}},
		{"ok", []string{"not", "an", "object"}},
		{"ok", []byte("null")},
	} {
		if _, err := d.Put(ctx, "data.Note", tc.uid, tc.data); err == nil {
			t.Errorf("Put(%q, %v) should fail", tc.uid, tc.data)
		}
	}
	if err := d.Delete(ctx, "data.Note", "missing"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Delete of a missing record: %v", err)
	}
	// modify_at only grows, even when the clock goes back.
	d.clock.Set(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r1, _ := d.Put(ctx, "data.Note", "n", note{"1"})
	d.clock.Set(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	r2, _ := d.Put(ctx, "data.Note", "n", note{"2"})
	if !r2.ModifyAt.After(r1.ModifyAt) || r2.ModifyAt.Location() != time.UTC {
		t.Errorf("modify_at went from %v to %v", r1.ModifyAt, r2.ModifyAt)
	}
	for _, cfg := range []client.Config{
		{Token: "t", Owner: "o"},
		{BaseURL: "ftp://x", Token: "t", Owner: "o"},
		{BaseURL: "http://x", Token: "t"},
		{BaseURL: "http://x", Owner: "o"},
		{BaseURL: "http://x", Token: "t", Owner: "o", MaxBatch: -1},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) should fail", cfg)
		}
	}
}

func TestOwnerMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Oz")
	u.ID = "someone-else"
	d := e.device(u)
	d.put("n1", note{"x"})
	_, err := d.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Config.Owner") {
		t.Fatalf("err = %v, want a hint about Config.Owner", err)
	}
	if d.pending() != 1 {
		t.Fatal("the change left the queue")
	}
}

func TestTooLargeSplitsTheBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Pia")
	var rejected []client.Rejection
	d := e.device(u, func(c *client.Config) {
		c.OnRejected = func(_ context.Context, r client.Rejection) { rejected = append(rejected, r) }
	})
	for i := range 5 {
		d.put(fmt.Sprintf("n%d", i), note{"x"})
	}
	d.put("huge", note{strings.Repeat("h", 150)})
	// A proxy in front of the server refuses bodies with more than two
	// changes, and any body with the huge note.
	d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(req.URL.Path, "/push") {
			return nil, nil
		}
		raw, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		if raw, err = plainRequest(req, raw); err != nil {
			return nil, err
		}
		var pb pushBody
		if err := json.Unmarshal(raw, &pb); err != nil {
			return nil, err
		}
		if len(pb.Changes) > 2 || bytes.Contains(raw, []byte("hhhh")) {
			return errorResponse(req, http.StatusRequestEntityTooLarge, "too_large"), nil
		}
		return nil, nil
	})
	res := d.sync()
	if res.Applied != 5 || res.Rejected != 1 || len(rejected) != 1 || rejected[0].Change.UID != "huge" || rejected[0].Code != client.CodeTooLarge {
		t.Fatalf("result %+v, rejected %+v", res, rejected)
	}
	for _, p := range d.tr.pushBodies() {
		if len(p.Changes) > 2 {
			t.Fatalf("a push with %d changes got through", len(p.Changes))
		}
	}
	if d.pending() != 0 {
		t.Fatal("changes left in the queue")
	}
}
