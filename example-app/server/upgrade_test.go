package server_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestUpgradeFromPreviousRelease opens stores the release before per-owner
// keys created (testdata/prev-release: `sqlite3 .dump` and `pg_dump
// --inserts` of the example app after Ann wrote notes n1 and n2 (n2 then
// deleted), setting theme and task t1, and Bob note b1). That release keyed
// notes by uid and the generic table by model and uid, so Bob could not
// hold n1 or theme. After the upgrade everything is as it was, versions and
// usage counters included, and Bob's records with Ann's uids are his own.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	for _, kind := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			db := openPreviousRelease(t, kind)
			e := &env{t: t, url: servertest.Start(t, db).URL}
			ann, bob := e.login("ann-prev@example.com"), e.login("bob-prev@example.com")
			ctx := context.Background()

			before, _ := ann.pullAll("", 0)
			got := latest(before)
			if len(got) != 5 || got["data.Note/n1"].Version != 2 || got["data.Note/n1"].Data["title"] != "ann's note" ||
				!got["data.Note/n2"].IsDeleted || got["data.Note/n2"].Version != 6 ||
				got["data.Setting/theme"].Data["value"] != "dark" || got["data.Task/t1"].Version != 5 {
				t.Fatalf("ann's records after the upgrade: %+v", got)
			}
			srv := servertest.Start(t, db).Server // a second start finds nothing to upgrade
			annUsage, err := srv.App.Usage(ctx, ann.ID)
			if err != nil || annUsage.Records != 5 {
				t.Fatalf("ann's usage after the upgrade: %+v %v", annUsage, err)
			}

			res := bob.push(
				note("n1", t2, "bob's n1"),
				map[string]any{"model": "data.Setting", "uid": "theme", "modify_at": t0, "data": map[string]any{"key": "theme", "value": "light"}},
				map[string]any{"model": "data.Task", "uid": "t1", "modify_at": t0, "data": map[string]any{"title": "bob's t1"}},
			)
			for i, r := range res {
				if r.Status != "applied" || r.Record.Owner != bob.ID || r.Record.Version != int64(3+i) {
					t.Fatalf("bob's change %d with one of ann's uids: %+v", i, r)
				}
			}
			res = ann.push(note("n3", t1, "after the upgrade"))
			if res[0].Status != "applied" || res[0].Record.Version != 7 {
				t.Fatalf("ann's first write after the upgrade: %+v", res[0])
			}
			after, _ := ann.pullAll("", 0)
			got = latest(after)
			if len(got) != 6 || got["data.Note/n1"].Data["title"] != "ann's note" || got["data.Setting/theme"].Data["value"] != "dark" {
				t.Fatalf("ann's records after bob wrote: %+v", got)
			}
			bobs, _ := bob.pullAll("", 0)
			if got := latest(bobs); len(got) != 5 || got["data.Note/b1"].Version != 2 || got["data.Setting/theme"].Data["value"] != "light" {
				t.Fatalf("bob's records: %+v", got)
			}
			for id, want := range map[string]int64{ann.ID: 6, bob.ID: 5} {
				if u, err := srv.App.Usage(ctx, id); err != nil || u.Records != want {
					t.Fatalf("usage of %s: %+v %v, want %d records", id, u, err, want)
				}
			}
		})
	}
}

// openPreviousRelease loads the previous release's dump into a fresh store.
func openPreviousRelease(t *testing.T, kind synctest.Store) *bun.DB {
	t.Helper()
	ctx := context.Background()
	dump, err := os.ReadFile(filepath.Join("testdata", "prev-release", string(kind)+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	if kind == synctest.SQLite {
		db, err := models.OpenSQLite(ctx, filepath.Join(t.TempDir(), "prev.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.ExecContext(ctx, string(dump)); err != nil {
			t.Fatalf("load the dump: %v", err)
		}
		return db
	}
	dsn := synctest.PostgresURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	db, err := models.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The dump creates and names its schema (ferry_prev), empties the
	// session's search_path (which would outlive it on a pooled
	// connection) and has psql's meta-commands (\restrict).
	var lines []string
	for _, l := range strings.Split(string(dump), "\n") {
		if !strings.HasPrefix(l, "\\") && !strings.Contains(l, "set_config('search_path'") && !strings.HasPrefix(l, "CREATE SCHEMA") {
			lines = append(lines, l)
		}
	}
	text := strings.ReplaceAll(strings.Join(lines, "\n"), "ferry_prev.", schema+".")
	if _, err := db.ExecContext(ctx, text); err != nil {
		t.Fatalf("load the dump: %v", err)
	}
	return db
}

// login signs an existing account in with the test password.
func (e *env) login(email string) *user {
	e.t.Helper()
	var out struct {
		Token string `json:"token"`
		User  struct {
			UID string `json:"uid"`
		} `json:"user"`
	}
	if st := e.do("POST", "/auth/login", "", login(email, "correct horse"), &out); st != 200 || out.Token == "" {
		e.t.Fatalf("log %s in: status %d", email, st)
	}
	return &user{e: e, ID: out.User.UID, Token: out.Token}
}
