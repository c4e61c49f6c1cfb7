package conflictlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/plugins/conflictlog"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

var bearer = framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || id == "" {
		return framework.Principal{}, framework.ErrUnauthenticated
	}
	return framework.Principal{UserID: id}, nil
})

// mergeKeys merges two records by taking every key of both, the
// incoming side's value where both have one.
var mergeKeys = framework.PolicyFunc(func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
	var a, b map[string]any
	_ = json.Unmarshal(c.Stored.Data, &a)
	_ = json.Unmarshal(c.Incoming.Data, &b)
	for k, v := range b {
		a[k] = v
	}
	data, _ := json.Marshal(a)
	return framework.Resolution{Outcome: framework.Merge, Data: data}, nil
})

type env struct {
	app *framework.App
	log *conflictlog.Log
	url string
	now *atomic.Int64
	at  time.Time
}

func newEnv(t *testing.T, db *bun.DB) *env {
	t.Helper()
	now := &atomic.Int64{}
	now.Store(time.Now().UnixNano())
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"any.json": {Data: []byte(`{"type":"object"}`)}},
		Now:     func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "any.json"})
	app.MustRegisterSchema("data.Doc", framework.ModelOptions{Schema: "any.json", Policy: policies.ClientWins{}})
	app.MustRegisterSchema("data.Merged", framework.ModelOptions{Schema: "any.json", Policy: mergeKeys})
	app.SetAuthenticator(bearer)
	lg, err := conflictlog.New(conflictlog.Config{PurgeEvery: -1, MaxPage: 3})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(lg)
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	r := gin.New()
	app.Mount(r.Group("/sync"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{app: app, log: lg, url: srv.URL, now: now, at: time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)}
}

func (e *env) do(t *testing.T, user, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(b, out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// push pushes changes "model/uid@offset-in-seconds {data}" as user and
// returns the statuses.
func (e *env) push(t *testing.T, user string, changes ...string) []string {
	t.Helper()
	var parts []string
	for _, c := range changes {
		key, data, _ := strings.Cut(c, " ")
		mu, off, _ := strings.Cut(key, "@")
		model, uid, _ := strings.Cut(mu, "/")
		var sec int
		fmt.Sscan(off, &sec)
		parts = append(parts, fmt.Sprintf(`{"model":%q,"uid":%q,"modify_at":%q,"data":%s}`,
			model, uid, e.at.Add(time.Duration(sec)*time.Second).Format(wire.TimeFormat), data))
	}
	var resp wire.PushResponse
	if st := e.do(t, user, "POST", "/sync/push", `{"changes":[`+strings.Join(parts, ",")+`]}`, &resp); st != 200 {
		t.Fatalf("push: %d", st)
	}
	var out []string
	for _, r := range resp.Results {
		out = append(out, r.Status)
	}
	return out
}

func (e *env) conflicts(t *testing.T, user, query string) conflictlog.Page {
	t.Helper()
	var page conflictlog.Page
	if st := e.do(t, user, "GET", "/sync/conflicts"+query, "", &page); st != 200 {
		t.Fatalf("GET /sync/conflicts%s: %d", query, st)
	}
	return page
}

func show(es []conflictlog.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s %s/%s %v", e.Outcome, e.Model, e.UID, e.Fields))
	}
	return out
}

func TestConflictLog(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db)
		steps := []struct {
			changes []string
			want    []string
		}{
			{[]string{`data.Note/n1@20 {"title":"b","tag":"x"}`}, []string{"applied"}},
			{[]string{`data.Note/n1@10 {"title":"a","tag":"x"}`}, []string{"stale"}},                       // logged
			{[]string{`data.Note/n1@30 {"title":"c","tag":"x"}`}, []string{"applied"}},                     // an edit: not logged
			{[]string{`data.Note/n1@30 {"title":"c","tag":"x"}`}, []string{"applied"}},                     // a retry: not logged
			{[]string{`data.Note/n2@5 {"t":1}`, `data.Note/n3@5 {"t":1}`}, []string{"applied", "applied"}}, //
			{[]string{`data.Note/n2@1 {"t":2}`, `data.Note/n3@1 {"t":3}`}, []string{"stale", "stale"}},     // two in one push (the store decides them on PostgreSQL)
			{[]string{`data.Doc/d1@20 {"x":1}`}, []string{"applied"}},                                      //
			{[]string{`data.Doc/d1@10 {"x":2}`}, []string{"applied"}},                                      // older, applied anyway: overwritten
			{[]string{`data.Merged/m1@10 {"a":1}`}, []string{"applied"}},                                   //
			{[]string{`data.Merged/m1@20 {"b":2}`}, []string{"applied"}},                                   // merged
		}
		for i, s := range steps {
			if got := e.push(t, "ann", s.changes...); !slices.Equal(got, s.want) {
				t.Fatalf("step %d: %v, want %v", i, got, s.want)
			}
		}
		want := []string{
			"stale data.Note/n1 [title]",
			"stale data.Note/n2 [t]", "stale data.Note/n3 [t]",
			"overwritten data.Doc/d1 [x]",
			"merged data.Merged/m1 [a b]",
		}
		var got []conflictlog.Entry
		page := e.conflicts(t, "ann", "")
		for got = page.Conflicts; page.HasMore; got = append(got, page.Conflicts...) {
			page = e.conflicts(t, "ann", fmt.Sprintf("?since=%d", page.Next))
		}
		if !slices.Equal(show(got), want) {
			t.Fatalf("ann's conflicts:\n%v\nwant\n%v", show(got), want)
		}
		first := got[0]
		if first.User != "ann" || first.Owner != "ann" || !first.StoredModifyAt.Equal(e.at.Add(20*time.Second)) || !first.IncomingModifyAt.Equal(e.at.Add(10*time.Second)) {
			t.Fatalf("the first entry: %+v", first)
		}
		if p := e.conflicts(t, "ann", "?limit=1"); len(p.Conflicts) != 1 || !p.HasMore || p.Next != first.ID {
			t.Fatalf("a page of one: %+v", p)
		}
		// Another user sees none of them.
		if p := e.conflicts(t, "bob", ""); len(p.Conflicts) != 0 {
			t.Fatalf("bob sees %v", show(p.Conflicts))
		}
		for _, q := range []string{"?since=x", "?since=-1", "?limit=0"} {
			if st := e.do(t, "ann", "GET", "/sync/conflicts"+q, "", nil); st != 400 {
				t.Errorf("GET /sync/conflicts%s: %d, want 400", q, st)
			}
		}
		// Retention: a month later the entries go.
		e.now.Add(int64(31 * 24 * time.Hour))
		if n, err := e.log.Purge(context.Background()); err != nil || n != int64(len(want)) {
			t.Fatalf("purge: %d %v", n, err)
		}
		if p := e.conflicts(t, "ann", ""); len(p.Conflicts) != 0 {
			t.Fatalf("after the purge: %v", show(p.Conflicts))
		}
	})
}

// TestConflictLogManyInOnePush: a push whose stale changes span several
// of the log's INSERT statements records every one of them, once.
func TestConflictLogManyInOnePush(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db)
		const n = 1000 // the most one push carries: two of the log's statements
		var newer, older []string
		for i := range n {
			newer = append(newer, fmt.Sprintf(`data.Note/m%d@20 {"v":1}`, i))
			older = append(older, fmt.Sprintf(`data.Note/m%d@10 {"v":2}`, i))
		}
		for _, s := range e.push(t, "ann", newer...) {
			if s != "applied" {
				t.Fatalf("first push: %s", s)
			}
		}
		for _, s := range e.push(t, "ann", older...) {
			if s != "stale" {
				t.Fatalf("second push: %s", s)
			}
		}
		var count, uids int
		if err := db.NewRaw(`SELECT count(*), count(DISTINCT uid) FROM ferry_conflicts WHERE scope = 'ann' AND outcome = 'stale'`).Scan(context.Background(), &count, &uids); err != nil {
			t.Fatal(err)
		}
		if count != n || uids != n {
			t.Fatalf("%d entries for %d uids, want %d of each", count, uids, n)
		}
	})
}
