package models_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

type newerNote struct {
	bun.BaseModel `bun:"table:newer_notes"`
	models.Base
	Title  string   `bun:"title,notnull" json:"title"`
	Tags   []string `bun:"tags" json:"tags"`
	Secret string   `bun:"secret,notnull" json:"-"`
}

// migrateWithNotes migrates db and creates the newer_notes table.
func migrateWithNotes(t *testing.T, db *bun.DB) *models.TypedTable[newerNote, *newerNote] {
	t.Helper()
	ctx := context.Background()
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	typed, err := models.NewTypedTable[newerNote](db)
	if err != nil {
		t.Fatal(err)
	}
	if err := typed.CreateTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	return typed
}

// TestWriteIfNewer decides last-writer-wins in one statement: new rows are
// inserted, newer changes replace, older ones and exact repeats are
// skipped, another owner's row is never touched, versions come from the
// scope's counter in order, and only written rows change.
func TestWriteIfNewer(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		typed := migrateWithNotes(t, db)
		tables := map[string]interface {
			models.Table
			models.NewerWriter
		}{"typed": typed, "generic": models.GenericTable{}}
		for name, tbl := range tables {
			t.Run(name, func(t *testing.T) {
				if !models.IsPostgres(db) {
					if tbl.CanWriteIfNewer(db) {
						t.Fatal("SQLite claims to write if newer")
					}
					return
				}
				if !tbl.CanWriteIfNewer(db) {
					t.Fatal("PostgreSQL cannot write if newer")
				}
				model, scope := "m."+name, "owner-"+name
				t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
				rec := func(uid string, at time.Time, title string, deleted bool) *models.Record {
					return &models.Record{Model: model, UID: name + uid, Owner: scope, ModifyAt: at,
						IsDeleted: deleted, Data: []byte(fmt.Sprintf(`{"title":%q,"tags":["a"]}`, title)),
						CreatedAt: t0, UpdatedAt: t0}
				}
				write := func(idb bun.IDB, owner string, recs ...*models.Record) []int64 {
					t.Helper()
					for i, r := range recs {
						r.Version = int64(i + 1)
					}
					vs, err := tbl.WriteIfNewer(ctx, idb, owner, models.VersionSpan{Count: int64(len(recs)), Take: true}, recs)
					if err != nil {
						t.Fatal(err)
					}
					return vs
				}
				// A row another owner holds, written the ordinary way.
				foreign := rec("-foreign", t0, "theirs", false)
				foreign.Owner, foreign.Version = "someone-else", 1
				if err := tbl.Upsert(ctx, db, []*models.Record{foreign}); err != nil {
					t.Fatal(err)
				}
				got := write(db, scope, rec("1", t0, "one", false), rec("2", t0, "two", false))
				if fmt.Sprint(got) != "[1 2]" {
					t.Fatalf("first writes got versions %v, want [1 2]", got)
				}
				mine := rec("-foreign", t0.Add(time.Hour), "mine", false)
				got = write(db, scope,
					rec("1", t0.Add(-time.Second), "older", false), // loses
					rec("2", t0, "two", false),                     // an exact repeat
					rec("3", t0, "three", false),                   // new
					mine,                                           // another owner's uid: a record of mine
				)
				if fmt.Sprint(got) != "[0 0 5 6]" {
					t.Fatalf("second writes got versions %v, want [0 0 5 6]", got)
				}
				// Same modify_at but other content wins (a tie goes to the
				// incoming change); so does a delete at the same time.
				got = write(db, scope, rec("1", t0, "one, edited", false), rec("2", t0, "two", true))
				if fmt.Sprint(got) != "[7 8]" {
					t.Fatalf("tie writes got versions %v, want [7 8]", got)
				}
				// In a transaction, calls share one span: the first takes it,
				// and each record has its place in it.
				if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					span := models.VersionSpan{Count: 3, Take: true}
					r5, r4 := rec("5", t0, "five", false), rec("4", t0, "four", false)
					r5.Version, r4.Version = 3, 1
					a, err := tbl.WriteIfNewer(ctx, tx, scope, span, []*models.Record{r5})
					if err != nil {
						return err
					}
					span.Take = false
					b, err := tbl.WriteIfNewer(ctx, tx, scope, span, []*models.Record{r4})
					if err != nil {
						return err
					}
					if a[0] != 11 || b[0] != 9 {
						t.Errorf("versions in one transaction: %v %v, want [11] [9]", a, b)
					}
					bad := rec("6", t0, "six", false)
					bad.Version = 4
					if _, err := tbl.WriteIfNewer(ctx, tx, scope, span, []*models.Record{bad}); err == nil {
						t.Error("a place outside the span was written")
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				rows, err := tbl.Load(ctx, db, scope, model, []string{name + "1", name + "2", name + "3", name + "-foreign"})
				if err != nil {
					t.Fatal(err)
				}
				byUID := map[string]models.Record{}
				for _, r := range rows {
					byUID[r.UID] = r
				}
				if r := byUID[name+"1"]; r.Version != 7 || !r.ModifyAt.Equal(t0) || !strings.Contains(string(r.Data), "one, edited") {
					t.Fatalf("record 1: %+v %s", r, r.Data)
				}
				if r := byUID[name+"2"]; r.Version != 8 || !r.IsDeleted {
					t.Fatalf("record 2: %+v", r)
				}
				if r := byUID[name+"-foreign"]; r.Owner != scope || !strings.Contains(string(r.Data), "mine") {
					t.Fatalf("my record with another owner's uid: %+v %s", r, r.Data)
				}
				theirs, err := tbl.Load(ctx, db, "someone-else", model, []string{name + "-foreign"})
				if err != nil || len(theirs) != 1 || !strings.Contains(string(theirs[0].Data), "theirs") {
					t.Fatalf("another owner's record changed: %+v %v", theirs, err)
				}
				page, err := models.ReadFeed(ctx, db, []models.FeedSource{{Table: tbl, Models: []string{model}}},
					models.FeedParams{Owner: scope, UpTo: 100, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				var feed []string
				for _, c := range page {
					feed = append(feed, fmt.Sprintf("%s@%d", c.UID[len(name):], c.Version))
				}
				if fmt.Sprint(feed) != "[3@5 -foreign@6 1@7 2@8 4@9 5@11]" {
					t.Fatalf("feed %v", feed)
				}
				state, err := models.ScopeState(ctx, db, []string{scope})
				if err != nil || state[scope].Version != 11 {
					t.Fatalf("scope counter %+v %v, want 11", state, err)
				}
				// A column without a value travels as NULL.
				bare := rec("7", t0, "bare", false)
				bare.Data = []byte(`{"title":"bare"}`)
				if got := write(db, scope, bare); got[0] != 12 {
					t.Fatalf("bare record got version %v, want 12", got)
				}
				rows, err = tbl.Load(ctx, db, scope, model, []string{name + "7"})
				if err != nil || len(rows) != 1 || !strings.Contains(string(rows[0].Data), `"title":"bare"`) || strings.Contains(string(rows[0].Data), `"a"`) {
					t.Fatalf("bare record: %+v %v", rows, err)
				}
			})
		}
	})
}

type jsonNote struct {
	bun.BaseModel `bun:"table:json_notes"`
	models.Base
	Meta map[string]any `bun:"meta,type:json" json:"meta"`
}

// TestWriteIfNewerNeedsComparableColumns: a json column has no equality in
// PostgreSQL, so such a table cannot tell a retry from a change in SQL and
// leaves pushes to the ordinary path.
func TestWriteIfNewerNeedsComparableColumns(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		tbl, err := models.NewTypedTable[jsonNote](db)
		if err != nil {
			t.Fatal(err)
		}
		if tbl.CanWriteIfNewer(db) {
			t.Fatal("a table with a json column claims to write if newer")
		}
	})
}

// TestWriteIfNewerAwkwardText: values that mean something inside a
// PostgreSQL array literal (quotes, backslashes, braces, commas, NULL,
// spaces) come back exactly as written, in both table kinds.
func TestWriteIfNewerAwkwardText(t *testing.T) {
	db := synctest.OpenPostgres(t)
	ctx := context.Background()
	typed := migrateWithNotes(t, db)
	awkward := []string{``, `NULL`, `null`, `"`, `\`, `\"`, `{a,b}`, `,`, ` padded `, "line\nbreak\ttab", `日本 é`, `'single'`, `""`, `\\N`}
	for name, tbl := range map[string]interface {
		models.Table
		models.NewerWriter
	}{"typed": typed, "generic": models.GenericTable{}} {
		model, scope := "awk."+name, "owner-awk-"+name
		var recs []*models.Record
		for i, s := range awkward {
			data, _ := json.Marshal(map[string]any{"title": s, "tags": []string{s, s + "x"}})
			if i%3 == 0 {
				data, _ = json.Marshal(map[string]any{"title": s, "tags": nil})
			}
			recs = append(recs, &models.Record{Model: model, UID: fmt.Sprintf("u%d", i), Owner: scope,
				ModifyAt: awkwardTimes[i%len(awkwardTimes)].Add(time.Duration(i) * time.Microsecond), Version: int64(i + 1), Data: data})
		}
		if _, err := tbl.WriteIfNewer(ctx, db, scope, models.VersionSpan{Count: int64(len(recs)), Take: true}, recs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		uids := make([]string, len(recs))
		for i, r := range recs {
			uids[i] = r.UID
		}
		rows, err := tbl.Load(ctx, db, scope, model, uids)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(recs) {
			t.Fatalf("%s: loaded %d of %d", name, len(rows), len(recs))
		}
		for _, row := range rows {
			var i int
			fmt.Sscanf(row.UID, "u%d", &i)
			want, got := canonicalJSON(t, recs[i].Data), canonicalJSON(t, row.Data)
			if got != want || !row.ModifyAt.Equal(recs[i].ModifyAt) || row.Owner != scope {
				t.Errorf("%s %s: stored %s at %s, wrote %s at %s", name, row.UID, got, row.ModifyAt, want, recs[i].ModifyAt)
			}
		}
	}
}

// awkwardTimes are edges of the hand-written time text.
var awkwardTimes = []time.Time{
	time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.UTC),
	time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.FixedZone("east", 5*3600)),
}

func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if tags, ok := v["tags"].([]any); ok && len(tags) == 0 {
		v["tags"] = nil
	}
	out, _ := json.Marshal(v)
	return string(out)
}
