package models

import (
	"context"
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
	// Records and Bytes are the scope's [Usage], kept by triggers on the
	// record tables while usage accounting is on ([UsageAccounter]);
	// while it is off they are stale.
	Records int64 `bun:"records,notnull"`
	Bytes   int64 `bun:"bytes,notnull"`
}

// ReserveVersion takes the scope's counter row lock (creating the row when
// needed) and returns the next version. The lock is held until the
// transaction ends; later versions within the same transaction are
// allocated in memory and written back with [SetScopeVersion].
func ReserveVersion(ctx context.Context, tx bun.Tx, scope string) (int64, error) {
	v, _, err := ReserveVersionUsage(ctx, tx, scope)
	return v, err
}

// ReserveVersionUsage is [ReserveVersion] that also returns the scope's
// usage as of the lock, in the same statement: stable until the
// transaction ends, except for its own writes.
func ReserveVersionUsage(ctx context.Context, tx bun.Tx, scope string) (int64, Usage, error) {
	var v int64
	var u Usage
	err := tx.NewRaw(
		`INSERT INTO ferry_scopes (scope, version, purged_version) VALUES (?, 1, 0)
		 ON CONFLICT (scope) DO UPDATE SET version = ferry_scopes.version + 1
		 RETURNING version, records, bytes`, scope).Scan(ctx, &v, &u.Records, &u.Bytes)
	if err != nil {
		return 0, Usage{}, fmt.Errorf("reserve version for scope %q: %w", scope, err)
	}
	return v, u, nil
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

// ListScopesParams selects a page of scope counters for [ListScopes].
type ListScopesParams struct {
	// After is the last scope of the previous page ("" for the first).
	After string
	// Limit caps the page (0: no cap).
	Limit int
}

// ListScopes returns the counters of the scopes that were ever written,
// in scope order, a page at a time: for operators' tools (the inspector
// plugin); the sync engine never lists scopes.
func ListScopes(ctx context.Context, idb bun.IDB, p ListScopesParams) ([]Scope, error) {
	var rows []Scope
	q := idb.NewSelect().Model(&rows).Where("scope > ?", p.After).Order("scope")
	if p.Limit > 0 {
		q = q.Limit(int64(p.Limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list scopes: %w", err)
	}
	return rows, nil
}
