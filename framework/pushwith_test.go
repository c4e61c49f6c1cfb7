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
		// All or nothing: one loser aborts the batch.
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
		if len(since.Records) != 2 || since.Version != since.Records[1].Version {
			t.Fatalf("after abort: %d records, version %d", len(since.Records), since.Version)
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
