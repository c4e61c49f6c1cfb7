package models

import (
	"database/sql"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// The few real differences between PostgreSQL and SQLite live here.

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either store.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	// modernc.org/sqlite reports SQLITE_CONSTRAINT_UNIQUE / PRIMARYKEY with
	// this text; its error type lives in a package we do not import.
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed") ||
		strings.Contains(err.Error(), "constraint failed: PRIMARY KEY"))
}

// IsContentError reports whether a write failed because the store refused
// a value it was given (PostgreSQL's data exceptions, class 22, such as a
// string too long for its column or an unstorable character, and not-null
// and check violations; SQLite's equivalents), as opposed to the store
// failing. Such a failure belongs to the change that carried the value.
func IsContentError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || pgErr.Code == "23502" || pgErr.Code == "23514"
	}
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "NOT NULL constraint failed") || strings.Contains(msg, "CHECK constraint failed") ||
		strings.Contains(msg, "string or blob too big") || strings.Contains(msg, "datatype mismatch")
}

// IsRetryable reports whether a transaction failed only because of
// concurrency (a deadlock, a serialization failure, SQLite being busy) and
// may succeed when run again.
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}

// IsPostgres reports whether db talks to PostgreSQL.
func IsPostgres(db bun.IDB) bool {
	return db.Dialect().Name() == dialect.PG
}

// ReadTxOptions are the options of a pull's read transaction: on
// PostgreSQL a read-only repeatable-read snapshot, so the scope counters
// and every record table are read as of one moment; SQLite transactions are
// serializable already.
func ReadTxOptions(db bun.IDB) *sql.TxOptions {
	if IsPostgres(db) {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return nil
}
