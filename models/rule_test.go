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

// TestRuleSQLAgreesWithGo is the differential test of last-writer-wins:
// for each pair of a stored and an incoming state, WriteIfNewer's SQL
// writes exactly when models.NewerWins.Decide says Write, in both table
// kinds. Equal times, one microsecond either way, the same time with other
// content, tombstones with the same or other data, and text that differs
// only in spacing (the framework stores canonical text, so it never sends
// such a pair; the store and Go must still agree on it).
func TestRuleSQLAgreesWithGo(t *testing.T) {
	db := synctest.OpenPostgres(t) // the SQL rule runs on PostgreSQL only
	ctx := context.Background()
	typed := migrateWithNotes(t, db)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)
	type state struct {
		at      time.Time
		deleted bool
		data    string
	}
	one := `{"title":"one","tags":["a"]}`
	cases := []struct {
		name             string
		stored, incoming state
		want             models.Verdict
	}{
		{"equal time, same content", state{t0, false, one}, state{t0, false, one}, models.Repeat},
		{"equal time, other data", state{t0, false, one}, state{t0, false, `{"title":"two","tags":["a"]}`}, models.Write},
		{"equal time, other tags", state{t0, false, one}, state{t0, false, `{"title":"one","tags":["a","b"]}`}, models.Write},
		{"equal time, deleted now", state{t0, false, one}, state{t0, true, one}, models.Write},
		{"equal time, restored", state{t0, true, one}, state{t0, false, one}, models.Write},
		{"one microsecond later, same content", state{t0, false, one}, state{t0.Add(time.Microsecond), false, one}, models.Write},
		{"one microsecond earlier, other content", state{t0, false, one}, state{t0.Add(-time.Microsecond), false, `{"title":"x","tags":[]}`}, models.Lose},
		{"one microsecond earlier, same content", state{t0, false, one}, state{t0.Add(-time.Microsecond), false, one}, models.Lose},
		{"much later", state{t0, false, one}, state{t0.Add(24 * time.Hour), false, one}, models.Write},
		{"tombstone repeated", state{t0, true, one}, state{t0, true, one}, models.Repeat},
		{"tombstone, other data", state{t0, true, one}, state{t0, true, `{"title":"gone","tags":null}`}, models.Write},
		{"tombstone, older", state{t0, false, one}, state{t0.Add(-time.Second), true, one}, models.Lose},
		{"tombstone, newer", state{t0, true, one}, state{t0.Add(time.Second), true, one}, models.Write},
		{"epoch start", state{time.Unix(0, 0).UTC(), false, one}, state{time.Unix(0, 1000).UTC(), false, one}, models.Write},
	}
	tables := []struct {
		name string
		tbl  interface {
			models.Table
			models.NewerWriter
		}
		// canon is the text the framework would compare: a typed
		// model's data is its struct's encoding.
		canon func(*models.Record) []byte
	}{
		{"typed", typed, func(r *models.Record) []byte {
			v, err := typed.FromRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			out, err := typed.ToRecord(r.Model, v)
			if err != nil {
				t.Fatal(err)
			}
			return out.Data
		}},
		{"generic", models.NewGenericTable(db), func(r *models.Record) []byte { return r.Data }},
	}
	// Spacing matters to the generic table's text comparison, and so to
	// the Go rule; a typed table compares columns, and Go their encoding.
	cases = append(cases, struct {
		name             string
		stored, incoming state
		want             models.Verdict
	}{"equal time, other spacing", state{t0, false, one}, state{t0, false, `{"title": "one", "tags": ["a"]}`}, 0})
	for _, tb := range tables {
		for i, c := range cases {
			t.Run(tb.name+"/"+c.name, func(t *testing.T) {
				model, scope, uid := "rule."+tb.name, "rule-owner", fmt.Sprintf("%s-%d", tb.name, i)
				rec := func(s state) *models.Record {
					r := &models.Record{Model: model, UID: uid, Owner: scope, ModifyAt: s.at, IsDeleted: s.deleted,
						Data: []byte(s.data), CreatedAt: t0, UpdatedAt: t0, Version: 1}
					r.Data = tb.canon(r)
					return r
				}
				write := func(idb bun.IDB, r *models.Record) bool {
					t.Helper()
					vs, err := tb.tbl.WriteIfNewer(ctx, idb, scope, models.VersionSpan{Count: 1, Take: true}, []*models.Record{r})
					if err != nil {
						t.Fatal(err)
					}
					return vs[0] != 0
				}
				if !write(db, rec(c.stored)) {
					t.Fatal("the stored state was not written")
				}
				rows, err := tb.tbl.Load(ctx, db, scope, model, []string{uid})
				if err != nil || len(rows) != 1 {
					t.Fatalf("load: %v %d", err, len(rows))
				}
				in := rec(c.incoming)
				verdict := models.NewerWins.Decide(&rows[0], in)
				if c.want != 0 && verdict != c.want {
					t.Errorf("Go says %s, want %s", verdict, c.want)
				}
				if written := write(db, in); written != (verdict == models.Write) {
					t.Errorf("SQL wrote: %v; Go says %s (stored %s %v %s, incoming %s %v %s)", written, verdict,
						rows[0].ModifyAt.Format(time.RFC3339Nano), rows[0].IsDeleted, rows[0].Data,
						in.ModifyAt.Format(time.RFC3339Nano), in.IsDeleted, in.Data)
				}
			})
		}
	}
}

// TestRuleDecide states the rule's verdicts without a store.
func TestRuleDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	rec := func(at time.Time, deleted bool, data string) *models.Record {
		return &models.Record{ModifyAt: at, IsDeleted: deleted, Data: []byte(data)}
	}
	stored := rec(t0, false, `{"a":1}`)
	for _, c := range []struct {
		rule     models.Rule
		stored   *models.Record
		incoming *models.Record
		want     models.Verdict
	}{
		{models.NewerWins, nil, rec(t0, false, `{}`), models.Write},
		{models.NewerWins, stored, rec(t0, false, `{"a":1}`), models.Repeat},
		{models.NewerWins, stored, rec(t0.In(time.FixedZone("x", 3600)), false, `{"a":1}`), models.Repeat},
		{models.NewerWins, stored, rec(t0, false, `{"a":2}`), models.Write},
		{models.NewerWins, stored, rec(t0.Add(-time.Microsecond), false, `{"a":2}`), models.Lose},
		{models.NoRule, stored, rec(t0.Add(-time.Microsecond), false, `{"a":2}`), models.Write},
		{models.NoRule, stored, rec(t0, false, `{"a":1}`), models.Repeat},
	} {
		if got := c.rule.Decide(c.stored, c.incoming); got != c.want {
			t.Errorf("%s.Decide(%v, %v) = %s, want %s", c.rule, c.stored, c.incoming, got, c.want)
		}
	}
}
