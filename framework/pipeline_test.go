package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// countingPolicy wraps another policy and counts its decisions; it
// forwards the store rule, so wrapping last-writer-wins keeps the fast
// route.
type countingPolicy struct {
	inner framework.ConflictPolicy
	n     *atomic.Int64
}

var (
	_ framework.ConflictPolicy = countingPolicy{}
	_ framework.StoreRuler     = countingPolicy{}
)

func (p countingPolicy) Resolve(ctx context.Context, c *framework.Conflict) (framework.Resolution, error) {
	p.n.Add(1)
	return p.inner.Resolve(ctx, c)
}

func (p countingPolicy) StoreRule() models.Rule { return framework.StoreRuleOf(p.inner) }

var serverWinsPolicy = framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
	return framework.Resolution{Outcome: framework.KeepStored}, nil
})

// TestStoreRuleCapability: the store decides for any policy that
// advertises its rule (a wrapper of last-writer-wins too), and for no
// other; the route is said by App.WriteRoute and taken by pushes (on
// PostgreSQL, a push of the store-decided route sends nothing through
// bun).
func TestStoreRuleCapability(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		var counted atomic.Int64
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		app.MustRegisterSchema("test.Wrapped", framework.ModelOptions{Schema: "item.json", Policy: countingPolicy{framework.LastWriterWins{}, &counted}})
		app.MustRegisterSchema("test.Func", framework.ModelOptions{Schema: "item.json", Policy: serverWinsPolicy})
		app.MustRegisterSchema("test.Ptr", framework.ModelOptions{Schema: "item.json", Policy: &framework.LastWriterWins{}})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		fast := framework.RouteBulk
		if models.IsPostgres(db) {
			fast = framework.RouteStoreDecided
		}
		for model, want := range map[string]string{"test.Item": fast, "test.Wrapped": fast, "test.Ptr": fast, "test.Func": framework.RouteBulk} {
			wr, err := app.WriteRoute(model)
			if err != nil || wr.Route != want {
				t.Errorf("%s: route %+v %v, want %s", model, wr, err, want)
			}
			if wr.Route != framework.RouteStoreDecided && wr.Reason == "" {
				t.Errorf("%s: route %s without a reason", model, wr.Route)
			}
		}
		if wr, _ := app.WriteRoute("test.Func"); models.IsPostgres(db) && !strings.Contains(wr.Reason, "StoreRuler") {
			t.Errorf("a policy func's reason: %q", wr.Reason)
		}
		if _, err := app.WriteRoute("test.Nope"); !errors.Is(err, &framework.Error{Code: framework.CodeUnknownModel}) {
			t.Errorf("unknown model: %v", err)
		}

		queries := &countQueries{}
		db.AddQueryHook(queries)
		me := framework.Principal{UserID: "me"}
		at := time.Now().Add(-time.Hour).UTC()
		wrapped := func(uid string, at time.Time, n int) *framework.Change {
			c := item(uid, at, n)
			c.Model = "test.Wrapped"
			return c
		}
		if _, err := app.Push(ctx, me, []*framework.Change{wrapped("a", at, 1), wrapped("b", at, 1)}); err != nil {
			t.Fatal(err)
		}
		if models.IsPostgres(db) && queries.n != 0 {
			t.Errorf("the store-decided route sent %d statements through bun", queries.n)
		}
		res, err := app.Push(ctx, me, []*framework.Change{wrapped("a", at.Add(-time.Second), 2), wrapped("b", at.Add(time.Second), 2)})
		if err != nil || res[0].Status != framework.StatusStale || res[1].Status != framework.StatusApplied {
			t.Fatalf("wrapped last-writer-wins: %v %+v", err, res)
		}
		if models.IsPostgres(db) {
			// The stale change is read back to answer it; the policy is
			// not asked, the store applied its rule.
			if queries.n != 1 || counted.Load() != 0 {
				t.Errorf("the store-decided route sent %d statements through bun and asked the policy %d times", queries.n, counted.Load())
			}
		} else if counted.Load() != 2 {
			t.Errorf("the wrapped policy was asked %d times on the bulk route, want 2", counted.Load())
		}
		// A push policy without the store's rule takes the ordinary route.
		queries.n = 0
		res, err = app.PushWith(ctx, me, []*framework.Change{item("c", at, 1)}, framework.PushOptions{Policy: serverWinsPolicy})
		if err != nil || res[0].Status != framework.StatusApplied || queries.n == 0 {
			t.Fatalf("push policy: %v %+v, %d statements through bun", err, res, queries.n)
		}
	})
}

// TestDefaultPolicy: Config.DefaultPolicy decides for models registered
// without a policy; a model's own policy wins over it, and a push's over
// both.
func TestDefaultPolicy(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, DefaultPolicy: serverWinsPolicy,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		app.MustRegisterSchema("test.LWW", framework.ModelOptions{Schema: "item.json", Policy: framework.LastWriterWins{}})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if wr, _ := app.WriteRoute("test.Item"); wr.Route != framework.RouteBulk {
			t.Errorf("a model under a default policy without the store's rule: %+v", wr)
		}
		me := framework.Principal{UserID: "me"}
		at := time.Now().Add(-time.Hour).UTC()
		lww := func(uid string, at time.Time, n int) *framework.Change {
			c := item(uid, at, n)
			c.Model = "test.LWW"
			return c
		}
		if _, err := app.Push(ctx, me, []*framework.Change{item("a", at, 1), lww("b", at, 1), item("c", at, 1)}); err != nil {
			t.Fatal(err)
		}
		res, err := app.Push(ctx, me, []*framework.Change{item("a", at.Add(time.Second), 2), lww("b", at.Add(time.Second), 2)})
		if err != nil || res[0].Status != framework.StatusStale || res[1].Status != framework.StatusApplied {
			t.Fatalf("default and model policies: %v %+v", err, res)
		}
		res, err = app.PushWith(ctx, me, []*framework.Change{item("c", at.Add(time.Second), 2)}, framework.PushOptions{Policy: framework.LastWriterWins{}})
		if err != nil || res[0].Status != framework.StatusApplied {
			t.Fatalf("a push policy over the default: %v %+v", err, res)
		}
	})
}

// TestWriteRouteOfHooks: an apply hook puts the models it concerns on the
// change-by-change route, an untagged one every model; App.WriteRoute and
// the log at Migrate name it, and unbinding it gives the fast route back.
func TestWriteRouteOfHooks(t *testing.T) {
	db := synctest.OpenSQLite(t)
	ctx := context.Background()
	var logged bytes.Buffer
	app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	app.MustRegisterSchema("test.Other", framework.ModelOptions{Schema: "item.json"})
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "audit.tagged", Tags: []string{"test.Other"}, Func: func(e *framework.ApplyEvent) error { return e.Next() }})
	route := func(model string) framework.WriteRoute {
		t.Helper()
		wr, err := app.WriteRoute(model)
		if err != nil {
			t.Fatal(err)
		}
		return wr
	}
	if wr := route("test.Item"); wr.Route != framework.RouteBulk || len(wr.Hooks) != 0 {
		t.Errorf("a model no hook concerns: %+v", wr)
	}
	if wr := route("test.Other"); wr.Route != framework.RouteChangeByChange || !strings.Contains(wr.Reason, "audit.tagged") || len(wr.Untagged) != 0 {
		t.Errorf("a model a tagged hook concerns: %+v", wr)
	}
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "audit.everything", Func: func(e *framework.ApplyEvent) error { return e.Next() }})
	wr := route("test.Item")
	if wr.Route != framework.RouteChangeByChange || strings.Join(wr.Untagged, ",") != "audit.everything" || !strings.Contains(wr.Reason, "untagged") {
		t.Errorf("after an untagged hook: %+v", wr)
	}
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "untagged apply hooks") || !strings.Contains(logged.String(), "audit.everything") {
		t.Errorf("Migrate did not log the untagged hook:\n%s", logged.String())
	}
	// The route is what pushes take: the hook sees the write.
	seen := 0
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "audit.everything", Func: func(e *framework.ApplyEvent) error { seen++; return e.Next() }})
	if _, err := app.Push(ctx, framework.Principal{UserID: "me"}, []*framework.Change{item("a", time.Now().Add(-time.Minute), 1)}); err != nil || seen != 1 {
		t.Fatalf("push under an untagged hook: %v, hook ran %d times", err, seen)
	}
	app.OnApply().Unbind("audit.everything")
	if wr := route("test.Item"); wr.Route != framework.RouteBulk {
		t.Errorf("after Unbind: %+v", wr)
	}
}

// strictNote is a typed model whose Validate refuses a title, to show a
// merge goes through it.
type strictNote struct {
	bun.BaseModel `bun:"table:strict_notes"`
	models.Base
	Title string `bun:"title,notnull" json:"title"`
	Count int    `bun:"count,notnull" json:"count"`
}

func (*strictNote) ResourceType() string { return "test.StrictNote" }
func (n *strictNote) Validate() error {
	if n.Title == "forbidden" {
		return framework.Invalid("/data/title", "must not be forbidden")
	}
	return nil
}

// TestMergeIsValidated: a merged record goes through the model's schema
// and Validate and is stored in canonical form; an invalid merge is the
// change's rejected, with the path, and stores nothing; a merge whose
// result is the stored record writes nothing.
func TestMergeIsValidated(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		schemas := fstest.MapFS{"note.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string"},"count":{"type":"integer"}}}`)}}
		// The merge adopts what the incoming change's "merge" field says,
		// verbatim: a way to make any merge result.
		var merged json.RawMessage
		policy := framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
			return framework.Resolution{Outcome: framework.Merge, Data: merged}, nil
		})
		app, err := framework.New(framework.Config{DB: db, Schemas: schemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		framework.MustRegister[strictNote](app, framework.ModelOptions{Schema: "note.json", Policy: policy})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		me := framework.Principal{UserID: "me"}
		at := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		note := func(at time.Time, title string) *framework.Change {
			return &framework.Change{Model: "test.StrictNote", UID: "n", ModifyAt: framework.Time{Time: at},
				Data: json.RawMessage(`{"title":"` + title + `","count":1}`)}
		}
		first, err := app.Push(ctx, me, []*framework.Change{note(at, "first")})
		if err != nil || first[0].Status != framework.StatusApplied {
			t.Fatal(err, first)
		}
		for _, c := range []struct {
			merge, path string
		}{
			{`{"title":"forbidden"}`, "/data/title"}, // Validate
			{`{"title":7}`, "/data/title"},           // the schema
			{`{"count":"x"}`, "/data/count"},         // the schema
			{`[1,2]`, "/data"},                       // not an object
			{`{"title":`, "/data"},                   // not JSON
			{`{"title":"a\u0000b"}`, "/data/title"},  // U+0000
		} {
			merged = json.RawMessage(c.merge)
			res, err := app.Push(ctx, me, []*framework.Change{note(at.Add(time.Second), "second")})
			if err != nil {
				t.Fatal(err)
			}
			if r := res[0]; r.Status != framework.StatusRejected || r.Code != framework.CodeInvalid || len(r.Errors) == 0 || r.Errors[0].Path != c.path {
				t.Errorf("merge to %s: %+v, want rejected at %s", c.merge, r, c.path)
			}
		}
		got, err := app.Get(ctx, "me", "test.StrictNote", "n")
		if err != nil || got.Version != first[0].Record.Version || !strings.Contains(string(got.Data), `"first"`) {
			t.Fatalf("after invalid merges the store holds %+v %v", got, err)
		}
		// A valid merge is stored as the model's canonical form (the
		// struct's encoding, fields the model lacks dropped).
		merged = json.RawMessage(`{ "count": 5, "title": "merged", "extra": true }`)
		res, err := app.Push(ctx, me, []*framework.Change{note(at.Add(time.Second), "second")})
		if err != nil || res[0].Status != framework.StatusApplied || string(res[0].Record.Data) != `{"title":"merged","count":5}` {
			t.Fatalf("valid merge: %v %+v", err, res[0].Record)
		}
		version := res[0].Record.Version
		// The same change again merges to the stored record: applied,
		// the stored record, no new version.
		res, err = app.Push(ctx, me, []*framework.Change{note(at.Add(time.Second), "second")})
		if err != nil || res[0].Status != framework.StatusApplied || res[0].Record.Version != version || string(res[0].Record.Data) != `{"title":"merged","count":5}` {
			t.Fatalf("retried merge: %v %+v, want version %d", err, res[0].Record, version)
		}
		// A merge of is_deleted alone keeps the incoming data.
		deleted := true
		merged = nil
		res, err = app.PushWith(ctx, me, []*framework.Change{note(at.Add(2*time.Second), "third")}, framework.PushOptions{Policy: framework.PolicyFunc(
			func(context.Context, *framework.Conflict) (framework.Resolution, error) {
				return framework.Resolution{Outcome: framework.Merge, Deleted: &deleted}, nil
			})})
		if err != nil || res[0].Status != framework.StatusApplied || !res[0].Record.IsDeleted || string(res[0].Record.Data) != `{"title":"third","count":1}` {
			t.Fatalf("merge of is_deleted: %v %+v", err, res[0].Record)
		}
	})
}
