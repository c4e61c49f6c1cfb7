package framework_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// TestReadLost: what a removed member's device is told to delete, on both
// stores: every record written before the removal (changed after it too),
// never one created after it; paged, with a bound fixed by the first page
// and a bounded scan per page; and ReadSince/ReadInSpace of a space
// answered as for a space that does not exist to a non-member.
func TestReadLost(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		var clock atomic.Int64 // seconds after start: creation times strictly apart
		start := time.Now().UTC().Add(-time.Hour)
		app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, Spaces: true,
			Now:    func() time.Time { return start.Add(time.Duration(clock.Load()) * time.Second) },
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ann, bob := framework.Principal{UserID: "ann"}, framework.Principal{UserID: "bob"}
		write := func(ch *framework.Change) {
			t.Helper()
			clock.Add(1)
			ch.ModifyAt = framework.Time{Time: start.Add(time.Duration(clock.Load()) * time.Second)}
			res, err := app.Push(ctx, ann, []*framework.Change{ch})
			if err != nil || res[0].Status != framework.StatusApplied {
				t.Fatalf("push %s/%s: %+v %v", ch.Model, ch.UID, res, err)
			}
		}
		item := func(uid string) *framework.Change {
			return &framework.Change{Model: "test.Item", UID: uid, Space: "L", Data: json.RawMessage(`{"n":1}`)}
		}
		write(&framework.Change{Model: framework.SpaceModel, UID: "L", Space: "L", Data: json.RawMessage(`{}`)})
		write(&framework.Change{Model: framework.MemberModel, UID: "bob", Space: "L", Data: json.RawMessage(`{"role":"reader"}`)})
		for _, uid := range []string{"a1", "a2", "a3", "a4"} {
			write(item(uid))
		}
		seen, err := app.ReadSince(ctx, bob, framework.SinceRequest{Space: "L", After: math.MaxInt64})
		if err != nil {
			t.Fatal(err)
		}
		if recs, err := app.ReadInSpace(ctx, bob, "L", "test.Item", []string{"a1", "zz"}); err != nil || len(recs) != 1 {
			t.Fatalf("a member's ReadInSpace: %v %v", recs, err)
		}
		write(item("a5")) // after bob's checkpoint, before his removal
		write(&framework.Change{Model: framework.MemberModel, UID: "bob", Space: "L", IsDeleted: true})
		for i := range 25 {
			write(item("n" + string(rune('a'+i))))
		}
		write(item("a2")) // existed before the removal, changed after it

		// Not a member any more: every read of the space is the answer a
		// space that does not exist gets.
		_, lostErr := app.ReadSince(ctx, bob, framework.SinceRequest{Space: "L"})
		_, noneErr := app.ReadSince(ctx, bob, framework.SinceRequest{Space: "NOPE"})
		_, inErr := app.ReadInSpace(ctx, bob, "L", "test.Item", []string{"a1"})
		if !errors.Is(lostErr, framework.ErrForbidden) || lostErr.Error() != noneErr.Error() || inErr.Error() != noneErr.Error() {
			t.Fatalf("reads of a lost space: %v / %v / %v", lostErr, noneErr, inErr)
		}

		// Paged by one: the scan cap makes some pages empty but not done.
		var got []string
		req := framework.LostRequest{Space: "L", Model: "test.Item", Seen: seen.Version, Limit: 1}
		pages, empty := 0, 0
		for {
			resp, err := app.ReadLost(ctx, bob, req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(resp.UIDs) > req.Limit {
				t.Fatalf("page %d holds %d uids", pages, len(resp.UIDs))
			}
			if len(resp.UIDs) == 0 && !resp.Done {
				empty++
			}
			got = append(got, resp.UIDs...)
			if req.UpTo != 0 && resp.UpTo != req.UpTo {
				t.Fatalf("the bound moved from %d to %d", req.UpTo, resp.UpTo)
			}
			req.UpTo, req.After = resp.UpTo, resp.Last
			if resp.Done {
				break
			}
			if pages > 100 {
				t.Fatal("the listing never ends")
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, []string{"a1", "a2", "a3", "a4", "a5"}) {
			t.Fatalf("listed %v", got)
		}
		if empty == 0 {
			t.Fatalf("25 records created after the removal were skipped without an empty page (%d pages)", pages)
		}
		// Done is done: an edit of a listed record after the listing is not
		// news, within the same bound.
		write(item("a3"))
		if resp, err := app.ReadLost(ctx, bob, req); err != nil || len(resp.UIDs) != 0 || !resp.Done {
			t.Fatalf("after the listing: %+v %v", resp, err)
		}
		// Without a limit, one call lists it all.
		all, err := app.ReadLost(ctx, bob, framework.LostRequest{Space: "L", Model: "test.Item", Seen: seen.Version})
		if err != nil || !all.Done || len(all.UIDs) != 5 {
			t.Fatalf("unpaged: %+v %v", all, err)
		}
		// An unproven checkpoint (WatermelonDB's number) counts only up to
		// the removal, however far ahead it claims to be; several models
		// are listed in one pass, each uid with its model.
		forged, err := app.ReadLost(ctx, bob, framework.LostRequest{Space: "L", Models: []string{"test.Item", framework.MemberModel},
			Seen: math.MaxInt64, Unproven: true})
		if err != nil || !forged.Done {
			t.Fatalf("unproven: %+v %v", forged, err)
		}
		var listed []string
		for _, r := range forged.Records {
			listed = append(listed, r.Model+"/"+r.UID)
		}
		sort.Strings(listed)
		want := []string{framework.MemberModel + "/ann", framework.MemberModel + "/bob", "test.Item/a1", "test.Item/a2", "test.Item/a3", "test.Item/a4", "test.Item/a5"}
		if !slices.Equal(listed, want) {
			t.Fatalf("unproven, forged far ahead: listed %v, want %v", listed, want)
		}
		// Unproven from someone the space never had: a stranger's answer.
		_, strangerErr := app.ReadLost(ctx, framework.Principal{UserID: "carol"}, framework.LostRequest{Space: "L", Model: "test.Item", Seen: 3, Unproven: true})
		if !errors.Is(strangerErr, framework.ErrForbidden) || strangerErr.Error() != noneErr.Error() {
			t.Fatalf("an unproven listing for a stranger: %v", strangerErr)
		}
		// A space that does not exist lists nothing; a bad one is refused.
		if resp, err := app.ReadLost(ctx, bob, framework.LostRequest{Space: "NOPE", Model: "test.Item", Seen: 3}); err != nil || len(resp.UIDs) != 0 || !resp.Done {
			t.Fatalf("a space that does not exist: %+v %v", resp, err)
		}
		if _, err := app.ReadLost(ctx, bob, framework.LostRequest{Space: "a/b", Model: "test.Item"}); !errors.Is(err, framework.ErrForbidden) {
			t.Fatalf("a bad space: %v", err)
		}
		if _, err := app.ReadLost(ctx, bob, framework.LostRequest{Space: "L", Model: "test.Nope"}); err == nil {
			t.Fatal("an unknown model is listed")
		}
	})
}
