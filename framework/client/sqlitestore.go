package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/sqlitedsn"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// SQLiteStore is a [Store] in a SQLite file, so a device that restarts
// keeps its records, its queue and its cursor. It uses the same pure-Go
// SQLite driver as the server (sqliteshim), in WAL mode.
//
// Every method is one transaction. With synchronous=NORMAL (the default of
// [OpenSQLiteStore]) a committed change survives a crash of the process;
// an operating system crash or power loss may lose the last transactions,
// never corrupt the file. Set [SQLiteOptions.Durable] to also survive
// those, at the cost of an fsync per write.
//
// Open one SQLiteStore per file in a process; it is safe for concurrent
// use by many goroutines (its single connection serializes them). Times
// are stored with microsecond precision, the protocol's.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// SQLiteOptions configures [OpenSQLiteStoreWith]. The zero value is
// useful.
type SQLiteOptions struct {
	// Durable makes every committed transaction survive an operating
	// system crash or power loss (synchronous=FULL).
	Durable bool
	// BusyTimeout is how long to wait for a lock another process holds
	// (default 10s).
	BusyTimeout time.Duration
}

// sqliteSchemaVersion is stored in PRAGMA user_version.
const sqliteSchemaVersion = 2

var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS ferry_client_records (
		owner TEXT NOT NULL,
		model TEXT NOT NULL,
		uid TEXT NOT NULL,
		modify_at INTEGER NOT NULL,
		is_deleted INTEGER NOT NULL,
		version INTEGER NOT NULL,
		data BLOB,
		synced INTEGER NOT NULL,
		fields_modify_at TEXT,
		PRIMARY KEY (owner, model, uid)
	)`,
	`CREATE TABLE IF NOT EXISTS ferry_client_queue (
		owner TEXT NOT NULL,
		model TEXT NOT NULL,
		uid TEXT NOT NULL,
		seq INTEGER NOT NULL UNIQUE,
		modify_at INTEGER NOT NULL,
		is_deleted INTEGER NOT NULL,
		data BLOB,
		fields_modify_at TEXT,
		PRIMARY KEY (owner, model, uid)
	)`,
	`CREATE TABLE IF NOT EXISTS ferry_client_meta (
		key TEXT PRIMARY KEY,
		value
	)`,
	`INSERT INTO ferry_client_meta (key, value) VALUES ('seq', 0), ('cursor', '') ON CONFLICT (key) DO NOTHING`,
}

// OpenSQLiteStore opens the store in the SQLite file at path, creating the
// file and its tables when needed.
func OpenSQLiteStore(ctx context.Context, path string) (*SQLiteStore, error) {
	return OpenSQLiteStoreWith(ctx, path, SQLiteOptions{})
}

// OpenSQLiteStoreWith is [OpenSQLiteStore] with options.
func OpenSQLiteStoreWith(ctx context.Context, path string, opts SQLiteOptions) (*SQLiteStore, error) {
	if path == "" {
		return nil, errors.New("client: open sqlite store: empty path")
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	syncMode := "NORMAL"
	if opts.Durable {
		syncMode = "FULL"
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+syncMode+")")
	db, err := sql.Open(sqliteshim.ShimName, sqlitedsn.FileURI(path, q))
	if err != nil {
		return nil, fmt.Errorf("client: open sqlite store %s: %w", path, err)
	}
	// One connection: transactions queue in Go instead of failing with
	// SQLITE_BUSY, and the pragmas above apply to every statement.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &SQLiteStore{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("client: open sqlite store %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLiteStore) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > sqliteSchemaVersion {
		return fmt.Errorf("the file has schema version %d, newer than this client's %d", v, sqliteSchemaVersion)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if v == 1 {
			// Version 2 keeps per-field edit times beside the data.
			for _, table := range []string{"ferry_client_records", "ferry_client_queue"} {
				if _, err := tx.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN fields_modify_at TEXT"); err != nil {
					return fmt.Errorf("upgrade %s: %w", table, err)
				}
			}
		}
		for _, stmt := range sqliteSchema {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", sqliteSchemaVersion))
		return err
	})
}

// Close closes the file. The store must not be used afterwards.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// tx runs fn in one transaction.
func (s *SQLiteStore) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// micros and fromMicros convert times to and from the stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// blob returns data as stored: NULL for nil.
func blob(data []byte) any {
	if data == nil {
		return nil
	}
	return []byte(data)
}

const recordColumns = "owner, model, uid, modify_at, is_deleted, version, data, synced, fields_modify_at"

// encodeFieldTimes stores field times as a JSON object of Unix
// microseconds; NULL for none.
func encodeFieldTimes(ft map[string]time.Time) any {
	if len(ft) == 0 {
		return nil
	}
	m := make(map[string]int64, len(ft))
	for k, t := range ft {
		m[k] = micros(t)
	}
	text, _ := json.Marshal(m) // a map of numbers always encodes
	return string(text)
}

func decodeFieldTimes(text sql.NullString) (map[string]time.Time, error) {
	if !text.Valid || text.String == "" {
		return nil, nil
	}
	var m map[string]int64
	if err := json.Unmarshal([]byte(text.String), &m); err != nil {
		return nil, fmt.Errorf("field times: %w", err)
	}
	out := make(map[string]time.Time, len(m))
	for k, us := range m {
		out[k] = fromMicros(us)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (*Record, error) {
	var (
		r       Record
		at      int64
		deleted bool
		synced  bool
		data    []byte
		fields  sql.NullString
	)
	if err := row.Scan(&r.Owner, &r.Model, &r.UID, &at, &deleted, &r.Version, &data, &synced, &fields); err != nil {
		return nil, err
	}
	ft, err := decodeFieldTimes(fields)
	if err != nil {
		return nil, err
	}
	r.FieldsModifyAt = ft
	r.ModifyAt, r.IsDeleted, r.Synced = fromMicros(at), deleted, synced
	if data != nil {
		r.Data = append([]byte{}, data...)
	}
	return &r, nil
}

// putRecord inserts or replaces a record.
func putRecord(ctx context.Context, tx *sql.Tx, r *Record, synced bool) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ferry_client_records (`+recordColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, model, uid) DO UPDATE SET
			modify_at = excluded.modify_at, is_deleted = excluded.is_deleted,
			version = excluded.version, data = excluded.data, synced = excluded.synced,
			fields_modify_at = excluded.fields_modify_at`,
		r.Owner, r.Model, r.UID, micros(r.ModifyAt), r.IsDeleted, r.Version, blob(r.Data), synced, encodeFieldTimes(r.FieldsModifyAt))
	return err
}

// queuedSeq returns the sequence number of key's queue entry, or false.
func queuedSeq(ctx context.Context, tx *sql.Tx, k Key) (int64, bool, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `SELECT seq FROM ferry_client_queue WHERE owner = ? AND model = ? AND uid = ?`,
		k.Owner, k.Model, k.UID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return seq, err == nil, err
}

// Get implements [Store].
func (s *SQLiteStore) Get(ctx context.Context, key Key) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM ferry_client_records
		WHERE owner = ? AND model = ? AND uid = ?`, key.Owner, key.Model, key.UID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("client: sqlite store: get %s/%s: %w", key.Model, key.UID, err)
	}
	return r, nil
}

// List implements [Store].
func (s *SQLiteStore) List(ctx context.Context, p ListParams) ([]*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if p.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, p.Owner)
	}
	if p.Model != "" {
		where, args = append(where, "model = ?"), append(args, p.Model)
	}
	if !p.IncludeDeleted {
		where = append(where, "is_deleted = 0")
	}
	q := `SELECT ` + recordColumns + ` FROM ferry_client_records`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	// SQLite compares text bytewise, as strings.Compare does.
	q += " ORDER BY model, uid, owner"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("client: sqlite store: list: %w", err)
	}
	defer rows.Close()
	out := []*Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("client: sqlite store: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("client: sqlite store: list: %w", err)
	}
	return out, nil
}

// Write implements [Store].
func (s *SQLiteStore) Write(ctx context.Context, rec *Record) (int64, error) {
	var seq int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx,
			`UPDATE ferry_client_meta SET value = value + 1 WHERE key = 'seq' RETURNING value`).Scan(&seq); err != nil {
			return err
		}
		if err := putRecord(ctx, tx, rec, false); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO ferry_client_queue (owner, model, uid, seq, modify_at, is_deleted, data, fields_modify_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, model, uid) DO UPDATE SET
				seq = excluded.seq, modify_at = excluded.modify_at,
				is_deleted = excluded.is_deleted, data = excluded.data, fields_modify_at = excluded.fields_modify_at`,
			rec.Owner, rec.Model, rec.UID, seq, micros(rec.ModifyAt), rec.IsDeleted, blob(rec.Data), encodeFieldTimes(rec.FieldsModifyAt))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("client: sqlite store: write %s/%s: %w", rec.Model, rec.UID, err)
	}
	return seq, nil
}

// Pending implements [Store].
func (s *SQLiteStore) Pending(ctx context.Context, p PendingParams) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := int64(p.Limit)
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT owner, model, uid, seq, modify_at, is_deleted, data, fields_modify_at
		FROM ferry_client_queue WHERE seq > ? ORDER BY seq LIMIT ?`, p.AfterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("client: sqlite store: pending: %w", err)
	}
	defer rows.Close()
	out := []Change{}
	for rows.Next() {
		var (
			c      Change
			at     int64
			data   []byte
			fields sql.NullString
		)
		if err := rows.Scan(&c.Owner, &c.Model, &c.UID, &c.Seq, &at, &c.IsDeleted, &data, &fields); err != nil {
			return nil, fmt.Errorf("client: sqlite store: pending: %w", err)
		}
		ft, err := decodeFieldTimes(fields)
		if err != nil {
			return nil, fmt.Errorf("client: sqlite store: pending: %w", err)
		}
		c.FieldsModifyAt = ft
		c.ModifyAt = fromMicros(at)
		if data != nil {
			c.Data = append([]byte{}, data...)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("client: sqlite store: pending: %w", err)
	}
	return out, nil
}

// Acknowledge implements [Store].
func (s *SQLiteStore) Acknowledge(ctx context.Context, acks []Ack) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, a := range acks {
			seq, ok, err := queuedSeq(ctx, tx, a.Key)
			if err != nil {
				return err
			}
			if !ok || seq != a.Seq {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM ferry_client_queue WHERE owner = ? AND model = ? AND uid = ?`,
				a.Key.Owner, a.Key.Model, a.Key.UID); err != nil {
				return err
			}
			n++
			if a.Record != nil {
				r := *a.Record
				r.Owner, r.Model, r.UID = a.Key.Owner, a.Key.Model, a.Key.UID
				if err := putRecord(ctx, tx, &r, true); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("client: sqlite store: acknowledge: %w", err)
	}
	return n, nil
}

// ApplyRemote implements [Store].
func (s *SQLiteStore) ApplyRemote(ctx context.Context, recs []*Record) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, rec := range recs {
			if _, queued, err := queuedSeq(ctx, tx, rec.Key()); err != nil {
				return err
			} else if queued {
				continue
			}
			var (
				version int64
				synced  bool
			)
			err := tx.QueryRowContext(ctx, `SELECT version, synced FROM ferry_client_records
				WHERE owner = ? AND model = ? AND uid = ?`, rec.Owner, rec.Model, rec.UID).Scan(&version, &synced)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case synced && version > rec.Version:
				continue
			}
			if err := putRecord(ctx, tx, rec, true); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("client: sqlite store: apply remote records: %w", err)
	}
	return n, nil
}

// Forget implements [Store].
func (s *SQLiteStore) Forget(ctx context.Context, keys []Key) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM ferry_client_records
				WHERE owner = ? AND model = ? AND uid = ? AND synced = 1
				AND NOT EXISTS (SELECT 1 FROM ferry_client_queue q
					WHERE q.owner = ferry_client_records.owner AND q.model = ferry_client_records.model
					AND q.uid = ferry_client_records.uid)`,
				k.Owner, k.Model, k.UID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: sqlite store: forget: %w", err)
	}
	return nil
}

// Cursor implements [Store].
func (s *SQLiteStore) Cursor(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var c string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM ferry_client_meta WHERE key = 'cursor'`).Scan(&c); err != nil {
		return "", fmt.Errorf("client: sqlite store: cursor: %w", err)
	}
	return c, nil
}

// SetCursor implements [Store].
func (s *SQLiteStore) SetCursor(ctx context.Context, cursor string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE ferry_client_meta SET value = ? WHERE key = 'cursor'`, cursor); err != nil {
		return fmt.Errorf("client: sqlite store: set cursor: %w", err)
	}
	return nil
}
