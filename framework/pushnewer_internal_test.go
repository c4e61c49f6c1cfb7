package framework

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
)

// TestStoreDecidedPushRaces: a change the store-decided statement did not
// write, whose stored row then changes in a way that does not explain why
// (purged, or rewritten older by a server-side write), is settled again
// the ordinary way; and the push cursor, no longer sure that the push's
// versions are consecutive, does not move past both.
func TestStoreDecidedPushRaces(t *testing.T) {
	db := synctest.Open(t, synctest.Postgres) // the path exists on PostgreSQL only
	ctx := context.Background()
	app, err := New(Config{DB: db, Schemas: fstest.MapFS{"item.json": {Data: []byte(`{"type":"object"}`)}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", ModelOptions{Schema: "item.json"})
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	me := Principal{UserID: "me"}
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	change := func(uid string, at time.Time, data string) *Change {
		return &Change{Model: "test.Item", UID: uid, ModifyAt: Time{Time: at}, Data: json.RawMessage(data)}
	}
	for _, c := range []struct {
		name   string
		meddle string // SQL run between the write and the reading back
	}{
		{"purged meanwhile", `DELETE FROM ferry_records WHERE uid = 'x'`},
		{"rewritten older meanwhile", `UPDATE ferry_records SET modify_at = modify_at - interval '1 day', data = '{"by":"server"}' WHERE uid = 'x'`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := db.ExecContext(ctx, `DELETE FROM ferry_records`); err != nil {
				t.Fatal(err)
			}
			if _, err := app.Push(ctx, me, []*Change{change("x", t0.Add(time.Minute), `{"v":"newer"}`)}); err != nil {
				t.Fatal(err)
			}
			app.afterNewerWrite = func() {
				if _, err := db.ExecContext(ctx, c.meddle); err != nil {
					t.Error(err)
				}
			}
			defer func() { app.afterNewerWrite = nil }()
			// y is written by the statement; x loses to the stored newer
			// state, which then changes under the push.
			res, out, err := app.push(ctx, me, []*Change{change("y", t0, `{}`), change("x", t0, `{"v":"mine"}`)}, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Status != StatusApplied || res[1].Status != StatusApplied || string(res[1].Record.Data) != `{"v":"mine"}` {
				t.Fatalf("results %+v %+v, want both applied, x with the pushed data", res[0], res[1].Record)
			}
			// y's write is no longer vouched for; x's, from the ordinary
			// path's own transaction, may be.
			if out[0].slot != 0 {
				t.Error("y's version is still vouched for after the push was settled in two transactions")
			}
			before := &cursor{Pos: map[string]int64{"me": res[0].Record.Version - 1}}
			if after := advanceCursor(before, "me", out); after != before {
				t.Errorf("the push cursor moved from %v to %v across two transactions", before.Pos, after.Pos)
			}
			got, err := app.Get(ctx, "me", "test.Item", "x")
			if err != nil || string(got.Data) != `{"v":"mine"}` {
				t.Fatalf("stored x: %+v %v", got, err)
			}
		})
	}
}
