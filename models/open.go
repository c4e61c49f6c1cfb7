package models

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/ferrysync/ferry/internal/sqlitedsn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// OpenPostgres opens a PostgreSQL database through pgx's database/sql
// driver and checks that it answers.
func OpenPostgres(ctx context.Context, databaseURL string) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// bun writes values into the SQL text, so nearly every statement is
	// new: preparing and caching each (pgx's default) costs a round trip
	// and memory for nothing. Exec mode sends them unprepared, and works
	// behind PgBouncer. A default_query_exec_mode in the URL still wins.
	if _, set := cfg.RuntimeParams["default_query_exec_mode"]; !set && !strings.Contains(databaseURL, "default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(32)
	sqldb.SetMaxIdleConns(32)
	db := bun.NewDB(sqldb, pgDialect{pgdialect.New()})
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return db, nil
}

// OpenSQLite opens (creating when needed) an embedded SQLite file in WAL
// mode. SQLite allows one writer at a time, so the pool holds a single
// connection: transactions queue in Go instead of failing with SQLITE_BUSY.
func OpenSQLite(ctx context.Context, path string) (*bun.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	dsn := sqlitedsn.FileURI(path, q)
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(1)
	db := bun.NewDB(sqldb, sqliteDialect{sqlitedialect.New()})
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}
