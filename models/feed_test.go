package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestReadFeed merges an owner's tables by version: a page ends at the
// limit-th version across all of them, the generic table serves only the
// models asked for, tombstones can be left out, and nobody else's records
// appear.
func TestReadFeed(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		typed := migrateWithNotes(t, db)
		generic := models.GenericTable{}
		now := time.Now().UTC().Truncate(time.Microsecond)
		// Versions 1..12 of "me", spread over three models; "you" owns the
		// same versions in the same tables.
		for _, owner := range []string{"me", "you"} {
			var notes, as, bs []*models.Record
			for v := int64(1); v <= 12; v++ {
				r := &models.Record{UID: fmt.Sprintf("%s-%d", owner, v), Owner: owner, ModifyAt: now, Version: v,
					IsDeleted: v%4 == 0, Data: []byte(`{"title":"t"}`), CreatedAt: now, UpdatedAt: now}
				switch v % 3 {
				case 0:
					r.Model = "m.Note"
					notes = append(notes, r)
				case 1:
					r.Model = "m.A"
					as = append(as, r)
				default:
					r.Model = "m.B"
					bs = append(bs, r)
				}
			}
			for _, w := range []struct {
				t    models.Table
				recs []*models.Record
			}{{typed, notes}, {generic, as}, {generic, bs}} {
				if err := w.t.Upsert(ctx, db, w.recs); err != nil {
					t.Fatal(err)
				}
			}
		}
		versions := func(sources []models.FeedSource, p models.FeedParams) string {
			t.Helper()
			p.Owner = "me"
			recs, err := models.ReadFeed(ctx, db, sources, p)
			if err != nil {
				t.Fatal(err)
			}
			out := ""
			for _, r := range recs {
				if r.Owner != "me" {
					t.Fatalf("feed of me returned %+v", r)
				}
				out += fmt.Sprintf("%d%s ", r.Version, r.Model[2:])
			}
			return out
		}
		all := []models.FeedSource{{Table: typed, Models: []string{"m.Note"}}, {Table: generic, Models: []string{"m.A", "m.B"}}}
		for _, c := range []struct {
			sources []models.FeedSource
			p       models.FeedParams
			want    string
		}{
			{all, models.FeedParams{UpTo: 12}, "1A 2B 3Note 4A 5B 6Note 7A 8B 9Note 10A 11B 12Note "},
			{all, models.FeedParams{UpTo: 12, Limit: 5}, "1A 2B 3Note 4A 5B "},
			{all, models.FeedParams{After: 5, UpTo: 10, Limit: 3}, "6Note 7A 8B "},
			{all, models.FeedParams{After: 2, UpTo: 9, SkipDeleted: true, Limit: 4}, "3Note 5B 6Note 7A "},
			{[]models.FeedSource{{Table: generic, Models: []string{"m.B"}}, {Table: typed, Models: []string{"m.Note"}}},
				models.FeedParams{UpTo: 12, Limit: 3}, "2B 3Note 5B "},
			{all[:1], models.FeedParams{After: 3, UpTo: 12, Limit: 2}, "6Note 9Note "},
			{all, models.FeedParams{After: 12, UpTo: 12, Limit: 5}, ""},
		} {
			if got := versions(c.sources, c.p); got != c.want {
				t.Errorf("%+v: got %q, want %q", c.p, got, c.want)
			}
		}
	})
}

// TestMigrateDropsTheChangeIndex: a store the first version of the core
// migration created (with the ferry_changes table) is brought to the feed
// layout.
func TestMigrateDropsTheChangeIndex(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		if err := models.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`DROP INDEX ferry_records_owner_version`,
			`CREATE TABLE ferry_changes (model varchar(128), uid varchar(64), scope varchar(255), version bigint, is_deleted boolean, PRIMARY KEY (model, uid))`,
			`DELETE FROM ferry_migrations WHERE name = '20261126000002'`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := models.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		var tables int
		if err := db.NewRaw(`SELECT count(*) FROM ferry_changes`).Scan(ctx, &tables); err == nil {
			t.Error("ferry_changes survived the migration")
		}
		// The feed index is back: creating it again under the same name fails.
		if _, err := db.ExecContext(ctx, `CREATE INDEX ferry_records_owner_version ON ferry_records (owner, version)`); err == nil {
			t.Error("the migration did not create ferry_records_owner_version")
		}
	})
}
