package adapter_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/adapter"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

func newApp(t *testing.T, db *bun.DB) *framework.App {
	t.Helper()
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"})
	app.MustRegisterSchema("data.Profile", framework.ModelOptions{Schema: "note.json", SelfOwned: true})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func push(t *testing.T, app *framework.App, p framework.Principal, uid, data string, deleted bool) *framework.Record {
	t.Helper()
	return pushTo(t, app, p, "data.Note", uid, data, deleted)
}

func pushTo(t *testing.T, app *framework.App, p framework.Principal, model, uid, data string, deleted bool) *framework.Record {
	t.Helper()
	ch := &framework.Change{Model: model, UID: uid, ModifyAt: framework.Time{Time: t0}, IsDeleted: deleted}
	if data != "" {
		ch.Data = json.RawMessage(data)
	}
	res, err := app.Push(context.Background(), p, []*framework.Change{ch})
	if err != nil || res[0].Status != framework.StatusApplied {
		t.Fatalf("push %s: %+v %v", uid, res, err)
	}
	return res[0].Record
}

func pulled(t *testing.T, app *framework.App, p framework.Principal) map[string]*framework.Record {
	t.Helper()
	page, err := app.Pull(context.Background(), p, framework.PullRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*framework.Record{}
	for _, r := range page.Changes {
		if r.Owner != p.UserID {
			t.Fatalf("%s pulled %+v", p.UserID, r)
		}
		out[r.UID] = r
	}
	return out
}

func TestServerStateReadsAndWritesNothing(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newApp(t, db)
		ctx := context.Background()
		ann, bob := framework.Principal{UserID: "ann"}, framework.Principal{UserID: "bob"}
		live := push(t, app, ann, "live", `{"title":"x"}`, false)
		dead := push(t, app, ann, "dead", `{"title":"y"}`, true)
		push(t, app, bob, "bobs", `{"title":"b"}`, false)
		pushTo(t, app, bob, "data.Profile", "bob", `{}`, false)
		before := pulled(t, app, ann)

		refs := []adapter.Ref{{Model: "data.Note", UID: "live"}, {Model: "data.Note", UID: "dead"}, {Model: "data.Note", UID: "missing"},
			{Model: "data.Note", UID: "bobs"}, {Model: "data.Profile", UID: "bob"}, {Model: "data.Nope", UID: "x"}, {Model: "data.Note", UID: "not a uid!"}, {Model: "data.Note", UID: "live"}}
		state, err := adapter.ServerState(ctx, app, ann, refs)
		if err != nil {
			t.Fatal(err)
		}
		if len(state) != 2 || state[refs[0]].Version != live.Version || !state[refs[1]].IsDeleted || state[refs[1]].Version != dead.Version {
			t.Fatalf("state: %+v", state)
		}
		after := pulled(t, app, ann)
		if len(after) != len(before) || after["live"].Version != live.Version {
			t.Fatalf("ServerState wrote: before %v after %v", before, after)
		}
	})
}

func TestResend(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newApp(t, db)
		ctx := context.Background()
		ann, bob := framework.Principal{UserID: "ann"}, framework.Principal{UserID: "bob"}
		live := push(t, app, ann, "live", `{"title":"x"}`, false)
		dead := push(t, app, ann, "dead", `{"title":"y"}`, true)
		moved := push(t, app, ann, "moved", `{"title":"old"}`, false)
		bobs := push(t, app, bob, "bobs", `{"title":"b"}`, false)
		bobsProfile := pushTo(t, app, bob, "data.Profile", "bob", `{}`, false)

		// Another device writes "moved" between Resend's read and its
		// write: that newer state must stay.
		armed := true
		app.OnValidate().Bind(&hook.Handler[*framework.ValidateEvent]{ID: "test.meddle", Func: func(e *framework.ValidateEvent) error {
			if armed && e.Change.UID == "moved" {
				armed = false
				push(t, app, ann, "moved", `{"title":"newer"}`, false)
			}
			return e.Next()
		}})

		// Bob's uid "bobs" is, for Ann, a record she does not hold: a
		// tombstone of her own; Bob's self-owned record is his alone.
		refs := []adapter.Ref{{Model: "data.Note", UID: "live"}, {Model: "data.Note", UID: "dead"}, {Model: "data.Note", UID: "missing"}, {Model: "data.Note", UID: "moved"},
			{Model: "data.Note", UID: "bobs"}, {Model: "data.Profile", UID: "bob"}, {Model: "data.Nope", UID: "x"}, {Model: "data.Note", UID: "live"}}
		got, err := adapter.Resend(ctx, app, ann, refs)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 {
			t.Fatalf("resent %d records: %+v", len(got), got)
		}
		if r := got[refs[4]]; r == nil || !r.IsDeleted || r.Owner != "ann" {
			t.Errorf("bobs for ann: %+v, want a tombstone of ann's", r)
		}
		if r := got[refs[0]]; r.Version <= moved.Version || r.IsDeleted || !framework.JSONEqual(r.Data, json.RawMessage(`{"title":"x"}`)) {
			t.Errorf("live: %+v (was version %d)", r, live.Version)
		}
		if r := got[refs[1]]; r.Version <= moved.Version || !r.IsDeleted {
			t.Errorf("dead: %+v (was version %d)", r, dead.Version)
		}
		if r := got[refs[2]]; r == nil || !r.IsDeleted || r.Owner != "ann" {
			t.Errorf("missing: %+v, want a new tombstone", r)
		}
		if r := got[refs[3]]; !framework.JSONEqual(r.Data, json.RawMessage(`{"title":"newer"}`)) {
			t.Errorf("moved: %+v, want the newer state kept", r)
		}
		stored := pulled(t, app, ann)
		if len(stored) != 5 || !framework.JSONEqual(stored["moved"].Data, json.RawMessage(`{"title":"newer"}`)) || stored["live"].Version != got[refs[0]].Version {
			t.Errorf("stored: %+v", stored)
		}
		theirs := pulled(t, app, bob)
		if b := theirs["bobs"]; b.Version != bobs.Version || b.IsDeleted {
			t.Errorf("bob's note was touched: %+v", b)
		}
		if b := theirs["bob"]; b.Version != bobsProfile.Version {
			t.Errorf("bob's profile was touched: %+v", b)
		}
	})
}
