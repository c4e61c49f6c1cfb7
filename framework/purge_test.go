package framework_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// newClockApp is newTestApp with a clock the test moves by hand.
func newClockApp(t *testing.T, db *bun.DB) (*framework.App, *atomic.Int64) {
	t.Helper()
	now := new(atomic.Int64)
	now.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.UnixMicro(now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app, now
}

func TestPurgeTombstonesAndReset(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, now := newClockApp(t, db)
		ann := framework.Principal{UserID: "ann"}
		at := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
		push := func(chs ...*framework.Change) {
			t.Helper()
			res, err := app.Push(ctx, ann, chs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Status != framework.StatusApplied {
					t.Fatalf("%s: %s %v", r.UID, r.Status, r.Errors)
				}
			}
		}
		pull := func(cursor string) (*framework.PullResponse, error) {
			return app.Pull(ctx, ann, framework.PullRequest{Cursor: cursor})
		}
		push(item("keep", at, 1), item("gone", at, 2), item("revived", at, 3))
		before, _ := pull("") // a device that never sees the deletions
		del := func(uid string, at time.Time) *framework.Change {
			return &framework.Change{Model: "test.Item", UID: uid, ModifyAt: framework.Time{Time: at}, IsDeleted: true}
		}
		push(del("gone", at.Add(time.Hour)), del("revived", at.Add(time.Hour)))
		after, _ := pull(before.Cursor) // a device that saw them

		now.Add((8 * 24 * time.Hour).Microseconds())
		push(item("revived", at.Add(2*time.Hour), 4)) // brought back before the purge
		n, err := app.PurgeTombstones(ctx, 7*24*time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("purged %d, %v; want 1", n, err)
		}
		if _, err := pull(before.Cursor); !errors.Is(err, &framework.Error{Code: framework.CodeResetRequired}) {
			t.Fatalf("stale cursor: %v, want reset_required", err)
		}
		resp, err := pull(after.Cursor)
		if err != nil || len(resp.Changes) != 1 || resp.Changes[0].UID != "revived" {
			t.Fatalf("up-to-date cursor: %v %+v", err, resp)
		}
		fresh, _ := pull("")
		if len(fresh.Changes) != 2 {
			t.Fatalf("fresh pull: %d records, want keep and revived", len(fresh.Changes))
		}
		if n, _ := app.PurgeTombstones(ctx, 7*24*time.Hour); n != 0 {
			t.Fatalf("second purge removed %d", n)
		}
	})
}

// TestCursorAheadOfStoreResets: a cursor from a server whose data was
// restored to an earlier point must not hide new changes below it.
func TestCursorAheadOfStoreResets(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app := newTestApp(t, db)
		ann := framework.Principal{UserID: "ann"}
		if _, err := app.Push(ctx, ann, []*framework.Change{item("a", time.Now().Add(-time.Minute), 1)}); err != nil {
			t.Fatal(err)
		}
		page, err := app.Pull(ctx, ann, framework.PullRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.NewRaw("UPDATE ferry_scopes SET version = 0").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Pull(ctx, ann, framework.PullRequest{Cursor: page.Cursor}); !errors.Is(err, &framework.Error{Code: framework.CodeResetRequired}) {
			t.Fatalf("cursor ahead of the store: %v", err)
		}
	})
}

// TestPurgeWhilePaging: a purge between two pages of a device's pull
// resets it (a tombstone in the pages not yet read may be gone), while a
// pull that starts after the purge pages through to the end.
func TestPurgeWhilePaging(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, now := newClockApp(t, db)
		ann := framework.Principal{UserID: "ann"}
		at := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
		push := func(chs ...*framework.Change) {
			if _, err := app.Push(ctx, ann, chs); err != nil {
				t.Fatal(err)
			}
		}
		push(item("a", at, 1), item("b", at, 1))
		synced, _ := app.Pull(ctx, ann, framework.PullRequest{})
		push(item("c", at, 1), &framework.Change{Model: "test.Item", UID: "b", ModifyAt: framework.Time{Time: at.Add(time.Hour)}, IsDeleted: true})
		page, err := app.Pull(ctx, ann, framework.PullRequest{Cursor: synced.Cursor, Limit: 1})
		if err != nil || !page.HasMore {
			t.Fatalf("first page: %v %+v", err, page)
		}
		now.Add((8 * 24 * time.Hour).Microseconds())
		if n, err := app.PurgeTombstones(ctx, 7*24*time.Hour); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if _, err := app.Pull(ctx, ann, framework.PullRequest{Cursor: page.Cursor, Limit: 1}); !errors.Is(err, &framework.Error{Code: framework.CodeResetRequired}) {
			t.Fatalf("a purge between pages: %v, want reset_required", err)
		}
		cursor, pages := "", 0
		for {
			resp, err := app.Pull(ctx, ann, framework.PullRequest{Cursor: cursor, Limit: 1})
			if err != nil {
				t.Fatalf("page %d of a fresh pull: %v", pages, err)
			}
			cursor, pages = resp.Cursor, pages+1
			if !resp.HasMore {
				break
			}
		}
		if pages != 2 {
			t.Fatalf("fresh pull took %d pages, want 2 (a and c)", pages)
		}
	})
}

// TestPurgeResetsACursorAtZero: a cursor taken while the user had nothing
// names position 0; after a purge it must reset like any older cursor.
func TestPurgeResetsACursorAtZero(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, now := newClockApp(t, db)
		zed := framework.Principal{UserID: "zed"}
		empty, err := app.Pull(ctx, zed, framework.PullRequest{})
		if err != nil || len(empty.Changes) != 0 {
			t.Fatalf("empty pull: %v %+v", err, empty)
		}
		at := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
		del := &framework.Change{Model: "test.Item", UID: "x", ModifyAt: framework.Time{Time: at.Add(time.Hour)}, IsDeleted: true}
		for _, ch := range []*framework.Change{item("x", at, 1), del} {
			if _, err := app.Push(ctx, zed, []*framework.Change{ch}); err != nil {
				t.Fatal(err)
			}
		}
		now.Add((8 * 24 * time.Hour).Microseconds())
		if n, err := app.PurgeTombstones(ctx, 7*24*time.Hour); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if _, err := app.Pull(ctx, zed, framework.PullRequest{Cursor: empty.Cursor}); !errors.Is(err, &framework.Error{Code: framework.CodeResetRequired}) {
			t.Fatalf("cursor at 0 after a purge: %v, want reset_required", err)
		}
		if _, err := app.Pull(ctx, zed, framework.PullRequest{}); err != nil {
			t.Fatalf("no cursor: %v", err)
		}
		since, err := app.ReadSince(ctx, zed, framework.SinceRequest{Checkpointed: true})
		if !errors.Is(err, &framework.Error{Code: framework.CodeResetRequired}) {
			t.Fatalf("checkpoint 0 after a purge: %v %+v", err, since)
		}
	})
}
