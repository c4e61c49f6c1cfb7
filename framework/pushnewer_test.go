package framework_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// countQueries counts the statements bun sends.
type countQueries struct{ n int }

func (c *countQueries) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	c.n++
	return ctx
}
func (c *countQueries) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestStoreDecidedPush: pushes settled by last-writer-wins alone give the
// same answers on both stores, whether PostgreSQL decides them in the
// writing statement or the framework decides them after reading: new,
// newer, stale, repeated and foreign changes, several models interleaved,
// and more rows than one statement takes. Versions follow request order.
func TestStoreDecidedPush(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		app.MustRegisterSchema("test.Other", framework.ModelOptions{Schema: "item.json"})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		me, other := framework.Principal{UserID: "me"}, framework.Principal{UserID: "other"}
		t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		push := func(p framework.Principal, changes ...*framework.Change) []framework.Result {
			t.Helper()
			res, err := app.Push(ctx, p, changes)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		statuses := func(res []framework.Result) string {
			s := ""
			for _, r := range res {
				s += string(r.Status) + " "
			}
			return s
		}
		push(other, item("theirs", t0, 0))

		// New records: on PostgreSQL one statement, below bun.
		hook := &countQueries{}
		db.AddQueryHook(hook)
		res := push(me, item("a", t0, 1), item("b", t0, 2), item("c", t0, 3))
		if got := statuses(res); got != "applied applied applied " {
			t.Fatalf("creates: %s", got)
		}
		if models.IsPostgres(db) && hook.n != 0 {
			t.Errorf("a push of new records sent %d statements through bun; want the one store-decided statement", hook.n)
		}
		for i := 1; i < len(res); i++ {
			if res[i].Record.Version <= res[i-1].Record.Version {
				t.Fatalf("versions not in request order: %d then %d", res[i-1].Record.Version, res[i].Record.Version)
			}
		}
		bVersion := res[1].Record.Version

		res = push(me,
			item("a", t0.Add(-time.Second), 10), // older: stale
			item("b", t0, 2),                    // a retry: applied again, same version
			item("c", t0.Add(time.Second), 30),  // newer
			item("theirs", t0.Add(time.Hour), 40),
			item("d", t0, 4), // new
		)
		if got := statuses(res); got != "stale applied applied forbidden applied " {
			t.Fatalf("mixed push: %s", got)
		}
		if string(res[0].Record.Data) != `{"n":1}` {
			t.Errorf("stale answer carries %s, want the stored winner", res[0].Record.Data)
		}
		if res[1].Record.Version != bVersion {
			t.Errorf("a retry got version %d, want the stored %d", res[1].Record.Version, bVersion)
		}
		if string(res[2].Record.Data) != `{"n":30}` || res[4].Record.Version <= res[2].Record.Version {
			t.Errorf("newer change: %+v, new: %+v", res[2].Record, res[4].Record)
		}
		if res[3].Record != nil {
			t.Errorf("a forbidden answer reveals %+v", res[3].Record)
		}

		// Models interleaved, and more changes than one statement takes.
		var changes []*framework.Change
		for i := range 1000 {
			ch := item(fmt.Sprintf("bulk-%d", i), t0, i)
			if i%3 == 1 {
				ch.Model = "test.Other"
			}
			changes = append(changes, ch)
		}
		res = push(me, changes...)
		for i, r := range res {
			if r.Status != framework.StatusApplied || r.Record.Model != changes[i].Model {
				t.Fatalf("bulk change %d: %+v", i, r)
			}
			if i > 0 && r.Record.Version <= res[i-1].Record.Version {
				t.Fatalf("bulk versions not in request order at %d: %d then %d", i, res[i-1].Record.Version, r.Record.Version)
			}
		}
		page, err := app.Pull(ctx, me, framework.PullRequest{Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) != 4+1000 {
			t.Fatalf("pulled %d records, want %d", len(page.Changes), 4+1000)
		}
		for _, r := range page.Changes {
			if r.Owner != "me" {
				t.Fatalf("pulled another owner's record %+v", r)
			}
		}
	})
}
