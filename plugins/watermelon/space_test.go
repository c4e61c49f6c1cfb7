package watermelon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// spaceEnv is an App with shared spaces and the plugin on table "tasks".
type spaceEnv struct {
	app   *framework.App
	url   string
	clock atomic.Int64
}

func newSpaceEnv(t *testing.T, db *bun.DB) *spaceEnv {
	t.Helper()
	e := &spaceEnv{}
	app, hs := mountApp(t, framework.Config{DB: db, Spaces: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"task.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string","minLength":1}}}`)}},
		Now:     func() time.Time { return clockBase.Add(time.Duration(e.clock.Add(1)) * time.Second) }},
		map[string]framework.ModelOptions{"data.Task": {Schema: "task.json"}}, map[string]string{"tasks": "data.Task"})
	e.app, e.url = app, hs.URL
	return e
}

// native pushes one change as user through the Go API, at the next tick.
func (e *spaceEnv) native(t *testing.T, user string, ch *framework.Change) {
	t.Helper()
	ch.ModifyAt = framework.Time{Time: clockBase.Add(time.Duration(e.clock.Add(1)) * time.Second)}
	res, err := e.app.Push(context.Background(), framework.Principal{UserID: user}, []*framework.Change{ch})
	if err != nil || res[0].Status != framework.StatusApplied {
		t.Fatalf("push %s/%s as %s: %+v %v", ch.Model, ch.UID, user, res, err)
	}
}

// do calls the plugin as user and returns the status and the body.
func (e *spaceEnv) do(t *testing.T, user, method, query, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+"/sync/watermelon?"+query, strings.NewReader(body))
	req.Header.Set("X-User", user)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type spacePull struct {
	Changes map[string]struct {
		Updated []map[string]any `json:"updated"`
		Deleted []string         `json:"deleted"`
	} `json:"changes"`
	Timestamp    int64 `json:"timestamp"`
	HasMore      bool  `json:"has_more"`
	SpaceRemoved bool  `json:"space_removed"`
}

func (e *spaceEnv) pull(t *testing.T, user, query string) spacePull {
	t.Helper()
	st, body := e.do(t, user, "GET", query, "")
	if st != 200 {
		t.Fatalf("pull %s as %s: %d %s", query, user, st, body)
	}
	var p spacePull
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["id"].(string))
	}
	sort.Strings(out)
	return out
}

// TestSharedSpace: a WatermelonDB database per shared space, on both
// stores: a member pulls and pushes the space's records with ?space=, its
// personal database never sees them, a stranger is refused as for a space
// that does not exist, a reader's write is refused with the reason, and a
// removed member's next pulls list for deletion every record written
// before the removal (never one created after, whatever last_pulled_at
// claims), paged, saying space_removed.
func TestSharedSpace(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newSpaceEnv(t, db)
		task := func(uid, title string) *framework.Change {
			return &framework.Change{Model: "data.Task", UID: uid, Space: "L", Data: json.RawMessage(fmt.Sprintf(`{"title":%q}`, title))}
		}
		member := func(user, role string) *framework.Change {
			return &framework.Change{Model: framework.MemberModel, UID: user, Space: "L", Data: json.RawMessage(fmt.Sprintf(`{"role":%q}`, role))}
		}
		e.native(t, "ann", &framework.Change{Model: framework.SpaceModel, UID: "L", Space: "L", Data: json.RawMessage(`{"name":"home"}`)})
		e.native(t, "ann", member("bob", "writer"))
		e.native(t, "ann", task("t1", "milk"))
		e.native(t, "bob", &framework.Change{Model: "data.Task", UID: "own", Data: json.RawMessage(`{"title":"bob's own"}`)})

		first := e.pull(t, "bob", "space=L&last_pulled_at=null")
		if got := ids(first.Changes["tasks"].Updated); !slices.Equal(got, []string{"t1"}) || first.SpaceRemoved {
			t.Fatalf("bob's first pull of L: %v removed=%v", got, first.SpaceRemoved)
		}
		personal := e.pull(t, "bob", "last_pulled_at=null")
		if got := ids(personal.Changes["tasks"].Updated); !slices.Equal(got, []string{"own"}) {
			t.Fatalf("bob's personal database: %v", got)
		}
		// Bob's device writes to the space.
		if st, body := e.do(t, "bob", "POST", fmt.Sprintf("space=L&last_pulled_at=%d", first.Timestamp),
			`{"tasks":{"created":[{"id":"t2","title":"bread"}],"updated":[{"id":"t1","title":"oat milk"}]}}`); st != 200 || !strings.Contains(body, `"rejected":[]`) {
			t.Fatalf("bob's push to L: %d %s", st, body)
		}
		recs, err := e.app.ReadInSpace(context.Background(), framework.Principal{UserID: "ann"}, "L", "data.Task", []string{"t1", "t2"})
		if err != nil || len(recs) != 2 {
			t.Fatalf("ann reads bob's writes: %v %v", recs, err)
		}
		again := e.pull(t, "bob", fmt.Sprintf("space=L&last_pulled_at=%d", first.Timestamp))
		if got := ids(again.Changes["tasks"].Updated); !slices.Equal(got, []string{"t1", "t2"}) {
			t.Fatalf("bob's next pull of L: %v", got)
		}

		// A stranger, and any made-up last_pulled_at of theirs: the answer
		// a space that does not exist gets.
		stNone, none := e.do(t, "carol", "GET", "space=NOPE&last_pulled_at=null", "")
		for _, q := range []string{"space=L&last_pulled_at=null", "space=L&last_pulled_at=5", fmt.Sprintf("space=L&last_pulled_at=%d", int64(1)<<52+3)} {
			if st, body := e.do(t, "carol", "GET", q, ""); st != 403 || st != stNone || body != none {
				t.Fatalf("a stranger's %s: %d %s, want %d %s", q, st, body, stNone, none)
			}
		}
		if st, body := e.do(t, "carol", "POST", "space=L&last_pulled_at=5", `{"tasks":{"created":[{"id":"x","title":"spam"}]}}`); st != 200 || !strings.Contains(body, `"code":"forbidden"`) {
			t.Fatalf("a stranger's push: %d %s", st, body)
		}
		if st, body := e.do(t, "bob", "GET", "space=a/b&last_pulled_at=null", ""); st != 400 || !strings.Contains(body, `"space"`) {
			t.Fatalf("a bad space uid: %d %s", st, body)
		}

		// A reader's write is refused with the reason.
		e.native(t, "ann", member("bob", "reader"))
		st, body := e.do(t, "bob", "POST", fmt.Sprintf("space=L&last_pulled_at=%d", again.Timestamp), `{"tasks":{"updated":[{"id":"t1","title":"mine now"}]}}`)
		if st != 200 || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, `"path":"/space"`) || !strings.Contains(body, "reader") {
			t.Fatalf("a reader's push: %d %s", st, body)
		}

		// Bob is removed; Ann goes on writing.
		e.native(t, "ann", task("t3", "eggs")) // before the removal: bob may not hold it, it is listed anyway
		e.native(t, "ann", &framework.Change{Model: framework.MemberModel, UID: "bob", Space: "L", IsDeleted: true})
		for i := range 5 {
			e.native(t, "ann", task(fmt.Sprintf("late%d", i), "after bob"))
		}
		e.native(t, "ann", task("t1", "changed after")) // existed before: listed
		want := []string{"t1", "t2", "t3"}
		for _, since := range []int64{again.Timestamp, 1 << 40, 1<<52 - 1} {
			var listed []string
			q := fmt.Sprintf("space=L&limit=1&last_pulled_at=%d", since)
			for pages := 0; ; pages++ {
				p := e.pull(t, "bob", q)
				if !p.SpaceRemoved || len(p.Changes["tasks"].Updated) != 0 || len(p.Changes["tasks"].Deleted) > 1 {
					t.Fatalf("a removed member's pull from %d: %+v", since, p)
				}
				if p.Timestamp <= 1<<52 || p.Timestamp >= 1<<53 {
					t.Fatalf("a listing timestamp %d is not in the listing range", p.Timestamp)
				}
				listed = append(listed, p.Changes["tasks"].Deleted...)
				q = fmt.Sprintf("space=L&limit=1&last_pulled_at=%d", p.Timestamp)
				if !p.HasMore {
					break
				}
				if pages > 50 {
					t.Fatal("the listing never ends")
				}
			}
			sort.Strings(listed)
			if !slices.Equal(slices.Compact(listed), want) {
				t.Fatalf("listed from last_pulled_at %d: %v, want %v", since, listed, want)
			}
		}
		// Pushes to the lost space are refused; his personal database is his.
		if st, body := e.do(t, "bob", "POST", "space=L&last_pulled_at=5", `{"tasks":{"updated":[{"id":"t1","title":"x"}]}}`); st != 200 || !strings.Contains(body, `"code":"forbidden"`) {
			t.Fatalf("a removed member's push: %d %s", st, body)
		}
		if p := e.pull(t, "bob", "last_pulled_at=null"); !slices.Equal(ids(p.Changes["tasks"].Updated), []string{"own"}) || p.SpaceRemoved {
			t.Fatalf("bob's personal database after the removal: %+v", p)
		}
		// Added again, a device still on a listing timestamp resets.
		e.native(t, "ann", member("bob", "writer"))
		if st, body := e.do(t, "bob", "GET", fmt.Sprintf("space=L&last_pulled_at=%d", int64(1)<<52+2), ""); st != 410 || !strings.Contains(body, "reset_required") {
			t.Fatalf("a listing timestamp after re-adding: %d %s", st, body)
		}
	})
}
