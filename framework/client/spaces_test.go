package client_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferrysync/ferry/framework/client"
)

// rejections collects what a device's Config.OnRejected is told.
type rejections struct {
	mu  sync.Mutex
	got []client.Rejection
}

func (r *rejections) config(cfg *client.Config) {
	cfg.OnRejected = func(_ context.Context, rej client.Rejection) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, rej)
	}
}

func (r *rejections) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rej := range r.got {
		out = append(out, rej.Status+" "+rej.Change.Model+"/"+rej.Change.UID)
	}
	return out
}

func TestClientSpaces(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ann, bob := e.signUp("Ann"), e.signUp("Bob")
		var bobRefused rejections
		annPhone := e.device(ann)
		// Bob's device keeps its records in SQLite, as an app does.
		bobPhone := e.device(bob, bobRefused.config, func(cfg *client.Config) {
			st, err := client.OpenSQLiteStore(ctx, filepath.Join(t.TempDir(), "bob.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			cfg.Store = st
		})

		list, err := annPhone.CreateSpace(ctx, "Groceries")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := list.Put(ctx, "data.Task", "milk", map[string]any{"title": "Milk"}); err != nil {
			t.Fatal(err)
		}
		annPhone.put("milk", map[string]any{"title": "Ann's own milk note"}) // the personal space is apart
		if err := list.SetMember(ctx, bob.ID, client.RoleWriter); err != nil {
			t.Fatal(err)
		}
		if res := annPhone.sync(); res.Applied != 4 {
			t.Fatalf("ann's push: %+v", res)
		}
		spaces, err := annPhone.Spaces(ctx)
		if err != nil || len(spaces) != 1 || spaces[0] != (client.SpaceInfo{UID: list.UID(), Name: "Groceries", Role: client.RoleAdmin}) {
			t.Fatalf("ann's spaces after the sync: %+v %v", spaces, err)
		}

		bobPhone.sync()
		spaces, err = bobPhone.Spaces(ctx)
		if err != nil || len(spaces) != 1 || spaces[0] != (client.SpaceInfo{UID: list.UID(), Name: "Groceries", Role: client.RoleWriter}) {
			t.Fatalf("bob's spaces: %+v %v", spaces, err)
		}
		bobList := bobPhone.Space(list.UID())
		if r, err := bobList.Get(ctx, "data.Task", "milk"); err != nil || r.Owner != client.SpaceOwner(list.UID()) {
			t.Fatalf("bob's copy of the shared task: %+v %v", r, err)
		}
		if recs, _ := bobPhone.List(ctx, "data.Task"); len(recs) != 0 {
			t.Fatalf("bob's personal tasks hold the shared one: %d", len(recs))
		}
		// Bob edits the shared list; Ann gets it.
		if _, err := bobList.Put(ctx, "data.Task", "eggs", map[string]any{"title": "Eggs"}); err != nil {
			t.Fatal(err)
		}
		bobPhone.sync()
		annPhone.sync()
		if _, err := list.Get(ctx, "data.Task", "eggs"); err != nil {
			t.Fatalf("ann did not get bob's task: %v", err)
		}

		// Bob edits offline while Ann removes him: his change is refused,
		// not lost silently, and the space leaves his device.
		if _, err := bobList.Put(ctx, "data.Task", "bread", map[string]any{"title": "Bread"}); err != nil {
			t.Fatal(err)
		}
		if err := list.RemoveMember(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		annPhone.sync()
		res := bobPhone.sync()
		if !slices.Equal(res.Removed, []string{list.UID()}) || res.Forbidden != 1 {
			t.Fatalf("bob's sync after the removal: %+v", res)
		}
		if got := bobRefused.list(); !slices.Equal(got, []string{"forbidden data.Task/bread"}) {
			t.Fatalf("bob was told of %v", got)
		}
		if recs, err := bobList.List(ctx, ""); err != nil || len(recs) != 0 {
			t.Fatalf("bob still holds %d records of the space: %v", len(recs), err)
		}
		if spaces, _ := bobPhone.Spaces(ctx); len(spaces) != 0 {
			t.Fatalf("bob's spaces after the removal: %+v", spaces)
		}
		if n := bobPhone.pending(); n != 0 {
			t.Fatalf("bob has %d queued changes left", n)
		}
		// Nothing of the space reaches him afterwards.
		if _, err := list.Put(ctx, "data.Task", "later", map[string]any{"title": "Later"}); err != nil {
			t.Fatal(err)
		}
		annPhone.sync()
		if res := bobPhone.sync(); res.Pulled != 0 {
			t.Fatalf("bob pulled %d records after his removal", res.Pulled)
		}
	})
}

// TestClientSpacesSweep: a pull cut short brings part of a space the user
// just joined; the user is removed before the next pull, whose cursor never
// covered the space, so no removed list can name it: the last page's list
// of spaces makes the device drop it anyway.
func TestClientSpacesSweep(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ann, bob := e.signUp("Ann"), e.signUp("Bob")
		annPhone := e.device(ann)
		bobPhone := e.device(bob, func(cfg *client.Config) { cfg.PullLimit = 2 })
		bobPhone.sync() // a cursor of his personal space alone

		list, err := annPhone.CreateSpace(ctx, "Groceries")
		if err != nil {
			t.Fatal(err)
		}
		for _, uid := range []string{"a", "b", "c", "d", "e"} {
			if _, err := list.Put(ctx, "data.Task", uid, map[string]any{"title": uid}); err != nil {
				t.Fatal(err)
			}
		}
		if err := list.SetMember(ctx, bob.ID, client.RoleReader); err != nil {
			t.Fatal(err)
		}
		annPhone.sync()

		// Every pull request after the first page fails.
		pages := 0
		bobPhone.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
			if strings.HasSuffix(req.URL.Path, "/pull") {
				if pages++; pages > 1 {
					return errorResponse(req, http.StatusServiceUnavailable, "unavailable"), nil
				}
			}
			return nil, nil
		})
		if _, err := bobPhone.Sync(ctx); err == nil {
			t.Fatal("the cut pull succeeded")
		}
		if recs, _ := bobPhone.Space(list.UID()).List(ctx, ""); len(recs) == 0 {
			t.Fatal("the first page brought nothing of the space; the test proves nothing")
		}
		bobPhone.tr.setBefore(nil)

		if err := list.RemoveMember(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		annPhone.sync()
		res := bobPhone.sync()
		if len(res.Removed) != 0 {
			t.Fatalf("removed %v: the stored cursor never covered the space", res.Removed)
		}
		if recs, err := bobPhone.Space(list.UID()).List(ctx, ""); err != nil || len(recs) != 0 {
			t.Fatalf("bob still holds %d records of a space he lost: %v", len(recs), err)
		}
	})
}

func TestClientSubscriptions(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ann := e.signUp("Ann")
		laptop := e.device(ann)
		task := func(uid, list string) {
			t.Helper()
			if _, err := laptop.Put(ctx, "data.Task", uid, map[string]any{"title": uid, "list": list}); err != nil {
				t.Fatal(err)
			}
		}
		task("t1", "A")
		task("t2", "B")
		task("t3", "A")
		laptop.sync()
		tasks := func(d *device) []string {
			t.Helper()
			recs, err := d.Store().List(ctx, client.ListParams{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range recs {
				out = append(out, r.Model+"/"+r.UID)
			}
			return out
		}
		// The watch shows list A alone.
		watch := e.device(ann, func(cfg *client.Config) { cfg.Subscriptions = []string{"tasks_of_list(A)"} })
		watch.sync()
		if got := tasks(watch); !slices.Equal(got, []string{"data.Task/t1", "data.Task/t3"}) {
			t.Fatalf("the watch holds %v", got)
		}
		// t1 moves to B (gone from the watch), t2 to A (arrives).
		task("t1", "B")
		task("t2", "A")
		laptop.sync()
		watch.sync()
		if got := tasks(watch); !slices.Equal(got, []string{"data.Task/t2", "data.Task/t3"}) {
			t.Fatalf("after the moves the watch holds %v", got)
		}
		// Another set on the same store: the pull starts over and what the
		// new set does not cover goes.
		other := e.device(ann, func(cfg *client.Config) {
			cfg.Store = watch.Store()
			cfg.Subscriptions = []string{"tasks_of_list(B)"}
		})
		if res := other.sync(); !res.Reset {
			t.Fatalf("a new subscription set did not start the pull over: %+v", res)
		}
		if got := tasks(other); !slices.Equal(got, []string{"data.Task/t1"}) {
			t.Fatalf("with list B the store holds %v", got)
		}
	})
}

// TestClientPullsManySpacesWithABody: the cursor of a user in many spaces
// is too long for a URL, so the client sends its pulls as POST
// /sync/pull; against a server without it (405), it goes back to GET.
func TestClientPullsManySpacesWithABody(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ann := e.signUp("Ann")
		for _, refuseBody := range []bool{false, true} {
			var mu sync.Mutex
			methods := map[string]int{}
			phone := e.device(ann)
			phone.tr.before = func(_ int, req *http.Request) (*http.Response, error) {
				if !strings.HasSuffix(req.URL.Path, "/pull") {
					return nil, nil
				}
				mu.Lock()
				defer mu.Unlock()
				methods[req.Method]++
				if refuseBody && req.Method == http.MethodPost {
					return &http.Response{StatusCode: http.StatusMethodNotAllowed, Header: http.Header{"Content-Type": {"application/json"}}, Request: req,
						Body: io.NopCloser(strings.NewReader(`{"error":{"code":"method_not_allowed","message":"method POST is not allowed here"}}`))}, nil
				}
				return nil, nil
			}
			if !refuseBody {
				for i := range 90 {
					sp, err := phone.CreateSpace(ctx, fmt.Sprintf("list %d", i))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := sp.Put(ctx, "data.Task", "t", map[string]any{"title": "task"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			phone.sync()
			phone.sync() // with the cursor of every space
			spaces, err := phone.Spaces(ctx)
			if err != nil || len(spaces) != 90 {
				t.Fatalf("spaces: %d %v", len(spaces), err)
			}
			mu.Lock()
			got := maps.Clone(methods)
			mu.Unlock()
			if refuseBody && (got["POST"] != 1 || got["GET"] < 2) || !refuseBody && got["POST"] == 0 {
				t.Errorf("refused POST %v: pulls by method %v", refuseBody, got)
			}
		}
	})
}
