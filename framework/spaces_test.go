package framework_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/uptrace/bun"
)

// spaceServer is an App with spaces on, served over HTTP; users
// authenticate as "Bearer user:<id>".
type spaceServer struct {
	app  *framework.App
	base string
	mu   sync.Mutex
	at   time.Time // the next change's modify_at, one microsecond apart
	// later moves the server's clock forward (tombstones age for purges).
	later atomic.Int64
}

func newSpaceServer(t *testing.T, db *bun.DB, cfg framework.Config) *spaceServer {
	t.Helper()
	s := &spaceServer{at: time.Now().UTC().Add(-time.Hour)}
	cfg.DB, cfg.Schemas, cfg.Spaces = db, testSchemas, true
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(s.later.Load())) }
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := framework.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	app.MustSubscribe(framework.Subscription{Name: "items_with_s", Model: "test.Item", Params: []string{"s"},
		Match: framework.FieldEquals("s", "s")})
	app.SetAuthenticator(bearerUser)
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.app, s.base = app, serveApp(t, app)
	return s
}

// device is one device of a user: it keeps its cursor and what it holds,
// applying pulls as a client must (records by space, model and uid;
// removed spaces dropped).
type device struct {
	srv    *spaceServer
	user   string
	cursor string
	held   map[string]wire.Record // space/model/uid -> record
	// seen counts every record a pull ever delivered, per space ("" is
	// the personal one), and lastPull those of the last sync.
	seen, lastPull map[string]int
}

func (s *spaceServer) device(user string) *device {
	return &device{srv: s, user: user, held: map[string]wire.Record{}, seen: map[string]int{}}
}

func (d *device) do(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	raw := ""
	if body != nil {
		b, _ := json.Marshal(body)
		raw = string(b)
	}
	return d.doRaw(t, method, path, raw, out)
}

// doRaw is do with the body as it goes on the wire ("" for none).
func (d *device) doRaw(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, d.srv.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer user:"+d.user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(raw, out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// change is a change of model/uid in space ("" personal) with data.
func (s *spaceServer) change(space, model, uid string, data any) map[string]any {
	s.mu.Lock()
	s.at = s.at.Add(time.Microsecond)
	at := s.at
	s.mu.Unlock()
	ch := map[string]any{"model": model, "uid": uid, "modify_at": at.Format(wire.TimeFormat), "data": data}
	if space != "" {
		ch["space"] = space
	}
	return ch
}

func (s *spaceServer) deletion(space, model, uid string) map[string]any {
	ch := s.change(space, model, uid, nil)
	ch["is_deleted"] = true
	delete(ch, "data")
	return ch
}

func (d *device) push(t *testing.T, changes ...map[string]any) []wire.Result {
	t.Helper()
	var resp wire.PushResponse
	if st := d.do(t, "POST", "/sync/push", map[string]any{"changes": changes}, &resp); st != 200 {
		t.Fatalf("%s push: %d", d.user, st)
	}
	return resp.Results
}

// pushOne pushes one change and returns its result's status, code and
// first error path.
func (d *device) pushOne(t *testing.T, ch map[string]any) string {
	t.Helper()
	r := d.push(t, ch)[0]
	out := r.Status
	if r.Code != "" {
		out += " " + r.Code
	}
	for _, e := range r.Errors {
		if e.Path != "" {
			out += " " + e.Path
		}
	}
	return out
}

// sync pulls to the end with pages of limit, applying every page; it
// returns the spaces removed.
func (d *device) sync(t *testing.T, limit int) []string {
	t.Helper()
	removed, _ := d.syncCut(t, limit, false)
	return removed
}

// syncCut is sync that, when cut, stops after the first page without
// storing the cursor, as a device that crashed mid-pull (pages is then
// -1): what the page brought was applied.
func (d *device) syncCut(t *testing.T, limit int, cut bool) (removed []string, pages int) {
	t.Helper()
	d.lastPull = map[string]int{}
	cursor := d.cursor
	for pages = 1; pages < 1000; pages++ {
		var page wire.PullResponse
		q := url.Values{"cursor": {cursor}, "limit": {fmt.Sprint(limit)}}
		if st := d.do(t, "GET", "/sync/pull?"+q.Encode(), nil, &page); st != 200 {
			t.Fatalf("%s pull: %d", d.user, st)
		}
		for _, sp := range page.Removed {
			removed = append(removed, sp)
			for k, r := range d.held {
				if r.Space == sp {
					delete(d.held, k)
				}
			}
		}
		for _, r := range page.Changes {
			d.seen[r.Space]++
			d.lastPull[r.Space]++
			k := r.Space + "/" + r.Model + "/" + r.UID
			if r.IsDeleted {
				delete(d.held, k)
			} else {
				d.held[k] = *r
			}
		}
		cursor = page.Cursor
		if !page.HasMore {
			// What the device holds of a space the cursor does not cover
			// (brought by a pull cut short) goes too.
			for k, r := range d.held {
				if r.Space != "" && !slices.Contains(page.Spaces, r.Space) {
					delete(d.held, k)
				}
			}
			d.cursor = cursor
			return removed, pages
		}
		if cut {
			return removed, -1
		}
	}
	t.Fatal("pull did not end")
	return nil, 0
}

// holds lists what the device holds of a space, as "model/uid", sorted.
func (d *device) holds(space string) []string {
	var out []string
	for _, r := range d.held {
		if r.Space == space {
			out = append(out, r.Model+"/"+r.UID)
		}
	}
	slices.Sort(out)
	return out
}

func itemN(n int) map[string]any { return map[string]any{"n": n} }

func TestSpacesShareWriteAndForbid(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{})
		ann, bob, carl := s.device("ann"), s.device("bob"), s.device("carl")

		if got := ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{"name": "groceries"})); got != "applied" {
			t.Fatalf("create the space: %s", got)
		}
		if got := ann.pushOne(t, s.change("L", "test.Item", "milk", itemN(1))); got != "applied" {
			t.Fatalf("ann writes to her space: %s", got)
		}
		ann.sync(t, 500)
		if got := ann.holds("L"); !slices.Equal(got, []string{"ferry.Member/ann", "ferry.Space/L", "test.Item/milk"}) {
			t.Fatalf("ann holds %v of her space (the creator is its first admin)", got)
		}
		// A stranger learns nothing: writes are forbidden without a
		// reason, like a space that does not exist, and pulls bring none
		// of it.
		for _, ch := range []map[string]any{
			s.change("L", "test.Item", "milk", itemN(9)),
			s.change("L", framework.SpaceModel, "L", map[string]any{"name": "mine"}),
			s.change("L", framework.MemberModel, "carl", map[string]any{"role": "admin"}),
			s.change("nowhere", "test.Item", "x", itemN(1)),
			s.deletion("nowhere", framework.SpaceModel, "nowhere"),
		} {
			if got := carl.pushOne(t, ch); got != "forbidden" {
				t.Errorf("a stranger's %s in %s: %s, want forbidden with no detail", ch["model"], ch["space"], got)
			}
		}
		carl.sync(t, 500)
		if len(carl.seen) != 0 {
			t.Fatalf("a stranger received %v", carl.seen)
		}

		// Bob joins as a writer: his next pull back-fills the space.
		if got := ann.pushOne(t, s.change("L", framework.MemberModel, "bob", map[string]any{"role": "writer"})); got != "applied" {
			t.Fatalf("add bob: %s", got)
		}
		bob.pushOne(t, s.change("", "test.Item", "milk", itemN(100))) // his own milk, another record
		bob.sync(t, 2)
		if got := bob.holds("L"); !slices.Equal(got, []string{"ferry.Member/ann", "ferry.Member/bob", "ferry.Space/L", "test.Item/milk"}) {
			t.Fatalf("bob holds %v of the space", got)
		}
		if r := bob.held["L/test.Item/milk"]; r.Owner != "s:L" || string(r.Data) != `{"n":1}` {
			t.Fatalf("the space's milk reached bob as %+v", r)
		}
		if r := bob.held["/test.Item/milk"]; r.Owner != "bob" || string(r.Data) != `{"n":100}` || r.Space != "" {
			t.Fatalf("bob's own milk is %+v", r)
		}
		if got := bob.pushOne(t, s.change("L", "test.Item", "eggs", itemN(2))); got != "applied" {
			t.Fatalf("a writer writes: %s", got)
		}
		ann.sync(t, 500)
		if _, ok := ann.held["L/test.Item/eggs"]; !ok {
			t.Fatal("ann did not receive bob's write to the shared space")
		}
		// A writer manages nothing, and is told why.
		for _, ch := range []map[string]any{
			s.change("L", framework.MemberModel, "carl", map[string]any{"role": "reader"}),
			s.change("L", framework.MemberModel, "bob", map[string]any{"role": "admin"}),
			s.change("L", framework.SpaceModel, "L", map[string]any{"name": "bob's"}),
		} {
			if got := bob.pushOne(t, ch); got != "forbidden /model" {
				t.Errorf("a writer's %s %s: %s, want forbidden /model", ch["model"], ch["uid"], got)
			}
		}

		// Writer to reader: later writes are forbidden, with the reason.
		ann.pushOne(t, s.change("L", framework.MemberModel, "bob", map[string]any{"role": "reader"}))
		r := bob.push(t, s.change("L", "test.Item", "eggs", itemN(3)))[0]
		if r.Status != "forbidden" || len(r.Errors) != 1 || r.Errors[0].Path != "/space" || !strings.Contains(r.Errors[0].Message, "reader") {
			t.Fatalf("a reader's write: %+v", r)
		}
		bob.sync(t, 500)
		if got := string(bob.held["L/ferry.Member/bob"].Data); got != `{"role":"reader"}` {
			t.Fatalf("bob sees his role as %s", got)
		}

		// Created, written and shared in one push; a role lost in the
		// middle of a push holds for the rest of it.
		res := ann.push(t,
			s.change("M", framework.SpaceModel, "M", map[string]any{}),
			s.change("M", "test.Item", "x", itemN(1)),
			s.change("M", framework.MemberModel, "bob", map[string]any{"role": "admin"}),
			s.change("M", framework.MemberModel, "ann", map[string]any{"role": "reader"}),
			s.change("M", "test.Item", "y", itemN(2)),
			s.change("", "test.Item", "x", itemN(3)),
		)
		var got []string
		for _, r := range res {
			got = append(got, r.Status)
		}
		if want := []string{"applied", "applied", "applied", "applied", "forbidden", "applied"}; !slices.Equal(got, want) {
			t.Fatalf("one push creating and sharing a space: %v, want %v", got, want)
		}

		// The last admin cannot leave while others remain.
		r = ann.push(t, s.deletion("L", framework.MemberModel, "ann"))[0]
		if r.Status != "rejected" || r.Code != "conflict" {
			t.Fatalf("the last admin leaves: %+v", r)
		}
		r = ann.push(t, s.change("L", framework.MemberModel, "ann", map[string]any{"role": "writer"}))[0]
		if r.Status != "rejected" || r.Code != "conflict" {
			t.Fatalf("the last admin steps down: %+v", r)
		}
	})
}

func TestSpacesRevokeAndBackfill(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{})
		ann, bob, dave := s.device("ann"), s.device("bob"), s.device("dave")
		ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{"name": "list"}))
		ann.pushOne(t, s.change("L", framework.MemberModel, "bob", map[string]any{"role": "writer"}))
		var batch []map[string]any
		for i := range 30 {
			batch = append(batch, s.change("L", "test.Item", fmt.Sprint("i", i), itemN(i)))
		}
		ann.push(t, batch...)
		for i := range 10 {
			ann.pushOne(t, s.deletion("L", "test.Item", fmt.Sprint("i", i)))
		}
		bob.sync(t, 7)
		if got := len(bob.holds("L")); got != 2+1+20 {
			t.Fatalf("bob holds %d records of the space, want 23", got)
		}

		// Tombstones are purged before dave joins: his back-fill starts
		// from the space's beginning and needs no reset.
		dave.pushOne(t, s.change("", "test.Item", "own", itemN(1)))
		dave.sync(t, 500)
		s.later.Store(int64(2 * time.Hour))
		n, err := s.app.PurgeTombstones(context.Background(), time.Hour)
		s.later.Store(0)
		if err != nil || n != 10 {
			t.Fatalf("purge: %d %v", n, err)
		}
		ann.pushOne(t, s.change("L", framework.MemberModel, "dave", map[string]any{"role": "reader"}))
		dave.sync(t, 5)
		if got := len(dave.holds("L")); got != 3+1+20 {
			t.Fatalf("dave holds %d records of the space after the back-fill, want 24: %v", got, dave.holds("L"))
		}

		// Revoke: bob's next pull from his old cursor says to drop the
		// space, and nothing of it reaches him after.
		oldCursor := bob.cursor
		ann.pushOne(t, s.deletion("L", framework.MemberModel, "bob"))
		heads, err := s.app.Heads(context.Background(), framework.Principal{UserID: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := heads["s:L"]; ok {
			t.Fatalf("a removed member's heads still hold the space: %v", heads)
		}
		if behind, err := s.app.CursorBehind(oldCursor, heads); err != nil || !behind {
			t.Fatalf("a removed member's stream would not wake him: %v %v", behind, err)
		}
		before := bob.seen["L"]
		if removed := bob.sync(t, 3); !slices.Equal(removed, []string{"L"}) {
			t.Fatalf("removed = %v, want [L]", removed)
		}
		if got := bob.holds("L"); len(got) != 0 || bob.seen["L"] != before {
			t.Fatalf("after the revoke bob holds %v and received %d more records of the space", got, bob.seen["L"]-before)
		}
		ann.pushOne(t, s.change("L", "test.Item", "after", itemN(1)))
		if behind, _ := s.app.CursorBehind(bob.cursor, heads); behind {
			t.Fatal("a write to a space bob lost wakes his stream")
		}
		if removed := bob.sync(t, 3); len(removed) != 0 || bob.seen["L"] != before {
			t.Fatalf("after the revoke: removed %v, %d more records of the space", removed, bob.seen["L"]-before)
		}
		if got := bob.pushOne(t, s.change("L", "test.Item", "late", itemN(1))); got != "forbidden" {
			t.Fatalf("a removed member writes: %s", got)
		}
		// The old cursor, replayed, still cannot bring anything of it.
		bob.cursor = oldCursor
		if removed := bob.sync(t, 500); !slices.Equal(removed, []string{"L"}) || bob.seen["L"] != before {
			t.Fatalf("replayed old cursor: removed %v, %d more records", removed, bob.seen["L"]-before)
		}

		// Leaving is a member deleting their own membership.
		if got := dave.pushOne(t, s.deletion("L", framework.MemberModel, "dave")); got != "applied" {
			t.Fatalf("dave leaves: %s", got)
		}
		if removed := dave.sync(t, 500); !slices.Equal(removed, []string{"L"}) || len(dave.holds("L")) != 0 {
			t.Fatalf("dave left: removed %v, holds %v", removed, dave.holds("L"))
		}

		// Deleting the space removes it from every member.
		ann.pushOne(t, s.change("L", framework.MemberModel, "bob", map[string]any{"role": "reader"}))
		bob.sync(t, 500)
		ann.sync(t, 500)
		if got := ann.pushOne(t, s.deletion("L", framework.SpaceModel, "L")); got != "applied" {
			t.Fatalf("delete the space: %s", got)
		}
		for _, d := range []*device{ann, bob} {
			if removed := d.sync(t, 500); !slices.Equal(removed, []string{"L"}) || len(d.holds("L")) != 0 {
				t.Fatalf("%s after the space's deletion: removed %v, holds %v", d.user, removed, d.holds("L"))
			}
		}
		if got := ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{"name": "again"})); got != "forbidden" {
			t.Fatalf("re-creating a deleted space: %s", got)
		}
	})
}

func TestSpacesBadInput(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{MaxSpaces: 2})
		ann, carl := s.device("ann"), s.device("carl")
		ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{}))
		for _, c := range []struct {
			ch   map[string]any
			want string
		}{
			{s.change("bad id!", "test.Item", "x", itemN(1)), "rejected invalid /space"},
			{s.change("", framework.MemberModel, "ann", map[string]any{"role": "admin"}), "rejected invalid /space"},
			{s.change("", framework.SpaceModel, "L", map[string]any{}), "rejected invalid /space"},
			{s.change("L", framework.SpaceModel, "M", map[string]any{}), "rejected invalid /uid"},
			{s.change("L", framework.MemberModel, "bob", map[string]any{"role": "owner"}), "rejected invalid /data/role"},
			{s.change("L", framework.MemberModel, "bob", map[string]any{}), "rejected invalid /data"},
			{map[string]any{"model": "test.Item", "uid": "x", "modify_at": s.at.Format(wire.TimeFormat), "data": itemN(1), "space": 7}, "rejected invalid /space"},
		} {
			if got := ann.pushOne(t, c.ch); got != c.want {
				t.Errorf("%v: %s, want %s", c.ch, got, c.want)
			}
		}
		// A user is in at most MaxSpaces spaces.
		ann.pushOne(t, s.change("M", framework.SpaceModel, "M", map[string]any{}))
		ann.pushOne(t, s.change("N", framework.SpaceModel, "N", map[string]any{}))
		if got := ann.pushOne(t, s.change("O", framework.SpaceModel, "O", map[string]any{})); got != "rejected quota_exceeded /space" {
			t.Fatalf("a third space for a user capped at two: %s", got)
		}
		// A forged cursor naming a space brings nothing of it.
		forged := mustCursor(t, map[string]any{"v": 1, "p": map[string]int64{"s:L": 0, "ann": 0}})
		carl.cursor = forged
		if removed := carl.sync(t, 500); !slices.Equal(removed, []string{"L"}) || len(carl.seen) != 0 {
			t.Fatalf("forged cursor: removed %v, received %v", removed, carl.seen)
		}

		// With spaces off, a change naming a space is refused.
		off := newQuotaApp(t, synctest.Open(t, synctest.SQLite), framework.Config{})
		res, err := off.Push(context.Background(), framework.Principal{UserID: "ann"}, []*framework.Change{{
			Model: "test.Item", UID: "x", Space: "L", ModifyAt: framework.Time{Time: time.Now()}, Data: json.RawMessage(`{"n":1}`),
		}})
		if err != nil || res[0].Status != "rejected" || len(res[0].Errors) != 1 || res[0].Errors[0].Path != "/space" {
			t.Fatalf("a change naming a space, spaces off: %+v %v", res, err)
		}
	})
}

func mustCursor(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestSpacesQuota(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{Quota: framework.Quota{MaxRecords: 3}})
		ann := s.device("ann")
		// The space's record and its first member take two of the space's
		// three; the writer's quota applies to the space's own counters.
		ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{}))
		if got := ann.pushOne(t, s.change("L", "test.Item", "a", itemN(1))); got != "applied" {
			t.Fatalf("the space's third record: %s", got)
		}
		if got := ann.pushOne(t, s.change("L", "test.Item", "b", itemN(1))); got != "rejected quota_exceeded" {
			t.Fatalf("the space's fourth record: %s", got)
		}
		for _, uid := range []string{"a", "b", "c"} {
			if got := ann.pushOne(t, s.change("", "test.Item", uid, itemN(1))); got != "applied" {
				t.Fatalf("ann's own record %s (her space is apart): %s", uid, got)
			}
		}
	})
}

func TestSpacesPullFilter(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{})
		ann, bob := s.device("ann"), s.device("bob")
		for _, sp := range []string{"L", "M"} {
			ann.pushOne(t, s.change(sp, framework.SpaceModel, sp, map[string]any{}))
			ann.pushOne(t, s.change(sp, "test.Item", "x", itemN(1)))
		}
		ann.pushOne(t, s.change("", "test.Item", "x", itemN(2)))
		bob.pushOne(t, s.change("B", framework.SpaceModel, "B", map[string]any{}))
		pull := func(d *device, query string) (wire.PullResponse, int) {
			var page wire.PullResponse
			st := d.do(t, "GET", "/sync/pull?"+query, nil, &page)
			return page, st
		}
		spacesOf := func(page wire.PullResponse) []string {
			var out []string
			for _, r := range page.Changes {
				if !slices.Contains(out, r.Space) {
					out = append(out, r.Space)
				}
			}
			slices.Sort(out)
			return out
		}
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"spaces=L", []string{"L"}},
			{"spaces=L,M,L", []string{"L", "M"}},
			{"spaces=~", []string{""}},
			{"spaces=~,M", []string{"", "M"}},
			{"spaces=B", nil}, // bob's: brings nothing, reveals nothing
			{"", []string{"", "L", "M"}},
		} {
			page, st := pull(ann, c.query)
			if got := spacesOf(page); st != 200 || !slices.Equal(got, c.want) {
				t.Errorf("pull ?%s: %d, spaces %v, want %v", c.query, st, got, c.want)
			}
		}
		page, _ := pull(ann, "spaces=L")
		if !slices.Equal(page.Spaces, []string{"L"}) {
			t.Errorf("a pull of L lists the spaces %v", page.Spaces)
		}
		// A cursor belongs to its filter.
		if _, st := pull(ann, "cursor="+page.Cursor); st != 400 {
			t.Errorf("a spaces=L cursor without the filter: %d, want 400", st)
		}
		if next, st := pull(ann, "spaces=L&cursor="+page.Cursor); st != 200 || len(next.Changes) != 0 {
			t.Errorf("a spaces=L cursor with its filter: %d, %d changes", st, len(next.Changes))
		}
		for _, q := range []string{"spaces=bad!", "spaces=" + strings.Repeat("a,", 200) + "b"} {
			if _, st := pull(ann, q); st != 400 {
				t.Errorf("pull ?%.40s: %d, want 400", q, st)
			}
		}
	})
}

func TestSubscriptions(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{})
		ann := s.device("ann")
		item := func(space, uid, sv string) map[string]any {
			return s.change(space, "test.Item", uid, map[string]any{"n": 1, "s": sv})
		}
		ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{}))
		ann.push(t, item("", "a", "x"), item("", "b", "y"), item("", "c", "x"), item("L", "d", "x"), item("L", "e", "y"))
		sub := "subscription=" + url.QueryEscape("items_with_s(x)")
		pull := func(query string) (wire.PullResponse, int) {
			var page wire.PullResponse
			st := ann.do(t, "GET", "/sync/pull?"+query, nil, &page)
			return page, st
		}
		show := func(page wire.PullResponse) []string {
			var out []string
			for _, r := range page.Changes {
				k := r.Space + "/" + r.UID
				if r.Gone {
					k += " gone"
				}
				out = append(out, k)
			}
			slices.Sort(out)
			return out
		}
		page, st := pull(sub)
		if got := show(page); st != 200 || !slices.Equal(got, []string{"/a", "/c", "L/d"}) {
			t.Fatalf("the first pull of items_with_s(x): %d %v", st, got)
		}
		// b starts to match and arrives; a stops and is gone; c is deleted
		// (its tombstone matches on its last data).
		ann.push(t, item("", "b", "x"), item("", "a", "z"), s.deletion("", "test.Item", "c"), item("L", "e", "w"))
		next, st := pull(sub + "&cursor=" + page.Cursor)
		if got := show(next); st != 200 || !slices.Equal(got, []string{"/a gone", "/b", "/c", "L/e gone"}) {
			t.Fatalf("after the changes: %d %v", st, got)
		}
		for _, r := range next.Changes {
			if r.Gone && string(r.Data) != "{}" {
				t.Errorf("a gone marker carries data %s", r.Data)
			}
		}
		// The subscription set is part of the cursor.
		for _, q := range []string{
			"cursor=" + page.Cursor,
			"subscription=" + url.QueryEscape("items_with_s(y)") + "&cursor=" + page.Cursor,
		} {
			if _, st := pull(q); st != 400 {
				t.Errorf("pull ?%s: %d, want 400 invalid_cursor", q, st)
			}
		}
		for _, q := range []string{
			"subscription=nope(x)",
			"subscription=items_with_s",
			"subscription=" + url.QueryEscape("items_with_s(x,y)"),
			"subscription=" + url.QueryEscape("items_with_s(a b)"),
			sub + "&models=test.Item",
		} {
			if _, st := pull(q); st != 400 {
				t.Errorf("pull ?%s: %d, want 400", q, st)
			}
		}
	})
}

// teamAuthorizer lets every user listed in readers read the space "T"
// without a membership, and makes test.Item read-only for writers.
type teamAuthorizer struct {
	framework.RoleAuthorizer
	mu      sync.Mutex
	readers map[string]bool
}

func (a *teamAuthorizer) Spaces(_ context.Context, p framework.Principal, mine []framework.Space) ([]framework.Space, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.readers[p.UserID] && !slices.ContainsFunc(mine, func(s framework.Space) bool { return s.ID == "T" }) {
		mine = append(mine, framework.Space{ID: "T", Role: framework.RoleReader})
	}
	return mine, nil
}

func (a *teamAuthorizer) CanWrite(ctx context.Context, p framework.Principal, s framework.Space, ch *framework.Change) error {
	if ch.Model == "test.Item" && s.Role == framework.RoleWriter {
		return framework.Forbidden("/model", "test.Item is read-only for writers")
	}
	return a.RoleAuthorizer.CanWrite(ctx, p, s, ch)
}

func TestSpacesAuthorizer(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		auth := &teamAuthorizer{readers: map[string]bool{"bob": true}}
		s := newSpaceServer(t, db, framework.Config{Authorizer: auth})
		ann, bob, carl := s.device("ann"), s.device("bob"), s.device("carl")
		ann.pushOne(t, s.change("T", framework.SpaceModel, "T", map[string]any{}))
		ann.pushOne(t, s.change("T", "test.Item", "x", itemN(1)))
		ann.pushOne(t, s.change("T", framework.MemberModel, "carl", map[string]any{"role": "writer"}))
		// Bob reads T through the Authorizer alone; a write is a
		// stranger's.
		bob.sync(t, 500)
		if got := bob.holds("T"); !slices.Contains(got, "test.Item/x") {
			t.Fatalf("bob, a reader by the Authorizer, holds %v", got)
		}
		if got := bob.pushOne(t, s.change("T", "test.Item", "y", itemN(1))); got != "forbidden" {
			t.Fatalf("bob writes: %s", got)
		}
		// The Authorizer makes the model read-only for writers.
		if got := carl.pushOne(t, s.change("T", "test.Item", "z", itemN(1))); got != "forbidden /model" {
			t.Fatalf("a writer writes a read-only model: %s", got)
		}
		// When the Authorizer stops answering T for bob, his next pull
		// says removed.
		auth.mu.Lock()
		delete(auth.readers, "bob")
		auth.mu.Unlock()
		if removed := bob.sync(t, 500); !slices.Equal(removed, []string{"T"}) || len(bob.holds("T")) != 0 {
			t.Fatalf("after the Authorizer dropped T: removed %v, holds %v", removed, bob.holds("T"))
		}
	})
}

// TestPushCursorOfAFilteredPull: a push carrying a filtered pull's cursor
// gets it back, moved past its own writes, still of its filter.
func TestPushCursorOfAFilteredPull(t *testing.T) {
	s := newSpaceServer(t, synctest.OpenSQLite(t), framework.Config{})
	ann := s.device("ann")
	var page wire.PullResponse
	ann.do(t, "GET", "/sync/pull?spaces=~", nil, &page)
	var resp wire.PushResponse
	if st := ann.do(t, "POST", "/sync/push", map[string]any{"cursor": page.Cursor, "changes": []any{s.change("", "test.Item", "a", itemN(1))}}, &resp); st != 200 || resp.Cursor == page.Cursor {
		t.Fatalf("push with a spaces=~ cursor: %d, cursor moved: %v", st, resp.Cursor != page.Cursor)
	}
	var next wire.PullResponse
	if st := ann.do(t, "GET", "/sync/pull?spaces=~&cursor="+url.QueryEscape(resp.Cursor), nil, &next); st != 200 || len(next.Changes) != 0 {
		t.Fatalf("pull after the push: %d, %d changes (its own write again)", st, len(next.Changes))
	}
}

// TestSpacesSingleEndpoint: POST /sync/ answers a space's refusals in the
// error shape, with the reason only for a member.
func TestSpacesSingleEndpoint(t *testing.T) {
	s := newSpaceServer(t, synctest.OpenSQLite(t), framework.Config{})
	ann, bob, carl := s.device("ann"), s.device("bob"), s.device("carl")
	ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{}))
	ann.pushOne(t, s.change("L", framework.MemberModel, "bob", map[string]any{"role": "reader"}))
	var single wire.SingleResponse
	if st := ann.do(t, "POST", "/sync/", s.change("L", "test.Item", "x", itemN(1)), &single); st != 200 || single.Record.Space != "L" {
		t.Fatalf("a member's single write: %d %+v", st, single.Record)
	}
	for _, c := range []struct {
		d      *device
		detail bool
	}{{bob, true}, {carl, false}} {
		var e wire.ErrorBody
		st := c.d.do(t, "POST", "/sync/", s.change("L", "test.Item", "y", itemN(1)), &e)
		if st != 403 || e.Error.Code != "forbidden" || (len(e.Error.Details) > 0) != c.detail {
			t.Errorf("%s's single write: %d %+v", c.d.user, st, e.Error)
		}
	}
}

// TestUserIDsOfASpacesShape: a principal whose id has a shared space's
// scope shape is refused everywhere, so it cannot read or write the space
// as its own records.
func TestUserIDsOfASpacesShape(t *testing.T) {
	s := newSpaceServer(t, synctest.OpenSQLite(t), framework.Config{})
	ann := s.device("ann")
	ann.pushOne(t, s.change("L", framework.SpaceModel, "L", map[string]any{}))
	ann.pushOne(t, s.change("L", "test.Item", "x", itemN(1)))
	forger := s.device("s:L")
	var e wire.ErrorBody
	if st := forger.do(t, "GET", "/sync/pull", nil, &e); st != 401 || e.Error.Code != "unauthenticated" {
		t.Fatalf("pull as user s:L: %d %+v", st, e)
	}
	ctx := context.Background()
	p := framework.Principal{UserID: "s:L"}
	if _, err := s.app.Pull(ctx, p, framework.PullRequest{}); !errors.Is(err, framework.ErrUnauthenticated) {
		t.Errorf("App.Pull as s:L: %v", err)
	}
	if _, err := s.app.Push(ctx, p, nil); !errors.Is(err, framework.ErrUnauthenticated) {
		t.Errorf("App.Push as s:L: %v", err)
	}
	if _, err := s.app.Heads(ctx, p); !errors.Is(err, framework.ErrUnauthenticated) {
		t.Errorf("App.Heads as s:L: %v", err)
	}
}
