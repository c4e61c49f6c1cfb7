package framework_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// TestPurgeOnTheLifecycle: with Config.TombstoneRetention the App purges
// by itself while started: old tombstones go, young ones and live
// records stay, a device behind the purge resets, runs are counted, and
// Close stops the loop.
func TestPurgeOnTheLifecycle(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		now := new(atomic.Int64)
		now.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
		app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas,
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
			Now:                func() time.Time { return time.UnixMicro(now.Load()) },
			TombstoneRetention: 24 * time.Hour, PurgeInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ann := framework.Principal{UserID: "ann"}
		at := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
		push := func(chs ...*framework.Change) {
			t.Helper()
			if res, err := app.Push(ctx, ann, chs); err != nil || res[0].Status != framework.StatusApplied {
				t.Fatalf("push: %+v %v", res, err)
			}
		}
		tomb := func(uid string, at time.Time) *framework.Change {
			return &framework.Change{Model: "test.Item", UID: uid, ModifyAt: framework.Time{Time: at}, IsDeleted: true}
		}
		push(item("keep", at, 1), item("old", at, 2), item("young", at, 3))
		behind, err := app.Pull(ctx, ann, framework.PullRequest{})
		if err != nil {
			t.Fatal(err)
		}
		push(tomb("old", at.Add(time.Hour)))
		now.Add((36 * time.Hour).Microseconds())
		push(tomb("young", at.Add(2*time.Hour))) // deleted 0 h ago by the server's clock

		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// The loop runs at once and every 5 ms; wait (bounded) for the
		// run that removed "old".
		deadline := time.Now().Add(20 * time.Second)
		for app.Stats().PurgedTombstones < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("no purge ran: %+v", app.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
		for app.Stats().PurgeRuns < 3 { // a few more runs: nothing more to remove
			if time.Now().After(deadline) {
				t.Fatalf("the purge ran once: %+v", app.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		st := app.Stats()
		if st.PurgedTombstones != 1 || st.PurgeFailures != 0 {
			t.Fatalf("stats %+v, want one tombstone purged and no failure", st)
		}
		full, err := app.Pull(ctx, ann, framework.PullRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, r := range full.Changes {
			uids = append(uids, r.UID)
		}
		if got := strings.Join(uids, ","); got != "keep,young" {
			t.Fatalf("after the purge a new device pulls %s, want keep,young", got)
		}
		if _, err := app.Pull(ctx, ann, framework.PullRequest{Cursor: behind.Cursor}); !errors.Is(err, &framework.Error{Code: framework.CodeResetRequired}) {
			t.Fatalf("a cursor from before the purged deletion: %v, want reset_required", err)
		}
		// Closed: no run starts any more, whatever the clock says.
		now.Add((72 * time.Hour).Microseconds())
		runs := app.Stats().PurgeRuns
		time.Sleep(50 * time.Millisecond)
		if got := app.Stats().PurgeRuns; got != runs {
			t.Fatalf("purges ran after Close: %d, then %d", runs, got)
		}
	})
}

func TestPurgeConfig(t *testing.T) {
	db := synctest.OpenSQLite(t)
	for name, cfg := range map[string]framework.Config{
		"negative retention": {TombstoneRetention: -time.Hour},
		"negative interval":  {TombstoneRetention: time.Hour, PurgeInterval: -time.Second},
	} {
		cfg.DB = db
		if _, err := framework.New(cfg); err == nil || !strings.Contains(err.Error(), "Config.") {
			t.Errorf("%s: %v, want an error naming the field", name, err)
		}
	}
	for retention, want := range map[time.Duration]time.Duration{
		10 * time.Minute: time.Minute, time.Hour: 150 * time.Second, 48 * time.Hour: time.Hour, 90 * 24 * time.Hour: time.Hour, 12 * time.Hour: 30 * time.Minute,
	} {
		app, err := framework.New(framework.Config{DB: db, TombstoneRetention: retention})
		if err != nil {
			t.Fatal(err)
		}
		if got := app.Config().PurgeInterval; got != want {
			t.Errorf("retention %v: interval %v, want %v", retention, got, want)
		}
	}
	app, err := framework.New(framework.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if app.Config().PurgeInterval != 0 {
		t.Errorf("no retention, yet an interval %v", app.Config().PurgeInterval)
	}
}
