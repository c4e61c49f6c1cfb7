// Package synctest holds test helpers for Ferry and for applications built
// on it: real stores to run one suite on both PostgreSQL and SQLite, each
// test isolated in its own database file or PostgreSQL schema
// ([ForEachStore]), and the conformance suite of the wire protocol
// ([RunConformance]), which checks over HTTP that a server, mounted where
// its application puts it, answers as DESIGN.md says.
//
// PostgreSQL is found at FERRY_TEST_DATABASE_URL (default
// postgres://root@127.0.0.1:5432/test?sslmode=disable). When it cannot be
// reached the PostgreSQL half of a test is skipped with a message, unless
// FERRY_REQUIRE_POSTGRES=1 (as in CI), which turns that into a failure.
package synctest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// DefaultPostgresURL is used when FERRY_TEST_DATABASE_URL is unset.
const DefaultPostgresURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// Store names a store kind for subtests.
type Store string

// The stores every storage behaviour is tested on.
const (
	SQLite   Store = "sqlite"
	Postgres Store = "postgres"
)

// ForEachStore runs fn as a subtest on a fresh SQLite file and on a fresh
// PostgreSQL schema.
func ForEachStore(t *testing.T, fn func(t *testing.T, db *bun.DB)) {
	t.Helper()
	for _, s := range []Store{SQLite, Postgres} {
		t.Run(string(s), func(t *testing.T) {
			fn(t, Open(t, s))
		})
	}
}

// Open returns an empty store of kind s, closed and removed when the test
// ends.
func Open(t testing.TB, s Store) *bun.DB {
	t.Helper()
	if s == SQLite {
		return OpenSQLite(t)
	}
	return OpenPostgres(t)
}

// OpenSQLite opens a new SQLite file in the test's temporary directory.
func OpenSQLite(t testing.TB) *bun.DB {
	t.Helper()
	db, err := models.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL returns a URL for a new, empty schema of the test
// PostgreSQL, created now and dropped at cleanup, or skips (fails under
// FERRY_REQUIRE_POSTGRES=1) when PostgreSQL cannot be reached.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("FERRY_TEST_DATABASE_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := models.OpenPostgres(ctx, base)
	if err != nil {
		if os.Getenv("FERRY_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL unreachable at %s and FERRY_REQUIRE_POSTGRES=1: %v", redact(base), err)
		}
		t.Skipf("PostgreSQL unreachable at %s (%v); start it or set FERRY_TEST_DATABASE_URL; FERRY_REQUIRE_POSTGRES=1 makes this a failure", redact(base), err)
	}
	defer admin.Close()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	schema := "ferry_test_" + hex.EncodeToString(raw[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := models.OpenPostgres(ctx, base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres opens a new, empty schema of the test PostgreSQL (see
// [PostgresURL]).
func OpenPostgres(t testing.TB) *bun.DB {
	t.Helper()
	dsn := PostgresURL(t)
	db, err := models.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres schema: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
