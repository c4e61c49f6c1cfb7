package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// Scope is the version counter of one scope (an owner). Versions are
// counted per scope inside the write transaction, so within a scope commit
// order equals version order and a puller can never skip a change that
// commits late with a lower version: the writer holding version v keeps the
// counter row locked until it commits, and nobody gets v+1 before that.
type Scope struct {
	bun.BaseModel `bun:"table:ferry_scopes,alias:fs"`

	Scope   string `bun:"scope,pk,type:varchar(255)"`
	Version int64  `bun:"version,notnull"`
	// PurgedVersion is the highest version whose tombstones may have been
	// purged; a cursor older than it must reset.
	PurgedVersion int64 `bun:"purged_version,notnull"`
}

// Change is a row of the change index: the latest version of one record.
// Pulls read it by (scope, version) and then load the records.
type Change struct {
	bun.BaseModel `bun:"table:ferry_changes,alias:fc"`

	Model     string `bun:"model,pk,type:varchar(128)"`
	UID       string `bun:"uid,pk,type:varchar(64)"`
	Scope     string `bun:"scope,notnull,type:varchar(255)"`
	Version   int64  `bun:"version,notnull"`
	IsDeleted bool   `bun:"is_deleted,notnull"`
}

// ReserveVersion takes the scope's counter row lock (creating the row when
// needed) and returns the next version. The lock is held until the
// transaction ends; later versions within the same transaction are
// allocated in memory and written back with [SetScopeVersion].
func ReserveVersion(ctx context.Context, tx bun.Tx, scope string) (int64, error) {
	var v int64
	err := tx.NewRaw(
		`INSERT INTO ferry_scopes (scope, version, purged_version) VALUES (?, 1, 0)
		 ON CONFLICT (scope) DO UPDATE SET version = ferry_scopes.version + 1
		 RETURNING version`, scope).Scan(ctx, &v)
	if err != nil {
		return 0, fmt.Errorf("reserve version for scope %q: %w", scope, err)
	}
	return v, nil
}

// SetScopeVersion records the last version a transaction used in a scope.
func SetScopeVersion(ctx context.Context, tx bun.Tx, scope string, version int64) error {
	_, err := tx.NewUpdate().Model((*Scope)(nil)).
		Set("version = ?", version).
		Where("scope = ?", scope).
		Where("version < ?", version).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("set version of scope %q: %w", scope, err)
	}
	return nil
}

// IndexChange records that a record now has version v.
func IndexChange(ctx context.Context, idb bun.IDB, c *Change) error {
	_, err := idb.NewInsert().Model(c).
		On("CONFLICT (model, uid) DO UPDATE").
		Set("scope = EXCLUDED.scope").
		Set("version = EXCLUDED.version").
		Set("is_deleted = EXCLUDED.is_deleted").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("index change %s/%s: %w", c.Model, c.UID, err)
	}
	return nil
}

// IndexChanges records many changes in one statement per chunk; each
// (model, uid) must appear once.
func IndexChanges(ctx context.Context, idb bun.IDB, cs []Change) error {
	err := upsertChunks(ctx, idb, len(cs), func(lo, hi int) *bun.InsertQuery {
		part := cs[lo:hi]
		return idb.NewInsert().Model(&part).On("CONFLICT (model, uid) DO UPDATE")
	}, []string{"scope", "version", "is_deleted"}, false)
	if err != nil {
		return fmt.Errorf("index %d changes: %w", len(cs), err)
	}
	return nil
}

// ScopeState returns the counters of the given scopes; a scope nobody has
// written to yet is absent.
func ScopeState(ctx context.Context, idb bun.IDB, scopes []string) (map[string]Scope, error) {
	out := make(map[string]Scope, len(scopes))
	if len(scopes) == 0 {
		return out, nil
	}
	var rows []Scope
	if err := idb.NewSelect().Model(&rows).Where("scope IN (?)", bun.List(scopes)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read scope counters: %w", err)
	}
	for _, r := range rows {
		out[r.Scope] = r
	}
	return out, nil
}

// ChangesParams selects a page of the change index.
type ChangesParams struct {
	Scope  string
	After  int64    // exclusive lower bound
	UpTo   int64    // inclusive upper bound
	Models []string // empty: all models
	Limit  int
}

// ReadChanges returns index rows of one scope with After < version <= UpTo,
// in version order, at most Limit of them.
func ReadChanges(ctx context.Context, idb bun.IDB, p ChangesParams) ([]Change, error) {
	var rows []Change
	q := idb.NewSelect().Model(&rows).
		Where("scope = ?", p.Scope).
		Where("version > ?", p.After).
		Where("version <= ?", p.UpTo).
		OrderExpr("version ASC").
		Limit(int64(p.Limit))
	if len(p.Models) > 0 {
		q = q.Where("model IN (?)", bun.List(p.Models))
	}
	if err := q.Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read changes of scope %q: %w", p.Scope, err)
	}
	return rows, nil
}

// LockForPurge takes the scope's counter row lock (the one writers take)
// and raises its purge horizon to version: a cursor older than that may
// have missed a purged tombstone and must reset.
func LockForPurge(ctx context.Context, tx bun.Tx, scope string, version int64) error {
	_, err := tx.NewUpdate().Model((*Scope)(nil)).
		Set("purged_version = CASE WHEN purged_version < ? THEN ? ELSE purged_version END", version, version).
		Where("scope = ?", scope).Exec(ctx)
	if err != nil {
		return fmt.Errorf("lock scope %q for purge: %w", scope, err)
	}
	return nil
}

// DeleteChanges removes the index rows of purged records.
func DeleteChanges(ctx context.Context, idb bun.IDB, model string, uids []string) error {
	if len(uids) == 0 {
		return nil
	}
	_, err := idb.NewDelete().Model((*Change)(nil)).Where("model = ?", model).Where("uid IN (?)", bun.List(uids)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete index rows of %s: %w", model, err)
	}
	return nil
}
