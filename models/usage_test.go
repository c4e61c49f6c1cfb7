package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// tableUsage recounts scope's rows in table by the definition of
// models.Usage: RowOverhead plus the text of each data column.
func tableUsage(t *testing.T, db *bun.DB, table, scope string, cols ...string) models.Usage {
	t.Helper()
	size := fmt.Sprint(models.RowOverhead)
	for _, c := range cols {
		if models.IsPostgres(db) {
			size += " + coalesce(octet_length(CAST(" + c + " AS text)), 0)"
		} else {
			size += " + coalesce(length(CAST(" + c + " AS BLOB)), 0)"
		}
	}
	var u models.Usage
	if err := db.NewRaw("SELECT count(*), coalesce(sum("+size+"), 0) FROM "+table+" WHERE owner = ?", scope).Scan(context.Background(), &u.Records, &u.Bytes); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUsageTriggers: every Table method that writes keeps the scope's
// counters equal to a recount, on both stores and both kinds of table
// (the typed one with a server-only column, which counts too).
func TestUsageTriggers(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		typed := migrateWithNotes(t, db)
		for _, c := range []struct {
			name  string
			table models.Table
			sql   string
			cols  []string
		}{
			{"generic", models.NewGenericTable(db), "ferry_records", []string{"data"}},
			{"typed", typed, "newer_notes", []string{"title", "tags", "secret"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				scope, model := "usage-"+c.name, "m."+c.name
				t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
				rec := func(uid, title string) *models.Record {
					return &models.Record{Model: model, UID: c.name + uid, Owner: scope, ModifyAt: t0,
						Data: []byte(fmt.Sprintf(`{"title":%q,"tags":["a","é"]}`, title)), CreatedAt: t0, UpdatedAt: t0}
				}
				check := func(when string, records int64) {
					t.Helper()
					got, err := models.ReadUsage(ctx, db, scope)
					if err != nil {
						t.Fatal(err)
					}
					if want := tableUsage(t, db, c.sql, scope, c.cols...); got != want || got.Records != records {
						t.Fatalf("%s: counters %+v, recount %+v, want %d records", when, got, want, records)
					}
				}
				check("empty", 0)
				tx := func(fn func(tx bun.Tx) error) {
					t.Helper()
					if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
						if _, err := models.ReserveVersion(ctx, tx, scope); err != nil {
							return err
						}
						return fn(tx)
					}); err != nil {
						t.Fatal(err)
					}
				}
				tx(func(tx bun.Tx) error { return c.table.Insert(ctx, tx, rec("a", "first")) })
				check("insert", 1)
				tx(func(tx bun.Tx) error { return c.table.Update(ctx, tx, rec("a", "a longer title")) })
				check("update", 1)
				tx(func(tx bun.Tx) error {
					return c.table.Upsert(ctx, tx, []*models.Record{rec("a", "x"), rec("b", "bee"), rec("c", "sea")})
				})
				check("upsert", 3)
				tx(func(tx bun.Tx) error { return c.table.Delete(ctx, tx, scope, model, []string{c.name + "b"}) })
				check("delete", 2)
				if !models.IsPostgres(db) {
					return
				}
				nw := c.table.(models.NewerWriter)
				write := func(guard *models.UsageGuard, recs ...*models.Record) error {
					for i, r := range recs {
						r.Version = int64(i + 1)
					}
					_, err := nw.WriteIfNewer(ctx, db, scope, models.VersionSpan{Count: int64(len(recs)), Take: true, Guard: guard}, recs)
					return err
				}
				later := func(r *models.Record) *models.Record { r.ModifyAt = t0.Add(time.Minute); return r }
				if err := write(nil, later(rec("a", "newer")), rec("d", "new")); err != nil {
					t.Fatal(err)
				}
				check("store-decided", 3)
				// Room for 4 records: a push that might add 2 writes nothing.
				before, _ := models.ReadUsage(ctx, db, scope)
				err := write(&models.UsageGuard{Growth: models.Usage{Records: 2, Bytes: 1000}, Limit: models.Usage{Records: 4}},
					rec("e", "e"), rec("f", "f"))
				if !errors.Is(err, models.ErrOverQuota) {
					t.Fatalf("guarded write over the quota: %v", err)
				}
				if after, _ := models.ReadUsage(ctx, db, scope); after != before {
					t.Fatalf("the refused write changed usage from %+v to %+v", before, after)
				}
				if rows, _ := c.table.Load(ctx, db, scope, model, []string{c.name + "e"}); len(rows) != 0 {
					t.Fatal("the refused write wrote")
				}
				// The same push with room (and a byte limit) is written.
				if err := write(&models.UsageGuard{Growth: models.Usage{Records: 1, Bytes: 1000}, Limit: models.Usage{Records: 4, Bytes: before.Bytes + 1000}},
					rec("e", "e")); err != nil {
					t.Fatal(err)
				}
				check("guarded store-decided", 4)
				// Growth alone larger than the quota (a new scope's row
				// has no usage to compare).
				if err := write(&models.UsageGuard{Growth: models.Usage{Records: 5}, Limit: models.Usage{Records: 4}}, rec("g", "g")); !errors.Is(err, models.ErrOverQuota) {
					t.Fatalf("growth over the quota: %v", err)
				}
			})
		}
	})
}

// TestUsageAccountingUnknownTable: on PostgreSQL, a process that does not
// register a model whose table keeps usage counters (another release's,
// on a shared database) cannot switch accounting, and says which table:
// its recount would leave that table out.
func TestUsageAccountingUnknownTable(t *testing.T) {
	ctx := context.Background()
	db := synctest.OpenPostgres(t)
	full := models.NewStore(db)
	if err := full.Register("m.note", models.Typed[newerNote]()); err != nil {
		t.Fatal(err)
	}
	if err := full.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	less := models.NewStore(db) // registers no typed model
	if err := less.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	set := func(s models.Store, on bool) error {
		st, err := s.(models.UsageAccounter).SetUsageAccounting(ctx, models.SetUsageAccountingParams{On: on})
		if st.Hold != nil {
			st.Hold.Close()
		}
		return err
	}
	if err := set(less, false); err == nil || !strings.Contains(err.Error(), "table newer_notes keeps usage counters") {
		t.Fatalf("off without the model of newer_notes: %v", err)
	}
	if err := set(full, false); err != nil {
		t.Fatal(err)
	}
	if err := set(less, true); err == nil || !strings.Contains(err.Error(), "table newer_notes") {
		t.Fatalf("on without the model of newer_notes: %v", err)
	}
	if err := set(full, true); err != nil {
		t.Fatal(err)
	}
}
