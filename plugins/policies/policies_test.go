package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/uptrace/bun"
)

var schemas = fstest.MapFS{"item.json": {Data: []byte(`{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}`)}}

func newApp(t *testing.T, db *bun.DB, cfg framework.Config, models map[string]framework.ConflictPolicy) *framework.App {
	t.Helper()
	cfg.DB, cfg.Schemas, cfg.Logger = db, schemas, slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := framework.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range models {
		app.MustRegisterSchema(name, framework.ModelOptions{Schema: "item.json", Policy: p})
	}
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

var ann = framework.Principal{UserID: "ann"}

func change(model, uid string, at time.Time, n int, deleted bool) *framework.Change {
	return &framework.Change{Model: model, UID: uid, ModifyAt: framework.Time{Time: at}, IsDeleted: deleted,
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

// push sends one change and returns its result.
func push(t *testing.T, app *framework.App, c *framework.Change, opts framework.PushOptions) framework.Result {
	t.Helper()
	res, err := app.PushWith(context.Background(), ann, []*framework.Change{c}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func want(t *testing.T, what string, r framework.Result, status string, n int, version int64) {
	t.Helper()
	var d struct{ N int }
	if r.Record != nil {
		_ = json.Unmarshal(r.Record.Data, &d)
	}
	if string(r.Status) != status || r.Record == nil || d.N != n || (version > 0 && r.Record.Version != version) {
		t.Fatalf("%s: %+v (data %s), want %s with n=%d at version %d", what, r, r.Record.Data, status, n, version)
	}
}

func TestPolicies(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newApp(t, db, framework.Config{}, map[string]framework.ConflictPolicy{
			"t.First": policies.FirstWriterWins{}, "t.Client": policies.ClientWins{}, "t.Default": nil,
		})
		t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		none := framework.PushOptions{}

		// FirstWriterWins: a newer change and a delete lose; a retry of the
		// first state is applied without a new version.
		first := push(t, app, change("t.First", "r", t0, 1, false), none)
		want(t, "first write", first, "applied", 1, 0)
		want(t, "a newer change", push(t, app, change("t.First", "r", t0.Add(time.Hour), 2, false), none), "stale", 1, first.Record.Version)
		want(t, "a delete", push(t, app, change("t.First", "r", t0.Add(time.Hour), 1, true), none), "stale", 1, first.Record.Version)
		want(t, "a retry", push(t, app, change("t.First", "r", t0, 1, false), none), "applied", 1, first.Record.Version)

		// ClientWins: an older change applies (arrival order wins); a retry
		// makes no new version.
		c1 := push(t, app, change("t.Client", "r", t0, 1, false), none)
		older := push(t, app, change("t.Client", "r", t0.Add(-time.Hour), 2, false), none)
		want(t, "an older change", older, "applied", 2, 0)
		if older.Record.Version <= c1.Record.Version || !older.Record.ModifyAt.Equal(t0.Add(-time.Hour)) {
			t.Fatalf("the older change was not stored as sent: %+v", older.Record)
		}
		want(t, "its retry", push(t, app, change("t.Client", "r", t0.Add(-time.Hour), 2, false), none), "applied", 2, older.Record.Version)

		// The default stays last-writer-wins; a push may choose a policy.
		push(t, app, change("t.Default", "r", t0, 1, false), none)
		want(t, "an older change by default", push(t, app, change("t.Default", "r", t0.Add(-time.Hour), 2, false), none), "stale", 1, 0)
		want(t, "an older change with ClientWins for the push",
			push(t, app, change("t.Default", "r", t0.Add(-time.Hour), 2, false), framework.PushOptions{Policy: policies.ClientWins{}}), "applied", 2, 0)
	})
}

func TestAsAppDefault(t *testing.T) {
	app := newApp(t, synctest.OpenSQLite(t), framework.Config{DefaultPolicy: policies.FirstWriterWins{}},
		map[string]framework.ConflictPolicy{"t.Item": nil})
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	push(t, app, change("t.Item", "r", t0, 1, false), framework.PushOptions{})
	want(t, "a newer change", push(t, app, change("t.Item", "r", t0.Add(time.Hour), 2, false), framework.PushOptions{}), "stale", 1, 0)
	// Neither policy is a rule the store applies itself: the model says so.
	if r, err := app.WriteRoute("t.Item"); err != nil || r.Route == framework.RouteStoreDecided || r.Reason == "" {
		t.Fatalf("WriteRoute: %+v %v", r, err)
	}
}
