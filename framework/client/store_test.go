package client_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/client/clienttest"
	"github.com/ferrysync/ferry/internal/sqlitedsn"
	"github.com/uptrace/bun/driver/sqliteshim"
)

func TestMemoryStore(t *testing.T) {
	clienttest.TestStore(t, func(*testing.T) client.Store { return client.NewMemoryStore() })
}

func TestSQLiteStore(t *testing.T) {
	t.Parallel()
	clienttest.TestStore(t, func(t *testing.T) client.Store { return openStore(t, filepath.Join(t.TempDir(), "device.db")) })
}

func openStore(t *testing.T, path string) *client.SQLiteStore {
	t.Helper()
	s, err := client.OpenSQLiteStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSQLiteStoreSurvivesRestart closes and reopens a device's file in the
// middle of work: after a push whose answer was lost (the server applied
// it), with changes queued and news waiting on the server. The queue, the
// records and the cursor survive, and the next sync completes without
// duplicates.
func TestSQLiteStoreSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, openSQLite(t))
	acc := e.signUp("Restart")
	path := filepath.Join(t.TempDir(), "device.db")
	st, err := client.OpenSQLiteStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	noRetry := func(c *client.Config) { c.Store, c.DeviceID, c.Retry.MaxAttempts = st, "phone", 1 }
	d := e.device(acc, noRetry)
	other := e.device(acc)
	d.put("a", map[string]any{"title": "a"})
	d.put("b", map[string]any{"title": "b"})
	d.sync()
	cursor, err := st.Cursor(ctx)
	if err != nil || cursor == "" {
		t.Fatalf("cursor after sync = %q, %v", cursor, err)
	}
	other.sync()
	other.put("x", map[string]any{"title": "from the other device"})
	other.sync()

	// Offline work, then a push the server applies but whose answer is lost.
	d.put("a", map[string]any{"title": "a, edited"})
	d.put("c", map[string]any{"title": "c"})
	if err := d.Delete(ctx, "data.Note", "b"); err != nil {
		t.Fatal(err)
	}
	d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return nil, errors.New("connection reset (injected after the server answered)")
	})
	if _, err := d.Sync(ctx); err == nil {
		t.Fatal("sync succeeded although its answer was dropped")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := openStore(t, path)
	if got, err := st2.Cursor(ctx); err != nil || got != cursor {
		t.Fatalf("cursor after reopening = %q, %v; want %q", got, err, cursor)
	}
	p, err := st2.Pending(ctx, client.PendingParams{})
	if err != nil || len(p) != 3 {
		t.Fatalf("queue after reopening = %+v, %v; want 3 entries", p, err)
	}
	if r, err := st2.Get(ctx, client.Key{Owner: acc.ID, Model: "data.Note", UID: "b"}); err != nil || !r.IsDeleted || r.Synced {
		t.Fatalf("b after reopening = %+v, %v; want an unsynced tombstone", r, err)
	}
	d2 := e.device(acc, func(c *client.Config) { c.Store, c.DeviceID = st2, "phone" })
	res := d2.sync()
	if res.Pushed != 3 || res.Applied != 3 {
		t.Fatalf("sync after reopening: %+v; want the 3 queued changes applied (again)", res)
	}
	if d2.title("x") != "from the other device" {
		t.Fatalf("the other device's note did not arrive")
	}
	other.sync()
	e.assertConverged(acc, d2, other)

	// And once more: the synced state itself survives.
	want := d2.localState()
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}
	d3 := e.device(acc, func(c *client.Config) { c.Store = openStore(t, path) })
	if got := d3.localState(); len(got) != len(want) {
		t.Fatalf("after a second reopen: %d records, want %d", len(got), len(want))
	}
	e.assertConverged(acc, d3)
	if res := d3.sync(); res.Pushed != 0 || res.Stored != 0 {
		t.Fatalf("a synced device pushed or stored again after reopening: %+v", res)
	}
}

// TestSQLiteStoreUpgradesVersion1: a device file written by the previous
// release (schema version 1, no field times) opens, keeps its records,
// queue and cursor, and then keeps field times.
func TestSQLiteStoreUpgradesVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open(sqliteshim.ShimName, sqlitedsn.FileURI(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE ferry_client_records (owner TEXT NOT NULL, model TEXT NOT NULL, uid TEXT NOT NULL,
			modify_at INTEGER NOT NULL, is_deleted INTEGER NOT NULL, version INTEGER NOT NULL, data BLOB,
			synced INTEGER NOT NULL, PRIMARY KEY (owner, model, uid))`,
		`CREATE TABLE ferry_client_queue (owner TEXT NOT NULL, model TEXT NOT NULL, uid TEXT NOT NULL,
			seq INTEGER NOT NULL UNIQUE, modify_at INTEGER NOT NULL, is_deleted INTEGER NOT NULL, data BLOB,
			PRIMARY KEY (owner, model, uid))`,
		`CREATE TABLE ferry_client_meta (key TEXT PRIMARY KEY, value)`,
		`INSERT INTO ferry_client_meta (key, value) VALUES ('seq', 1), ('cursor', 'c1')`,
		`INSERT INTO ferry_client_records VALUES ('u', 'data.Note', 'a', 1764000000000000, 0, 0, '{"title":"old"}', 0)`,
		`INSERT INTO ferry_client_queue VALUES ('u', 'data.Note', 'a', 1, 1764000000000000, 0, '{"title":"old"}')`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := old.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	old.Close()
	st, err := client.OpenSQLiteStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := client.Key{Owner: "u", Model: "data.Note", UID: "a"}
	rec, err := st.Get(ctx, key)
	if err != nil || string(rec.Data) != `{"title":"old"}` || rec.FieldsModifyAt != nil {
		t.Fatalf("the old record: %+v, %v", rec, err)
	}
	if p, err := st.Pending(ctx, client.PendingParams{}); err != nil || len(p) != 1 || p[0].Seq != 1 {
		t.Fatalf("the old queue: %+v, %v", p, err)
	}
	if cur, err := st.Cursor(ctx); err != nil || cur != "c1" {
		t.Fatalf("the old cursor: %q, %v", cur, err)
	}
	rec.FieldsModifyAt = map[string]time.Time{"body": rec.ModifyAt.Add(-time.Second)}
	if _, err := st.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get(ctx, key); len(got.FieldsModifyAt) != 1 {
		t.Fatalf("field times after the upgrade: %+v", got)
	}
}

// TestSQLiteStoresInDirectoriesWithHashes: two stores whose paths differ
// only after a '#' (as Go's directories for repeated subtests do) are two
// files; pasted into a "file:" URI unescaped, both opened the path up to
// the '#', a file earlier runs had filled.
func TestSQLiteStoresInDirectoriesWithHashes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) *client.SQLiteStore {
		t.Helper()
		st, err := client.OpenSQLiteStore(ctx, filepath.Join(dir, name, "device.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	for _, name := range []string{"run#01", "run#02"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a, b := open("run#01"), open("run#02")
	if _, err := a.Write(ctx, &client.Record{Model: "data.Note", UID: "n1", Data: []byte(`{}`), ModifyAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, client.Key{Model: "data.Note", UID: "n1"}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the second store sees the first one's record: %v", err)
	}
	for _, name := range []string{"run#01", "run#02"} {
		if _, err := os.Stat(filepath.Join(dir, name, "device.db")); err != nil {
			t.Fatal(err)
		}
	}
}
