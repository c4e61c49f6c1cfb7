package sqlitedsn_test

import (
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrysync/ferry/internal/sqlitedsn"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// TestFileURIOpensThatFile: a name with every character SQLite's URI
// parser treats specially opens a file of exactly that name, and the
// query still applies.
func TestFileURIOpensThatFile(t *testing.T) {
	for _, name := range []string{"plain.db", "a#1.db", "what?.db", "100%.db", "sp ace.db", "a%23b.db", "x&y=z.db"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sub#01")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			q := url.Values{"_pragma": {"journal_mode(WAL)"}}
			db, err := sql.Open(sqliteshim.ShimName, sqlitedsn.FileURI(path, q))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
				t.Fatal(err)
			}
			var mode string
			if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal mode %q, %v: the query was lost", mode, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range entries {
				found = found || e.Name() == name
			}
			if !found {
				t.Fatalf("%s holds %v, not %q", dir, entries, name)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "sub")); err == nil {
				t.Fatal("a file named by the path up to '#' was created")
			}
		})
	}
}

// TestFileURIDoubleSlash: a path starting with "//" must not become
// "file://…", where SQLite reads the first element as an authority.
func TestFileURIDoubleSlash(t *testing.T) {
	if got := sqlitedsn.FileURI("//tmp/x#1.db", nil); got != "file:/tmp/x%231.db" {
		t.Fatalf("FileURI = %q", got)
	}
}
