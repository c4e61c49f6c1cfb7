package framework_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// optimistic is an RxDB-style policy: the change wins only when the client
// knew the stored state.
var optimistic = framework.PolicyFunc(func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
	if c.Assumed != nil && c.Assumed.IsDeleted == c.Stored.IsDeleted && framework.JSONEqual(c.Assumed.Data, c.Stored.Data) {
		return framework.Resolution{Outcome: framework.TakeIncoming}, nil
	}
	return framework.Resolution{Outcome: framework.KeepStored}, nil
})

func TestPushWithPolicyAndAbort(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		ctx := context.Background()
		ann := framework.Principal{UserID: "ann"}
		at := time.Now().Add(-time.Hour).UTC()
		if _, err := app.Push(ctx, ann, []*framework.Change{item("a", at, 1), item("b", at, 1)}); err != nil {
			t.Fatal(err)
		}
		// An older modify_at wins under the optimistic policy when the
		// assumed state matches, and loses when it does not.
		good := item("a", at.Add(-time.Minute), 2)
		good.Assumed = &framework.Record{Data: []byte(`{"n": 1}`)}
		bad := item("b", at.Add(time.Minute), 2)
		bad.Assumed = &framework.Record{Data: []byte(`{"n":0}`)}
		res, err := app.PushWith(ctx, ann, []*framework.Change{good, bad}, framework.PushOptions{Policy: optimistic})
		if err != nil || res[0].Status != framework.StatusApplied || res[1].Status != framework.StatusStale {
			t.Fatalf("optimistic: %v %+v", err, res)
		}
		// All or nothing: one loser aborts the batch, and takes no version.
		before, err := app.ReadSince(ctx, ann, framework.SinceRequest{})
		if err != nil {
			t.Fatal(err)
		}
		c := item("c", at, 1)
		lose := item("b", at.Add(time.Minute), 3)
		res, err = app.PushWith(ctx, ann, []*framework.Change{c, lose}, framework.PushOptions{Policy: optimistic, AbortOnStale: true})
		if !errors.Is(err, framework.ErrConflict) || res[1].Status != framework.StatusStale || res[0].Status != "" {
			t.Fatalf("abort: %v %+v", err, res)
		}
		since, err := app.ReadSince(ctx, ann, framework.SinceRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(since.Records) != 2 || since.Version != before.Version {
			t.Fatalf("after abort: %d records, version %d, before it %d", len(since.Records), since.Version, before.Version)
		}
		for _, r := range since.Records {
			if r.UID == "c" {
				t.Fatal("aborted push wrote c")
			}
		}
	})
}

func TestReadSince(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		ctx := context.Background()
		ann := framework.Principal{UserID: "ann"}
		at := time.Now().Add(-time.Hour).UTC()
		for i := 0; i < 7; i++ {
			if _, err := app.Push(ctx, ann, []*framework.Change{item(string(rune('a'+i)), at, i)}); err != nil {
				t.Fatal(err)
			}
		}
		del := &framework.Change{Model: "test.Item", UID: "a", ModifyAt: framework.Time{Time: at.Add(time.Second)}, IsDeleted: true}
		if _, err := app.Push(ctx, ann, []*framework.Change{del}); err != nil {
			t.Fatal(err)
		}
		all, err := app.ReadSince(ctx, ann, framework.SinceRequest{})
		if err != nil || len(all.Records) != 7 || all.Version != 8 || all.HasMore {
			t.Fatalf("all: %v %d v%d %v", err, len(all.Records), all.Version, all.HasMore)
		}
		live, _ := app.ReadSince(ctx, ann, framework.SinceRequest{SkipDeleted: true})
		if len(live.Records) != 6 {
			t.Fatalf("live: %d", len(live.Records))
		}
		page, _ := app.ReadSince(ctx, ann, framework.SinceRequest{After: 2, Limit: 3})
		if len(page.Records) != 3 || !page.HasMore || page.Records[0].Version != 3 {
			t.Fatalf("page: %d %v", len(page.Records), page.HasMore)
		}
		other, _ := app.ReadSince(ctx, framework.Principal{UserID: "bob"}, framework.SinceRequest{})
		if len(other.Records) != 0 || other.Version != 0 {
			t.Fatalf("bob sees %d", len(other.Records))
		}
	})
}

// TestSameRecordTwiceInOneBatch: the bulk path keeps only a record's last
// state, and every change still gets its answer.
func TestSameRecordTwiceInOneBatch(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		ctx := context.Background()
		ann := framework.Principal{UserID: "ann"}
		at := time.Now().Add(-time.Hour).UTC()
		res, err := app.Push(ctx, ann, []*framework.Change{item("a", at, 1), item("b", at, 1), item("a", at.Add(time.Second), 2), item("a", at.Add(-time.Second), 3)})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Status != "applied" || res[2].Status != "applied" || res[3].Status != "stale" || string(res[3].Record.Data) != `{"n":2}` {
			t.Fatalf("results %+v", res)
		}
		page, err := app.Pull(ctx, ann, framework.PullRequest{})
		if err != nil || len(page.Changes) != 2 {
			t.Fatalf("pull: %v %d", err, len(page.Changes))
		}
		last := page.Changes[1]
		if last.UID != "a" || string(last.Data) != `{"n":2}` || last.Version != res[2].Record.Version {
			t.Fatalf("stored %+v, want a's second state at version %d", last, res[2].Record.Version)
		}
	})
}

type flakyPlugin struct{ fail bool }

func (p *flakyPlugin) Name() string { return "flaky" }
func (p *flakyPlugin) Setup(*framework.App) error {
	if p.fail {
		return errors.New("not configured")
	}
	return nil
}

func TestOptionsAndPluginRetry(t *testing.T) {
	db := synctest.OpenSQLite(t)
	app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, MaxChanges: 2})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A plugin whose setup failed is not in use: a fixed one may follow.
	if err := app.Use(&flakyPlugin{fail: true}); err == nil {
		t.Fatal("failing setup accepted")
	}
	if err := app.Use(&flakyPlugin{}); err != nil {
		t.Fatalf("retry after a failed setup: %v", err)
	}

	ctx := context.Background()
	ann := framework.Principal{UserID: "ann"}
	at := time.Now().Add(-time.Hour)
	three := []*framework.Change{item("a", at, 1), item("b", at, 1), item("c", at, 1)}
	if _, err := app.Push(ctx, ann, three); !errors.Is(err, &framework.Error{Code: framework.CodeTooLarge}) {
		t.Fatalf("over MaxChanges: %v", err)
	}
	if _, err := app.PushWith(ctx, ann, three, framework.PushOptions{MaxChanges: 3}); err != nil {
		t.Fatalf("with a per-push limit: %v", err)
	}

	// A merging policy may decide is_deleted too.
	deleted := true
	tombstoning := framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
		return framework.Resolution{Outcome: framework.Merge, Data: []byte(`{"n":9}`), Deleted: &deleted}, nil
	})
	res, err := app.PushWith(ctx, ann, []*framework.Change{item("a", at.Add(time.Second), 2)}, framework.PushOptions{Policy: tombstoning})
	if err != nil || !res[0].Record.IsDeleted || string(res[0].Record.Data) != `{"n":9}` {
		t.Fatalf("merge: %v %+v", err, res[0].Record)
	}
}
