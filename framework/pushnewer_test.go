package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
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
			item("a", t0.Add(-time.Second), 10),    // older: stale
			item("b", t0, 2),                       // a retry: applied again, same version
			item("c", t0.Add(time.Second), 30),     // newer
			item("theirs", t0.Add(-time.Hour), 40), // another owner has this uid: mine is mine
			item("d", t0, 4),                       // new
		)
		if got := statuses(res); got != "stale applied applied applied applied " {
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
		if res[3].Record.Owner != "me" || string(res[3].Record.Data) != `{"n":40}` {
			t.Errorf("my record with another owner's uid: %+v", res[3].Record)
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
		if len(page.Changes) != 5+1000 { // a to d, theirs, bulk
			t.Fatalf("pulled %d records, want %d", len(page.Changes), 5+1000)
		}
		for _, r := range page.Changes {
			if r.Owner != "me" {
				t.Fatalf("pulled another owner's record %+v", r)
			}
		}
	})
}

// voucher has a unique column, which a store-decided statement cannot
// settle row by row.
type voucher struct {
	bun.BaseModel `bun:"table:vouchers"`
	models.Base
	Code string `bun:"code,notnull,unique" json:"code"`
}

func (*voucher) ResourceType() string { return "test.Voucher" }
func (*voucher) Validate() error      { return nil }

// TestStoreDecidedPushFallsBack: when the one-statement write fails (here
// on a unique column), nothing of it stays, and the ordinary path settles
// the push change by change, pinning the failure on the change that
// caused it.
func TestStoreDecidedPushFallsBack(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		schemas := fstest.MapFS{"voucher.json": {Data: []byte(`{"type":"object","properties":{"code":{"type":"string"}}}`)}}
		app, err := framework.New(framework.Config{DB: db, Schemas: schemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := framework.Register[voucher](app, framework.ModelOptions{Schema: "voucher.json"}); err != nil {
			t.Fatal(err)
		}
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-time.Minute).UTC()
		v := func(uid, code string) *framework.Change {
			return &framework.Change{Model: "test.Voucher", UID: uid, ModifyAt: framework.Time{Time: at},
				Data: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}
		}
		me := framework.Principal{UserID: "me"}
		res, err := app.Push(ctx, me, []*framework.Change{v("v1", "A"), v("v2", "A"), v("v3", "B")})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Status != framework.StatusApplied || res[1].Status != framework.StatusRejected || res[2].Status != framework.StatusApplied {
			t.Fatalf("statuses %s %s %s, want applied rejected applied", res[0].Status, res[1].Status, res[2].Status)
		}
		if len(res[1].Errors) == 0 || !strings.Contains(res[1].Errors[0].Message, "unique") {
			t.Errorf("the rejected change says %+v", res[1].Errors)
		}
		page, err := app.Pull(ctx, me, framework.PullRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Changes {
			got = append(got, fmt.Sprintf("%s@%d", r.UID, r.Version))
		}
		if len(got) != 2 || page.Changes[0].UID != "v1" || page.Changes[1].UID != "v3" ||
			page.Changes[0].Version != res[0].Record.Version || page.Changes[1].Version != res[2].Record.Version {
			t.Fatalf("pulled %v, want v1 and v3 at versions %d and %d", got, res[0].Record.Version, res[2].Record.Version)
		}
	})
}

// TestRetryWithNanoseconds: a change pushed through the Go API with a
// modify_at finer than the stores keep is still recognised when retried.
func TestRetryWithNanoseconds(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		ctx := context.Background()
		p := framework.Principal{UserID: "me"}
		at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Add(123456789 * time.Nanosecond)
		first, err := app.Push(ctx, p, []*framework.Change{item("n", at, 1)})
		if err != nil {
			t.Fatal(err)
		}
		again, err := app.Push(ctx, p, []*framework.Change{item("n", at, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if again[0].Status != framework.StatusApplied || again[0].Record.Version != first[0].Record.Version {
			t.Fatalf("retry: %s at version %d, first at %d", again[0].Status, again[0].Record.Version, first[0].Record.Version)
		}
		if !first[0].Record.ModifyAt.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("answered modify_at %s, want it in microseconds", first[0].Record.ModifyAt.Time)
		}
	})
}
