package blobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// The plugin's tables. ferry_blobs lists the blobs the Store holds.
// ferry_blob_holdings is one row per scope (a user, or a shared space's
// "s:<uid>") and blob: refs counts the scope's live records that refer to
// it (kept in the push transaction), held says the bytes were uploaded
// into the scope (by the user, or by a writer of the space), since is
// when refs last fell to zero (or the row was made), for the grace
// period. ferry_blob_uploads lists partial uploads: whose, of what, and
// when last written to, for quotas and for removing abandoned ones.
var ddl = []string{
	`CREATE TABLE IF NOT EXISTS ferry_blobs (
		hash varchar(64) PRIMARY KEY,
		size bigint NOT NULL,
		created_at bigint NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS ferry_blob_holdings (
		user_id text NOT NULL,
		hash varchar(64) NOT NULL,
		refs bigint NOT NULL DEFAULT 0,
		held boolean NOT NULL DEFAULT false,
		size bigint NOT NULL DEFAULT 0,
		type text NOT NULL DEFAULT '',
		since bigint NOT NULL,
		PRIMARY KEY (user_id, hash))`,
	`CREATE INDEX IF NOT EXISTS ferry_blob_holdings_hash ON ferry_blob_holdings (hash)`,
	`CREATE TABLE IF NOT EXISTS ferry_blob_uploads (
		id varchar(64) PRIMARY KEY,
		user_id text NOT NULL,
		hash varchar(64) NOT NULL,
		size bigint NOT NULL,
		type text NOT NULL,
		touched_at bigint NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS ferry_blob_uploads_user ON ferry_blob_uploads (user_id)`,
}

// migrate creates the tables if they are not there.
func migrate(ctx context.Context, db bun.IDB) error {
	for _, q := range ddl {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("blobs: create tables: %w", err)
		}
	}
	return nil
}

// addRef counts one more reference of user's to hash.
func addRef(ctx context.Context, db bun.IDB, user, hash string, now int64) error {
	_, err := db.ExecContext(ctx, `INSERT INTO ferry_blob_holdings (user_id, hash, refs, held, size, type, since)
		VALUES (?, ?, 1, false, 0, '', ?)
		ON CONFLICT (user_id, hash) DO UPDATE SET refs = ferry_blob_holdings.refs + 1`, user, hash, now)
	if err != nil {
		return fmt.Errorf("blobs: add reference to %s: %w", hash, err)
	}
	return nil
}

// dropRef counts one reference less; at zero the grace period starts.
func dropRef(ctx context.Context, db bun.IDB, user, hash string, now int64) error {
	_, err := db.ExecContext(ctx, `UPDATE ferry_blob_holdings
		SET refs = refs - 1, since = CASE WHEN refs <= 1 THEN ? ELSE since END
		WHERE user_id = ? AND hash = ? AND refs > 0`, now, user, hash)
	if err != nil {
		return fmt.Errorf("blobs: drop reference to %s: %w", hash, err)
	}
	return nil
}

// holding is what a user may know of a blob.
type holding struct {
	Size int64  `bun:"size"`
	Type string `bun:"type"`
	Refs int64  `bun:"refs"`
}

// held returns user's holding of hash, or nil when the user never
// uploaded it (or it was collected).
func held(ctx context.Context, db bun.IDB, user, hash string) (*holding, error) {
	var h holding
	err := db.NewRaw(`SELECT size, type, refs FROM ferry_blob_holdings WHERE user_id = ? AND hash = ? AND held`, user, hash).Scan(ctx, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blobs: holding of %s: %w", hash, err)
	}
	return &h, nil
}

// heldIn returns a holding of hash by one of scopes (the users and shared
// spaces a caller reads), or nil when none holds it.
func heldIn(ctx context.Context, db bun.IDB, scopes []string, hash string) (*holding, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	var h holding
	err := db.NewRaw(`SELECT size, type, refs FROM ferry_blob_holdings WHERE user_id IN (?) AND hash = ? AND held LIMIT 1`,
		bun.In(scopes), hash).Scan(ctx, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blobs: holding of %s: %w", hash, err)
	}
	return &h, nil
}

// heldAmong returns which of hashes user holds.
func heldAmong(ctx context.Context, db bun.IDB, user string, hashes []string) (map[string]bool, error) {
	var got []string
	err := db.NewRaw(`SELECT hash FROM ferry_blob_holdings WHERE user_id = ? AND held AND hash IN (?)`, user, bun.In(hashes)).Scan(ctx, &got)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blobs: holdings: %w", err)
	}
	m := make(map[string]bool, len(got))
	for _, h := range got {
		m[h] = true
	}
	return m, nil
}

// usage is what user stores (the blobs they hold) and reserves (their
// partial uploads' declared sizes), in bytes, and how many partial
// uploads they have.
func usage(ctx context.Context, db bun.IDB, user string) (stored, reserved, uploads int64, err error) {
	var row struct {
		Stored   int64 `bun:"stored"`
		Reserved int64 `bun:"reserved"`
		Uploads  int64 `bun:"uploads"`
	}
	err = db.NewRaw(`SELECT
		(SELECT COALESCE(SUM(size), 0) FROM ferry_blob_holdings WHERE user_id = ? AND held) AS stored,
		(SELECT COALESCE(SUM(size), 0) FROM ferry_blob_uploads WHERE user_id = ?) AS reserved,
		(SELECT COUNT(*) FROM ferry_blob_uploads WHERE user_id = ?) AS uploads`, user, user, user).Scan(ctx, &row)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("blobs: usage of %s: %w", user, err)
	}
	return row.Stored, row.Reserved, row.Uploads, nil
}

// upload is one partial upload's row.
type upload struct {
	ID   string `bun:"id"`
	User string `bun:"user_id"`
	Hash string `bun:"hash"`
	Size int64  `bun:"size"`
	Type string `bun:"type"`
}

func insertUpload(ctx context.Context, db bun.IDB, u upload, now int64) error {
	_, err := db.ExecContext(ctx, `INSERT INTO ferry_blob_uploads (id, user_id, hash, size, type, touched_at) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.User, u.Hash, u.Size, u.Type, now)
	if err != nil {
		return fmt.Errorf("blobs: record upload: %w", err)
	}
	return nil
}

// uploadOf returns the partial upload id if user owns it, else nil.
func uploadOf(ctx context.Context, db bun.IDB, id, user string) (*upload, error) {
	var u upload
	err := db.NewRaw(`SELECT id, user_id, hash, size, type FROM ferry_blob_uploads WHERE id = ? AND user_id = ?`, id, user).Scan(ctx, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blobs: upload %s: %w", id, err)
	}
	return &u, nil
}

func touchUpload(ctx context.Context, db bun.IDB, id string, now int64) error {
	if _, err := db.ExecContext(ctx, `UPDATE ferry_blob_uploads SET touched_at = ? WHERE id = ?`, now, id); err != nil {
		return fmt.Errorf("blobs: touch upload %s: %w", id, err)
	}
	return nil
}

func deleteUpload(ctx context.Context, db bun.IDB, id string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM ferry_blob_uploads WHERE id = ?`, id); err != nil {
		return fmt.Errorf("blobs: delete upload %s: %w", id, err)
	}
	return nil
}

// lockBlob takes the blob's row for the transaction (PostgreSQL; SQLite
// transactions are serial already), so collecting a blob and storing it
// again do not interleave.
func lockBlob(ctx context.Context, tx bun.Tx, hash string) error {
	if !models.IsPostgres(tx) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM ferry_blobs WHERE hash = ? FOR UPDATE`, hash); err != nil {
		return fmt.Errorf("blobs: lock %s: %w", hash, err)
	}
	return nil
}
