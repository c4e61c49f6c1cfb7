package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// The store-decided push: when every change of a push is settled by
// last-writer-wins alone (no apply hooks, no other policy), PostgreSQL can
// compare modify_at in the statement that writes ([models.NewerWriter]).
// A push of one model then costs one statement: no transaction round trips,
// no reading the stored rows first. Only the changes that were not written
// are loaded afterwards, to answer them stale, forbidden or applied (a
// retry); anything else goes the ordinary way.

// newerRows caps the rows of one statement, like the bulk upsert's chunks.
const newerRows = 500

// storeDecides reports whether the store can decide every change of this
// push by itself.
func (a *App) storeDecides(preps []*prepared, opts PushOptions) bool {
	if opts.AbortOnStale || !models.IsPostgres(a.db) {
		return false
	}
	seen := make(map[string]bool, len(preps))
	for _, pr := range preps {
		if pr == nil {
			continue
		}
		m := pr.model
		policy := opts.Policy
		if policy == nil {
			policy = m.policy
		}
		switch policy.(type) {
		case LastWriterWins, *LastWriterWins:
		default:
			return false
		}
		nw, ok := m.table.(models.NewerWriter)
		// A tombstone without data keeps the stored data, which only the
		// ordinary path reads.
		if !ok || m.selfOwned || pr.rec.Data == nil || a.onApply.HasHandlers(m.name) || !nw.CanWriteIfNewer(a.db) {
			return false
		}
		key := m.name + "\x00" + pr.rec.UID
		if seen[key] {
			return false // one statement cannot write a row twice
		}
		seen[key] = true
	}
	return len(seen) > 0
}

// pushNewer applies a push the store decides. It fills results and returns
// the written records, and the changes the ordinary path must settle
// (nil when there are none): those whose stored state changed under the
// push in a way the store's answer does not explain.
//
// Under a quota, the statement taking the push's versions writes nothing
// unless the user's usage leaves room for every change being a new row
// ([models.ErrOverQuota]); the ordinary path then decides change by
// change. Far from the quota this costs nothing: the guard is part of the
// one statement.
func (a *App) pushNewer(ctx context.Context, p Principal, preps []*prepared, results []outcome, quota Quota) ([]*Record, []*prepared, error) {
	// One statement per model (per newerRows of it), in the order the
	// models first appear; every change has its place in the push's span
	// of versions, so versions follow request order across models.
	type statement struct {
		m   *model
		idx []int
	}
	var stmts []*statement
	open := map[*model]*statement{}
	span := models.VersionSpan{Take: true, Guard: newerGuard(quota, preps)}
	place := make([]int64, len(preps))
	for i, pr := range preps {
		if pr == nil {
			continue
		}
		span.Count++
		place[i] = span.Count
		s := open[pr.model]
		if s == nil || len(s.idx) == newerRows {
			s = &statement{m: pr.model}
			open[pr.model] = s
			stmts = append(stmts, s)
		}
		s.idx = append(s.idx, i)
	}
	// One statement is a transaction of its own. Several share one, which
	// keeps the scope locked between them: the span stays the push's own,
	// and its versions consecutive, which the push cursor relies on.
	var idb bun.IDB = a.db
	var tx *bun.Tx
	if len(stmts) > 1 {
		t, err := a.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("begin: %w", err)
		}
		defer t.Rollback() //nolint:errcheck // a no-op after Commit
		tx, idb = &t, t
	}
	now := a.cfg.Now().UTC().Truncate(time.Microsecond)
	next := make([]*models.Record, len(preps))
	written := make([]*Record, len(preps))
	skipped := map[*model][]int{}
	for _, s := range stmts {
		recs := make([]*models.Record, len(s.idx))
		for j, i := range s.idx {
			rec := preps[i].rec
			rec.Owner, rec.CreatedAt, rec.UpdatedAt, rec.Version = p.UserID, now, now, place[i]
			recs[j], next[i] = &rec, &rec
		}
		versions, err := s.m.table.(models.NewerWriter).WriteIfNewer(ctx, idb, p.UserID, span, recs)
		if err != nil {
			return nil, nil, err
		}
		span.Take = false
		for j, i := range s.idx {
			if versions[j] == 0 {
				skipped[s.m] = append(skipped[s.m], i)
				continue
			}
			recs[j].Version = versions[j]
			rec := wireRecord(recs[j])
			results[i].Status, results[i].Record, results[i].written = StatusApplied, rec, true
			written[i] = rec
		}
	}
	if a.afterNewerWrite != nil {
		a.afterNewerWrite()
	}
	var rest []*prepared
	for m, idx := range skipped {
		uids := make([]string, len(idx))
		for j, i := range idx {
			uids[j] = preps[i].rec.UID
		}
		rows, err := m.table.Load(ctx, idb, p.UserID, m.name, uids)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", m.name, err)
		}
		stored := make(map[string]*models.Record, len(rows))
		for k := range rows {
			stored[rows[k].UID] = &rows[k]
		}
		for _, i := range idx {
			s, res := stored[preps[i].rec.UID], &results[i]
			switch {
			case s == nil:
				rest = settleLater(rest, preps, i) // purged meanwhile
			case sameChange(s, next[i]):
				res.Status, res.Record = StatusApplied, wireRecord(s)
			case s.ModifyAt.After(next[i].ModifyAt):
				res.Status, res.Record = StatusStale, wireRecord(s)
			default:
				rest = settleLater(rest, preps, i) // rewritten meanwhile
			}
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return nil, nil, fmt.Errorf("commit: %w", err)
		}
	}
	inOrder := written[:0]
	for _, rec := range written {
		if rec != nil {
			inOrder = append(inOrder, rec)
		}
	}
	return inOrder, rest, nil
}

// settleLater marks preps[i] for the ordinary path in rest, a sparse copy
// of preps.
func settleLater(rest, preps []*prepared, i int) []*prepared {
	if rest == nil {
		rest = make([]*prepared, len(preps))
	}
	rest[i] = preps[i]
	return rest
}
