package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// baseline is raw PostgreSQL through pgx doing the same work as the
// server, in a table of its own (bench_notes) in the same schema: the
// floor the server is compared with.
type baseline struct {
	pool *pgxpool.Pool
}

const baselineDDL = `
CREATE TABLE bench_notes (
	owner      text        NOT NULL,
	uid        text        NOT NULL,
	modify_at  timestamptz NOT NULL,
	is_deleted boolean     NOT NULL DEFAULT false,
	version    bigint      NOT NULL,
	title      text        NOT NULL,
	body       text        NOT NULL,
	tags       jsonb,
	pinned     boolean     NOT NULL,
	PRIMARY KEY (owner, uid)
);
CREATE INDEX bench_notes_owner_version ON bench_notes (owner, version);
CREATE SEQUENCE bench_version;
`

func openBaseline(ctx context.Context, dsn string, conns int) (*baseline, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, baselineDDL); err != nil {
		pool.Close()
		return nil, fmt.Errorf("baseline tables: %w", err)
	}
	return &baseline{pool: pool}, nil
}

func (b *baseline) close() { b.pool.Close() }

const upsertTail = ` ON CONFLICT (owner, uid) DO UPDATE SET
	modify_at = excluded.modify_at, is_deleted = excluded.is_deleted, version = excluded.version,
	title = excluded.title, body = excluded.body, tags = excluded.tags, pinned = excluded.pinned
	WHERE stored.modify_at <= excluded.modify_at`

const upsertOne = `INSERT INTO bench_notes AS stored (owner, uid, modify_at, is_deleted, version, title, body, tags, pinned)
	VALUES ($1, $2, $3, false, nextval('bench_version'), $4, $5, '["work","home"]', $6)` + upsertTail + ` RETURNING version`

// single writes one change in a transaction of its own and reports
// whether it won.
func (b *baseline) single(ctx context.Context, owner string, n *note) (bool, error) {
	applied := false
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var v int64
		err := tx.QueryRow(ctx, upsertOne, owner, n.UID, n.ModifyAt, n.Title, n.Body, n.Pinned).Scan(&v)
		if err == pgx.ErrNoRows {
			return nil
		}
		applied = err == nil
		return err
	})
	return applied, err
}

const upsertBatch = `INSERT INTO bench_notes AS stored (owner, uid, modify_at, is_deleted, version, title, body, tags, pinned)
	SELECT $1, u, m, false, nextval('bench_version'), t, b, '["work","home"]', p
	FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::boolean[]) AS x(u, m, t, b, p)` + upsertTail

// batch writes changes in one statement and returns how many won.
func (b *baseline) batch(ctx context.Context, owner string, ns []note) (int, error) {
	uids := make([]string, len(ns))
	ats := make([]time.Time, len(ns))
	titles := make([]string, len(ns))
	bodies := make([]string, len(ns))
	pinned := make([]bool, len(ns))
	for i := range ns {
		uids[i], ats[i], titles[i], bodies[i], pinned[i] = ns[i].UID, ns[i].ModifyAt, ns[i].Title, ns[i].Body, ns[i].Pinned
	}
	tag, err := b.pool.Exec(ctx, upsertBatch, owner, uids, ats, titles, bodies, pinned)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// seed stores n notes for owner, the same rows [seedServer] gives the
// server.
func (b *baseline) seed(ctx context.Context, owner, prefix string, n int, base time.Time) error {
	_, err := b.pool.Exec(ctx, `INSERT INTO bench_notes (owner, uid, modify_at, is_deleted, version, title, body, tags, pinned)
		SELECT $1, $2 || g, $3::timestamptz + g * interval '1 microsecond', false, nextval('bench_version'),
		       'Note ' || g, $4, '["work","home"]', g % 10 = 0
		FROM generate_series(1, $5::int) g ORDER BY g`, owner, prefix, base, seedBody, n)
	if err != nil {
		return fmt.Errorf("seed baseline: %w", err)
	}
	_, err = b.pool.Exec(ctx, `ANALYZE bench_notes`)
	return err
}

// maxVersion is owner's highest version: the baseline's "cursor".
func (b *baseline) maxVersion(ctx context.Context, owner string) (int64, error) {
	var v int64
	err := b.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM bench_notes WHERE owner = $1`, owner).Scan(&v)
	return v, err
}

// scan is a pull page: the indexed range scan of owner's rows after a
// version, in version order, every column read into Go values.
func (b *baseline) scan(ctx context.Context, owner string, after int64, limit int) (int, int64, error) {
	rows, err := b.pool.Query(ctx, `SELECT uid, modify_at, is_deleted, version, title, body, tags, pinned
		FROM bench_notes WHERE owner = $1 AND version > $2 ORDER BY version LIMIT $3`, owner, after, limit)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	n, last := 0, after
	var (
		uid, title, body string
		at               time.Time
		deleted, pinned  bool
		tags             []byte
	)
	for rows.Next() {
		if err := rows.Scan(&uid, &at, &deleted, &last, &title, &body, &tags, &pinned); err != nil {
			return 0, 0, err
		}
		n++
	}
	return n, last, rows.Err()
}
