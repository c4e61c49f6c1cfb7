package framework

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ferrysync/ferry/models"
)

// PurgeTombstones removes for good the tombstones written more than
// olderThan ago, and returns how many it removed. Devices that pulled
// since those deletions are unaffected; a device whose cursor is older
// than a purged tombstone gets reset_required (410) on its next pull and
// starts over, so it cannot keep a record deleted elsewhere. The purged
// rows no longer count toward their owners' [App.Usage] and [Quota].
//
// Run it from a periodic job; it works in small transactions, one owner at
// a time, taking the same lock writers take, so it never removes a record
// that a concurrent write is bringing back.
func (a *App) PurgeTombstones(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("framework: purge: olderThan must be positive")
	}
	n, err := a.purgeTombstones(ctx, olderThan)
	a.stats.purgeRuns.Add(1)
	a.stats.purged.Add(int64(n))
	a.stats.lastPurged.Store(int64(n))
	a.stats.lastPurgeAt.Store(a.cfg.Now().UnixNano())
	if err != nil && ctx.Err() == nil { // a cancelled run is not a failure
		a.stats.purgeFails.Add(1)
	}
	return n, err
}

func (a *App) purgeTombstones(ctx context.Context, olderThan time.Duration) (int, error) {
	before := a.cfg.Now().UTC().Add(-olderThan)
	total := 0
	for _, name := range a.Models() {
		m, _ := a.model(name)
		for {
			rows, err := a.store.Tombstones(ctx, models.TombstonesParams{Model: name, Before: before, Limit: 500})
			if err != nil {
				return total, fmt.Errorf("framework: purge %s: %w", name, err)
			}
			byOwner := map[string][]string{}
			for _, r := range rows {
				byOwner[r.Owner] = append(byOwner[r.Owner], r.UID)
			}
			owners := make([]string, 0, len(byOwner))
			for o := range byOwner {
				owners = append(owners, o)
			}
			sort.Strings(owners)
			for _, owner := range owners {
				n, err := a.purgeScope(ctx, m, owner, byOwner[owner], before)
				total += n
				if err != nil {
					return total, fmt.Errorf("framework: purge %s of %s: %w", name, owner, err)
				}
			}
			if len(rows) < 500 {
				break
			}
		}
	}
	return total, nil
}

func (a *App) purgeScope(ctx context.Context, m *model, owner string, uids []string, before time.Time) (int, error) {
	tx, err := a.store.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Lock first, then look again: a write may have revived a record since.
	if err := tx.LockForPurge(ctx, models.LockForPurgeParams{Scope: owner}); err != nil {
		return 0, err
	}
	rows, err := tx.Load(ctx, models.LoadParams{Scope: owner, Model: m.name, UIDs: uids})
	if err != nil {
		return 0, err
	}
	var gone []string
	var horizon int64
	for _, r := range rows {
		if r.IsDeleted && r.UpdatedAt.Before(before) {
			gone = append(gone, r.UID)
			horizon = max(horizon, r.Version)
		}
	}
	if len(gone) == 0 {
		return 0, nil
	}
	if err := tx.Delete(ctx, models.DeleteParams{Scope: owner, Model: m.name, UIDs: gone}); err != nil {
		return 0, err
	}
	if err := tx.LockForPurge(ctx, models.LockForPurgeParams{Scope: owner, Horizon: horizon}); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return len(gone), nil
}
