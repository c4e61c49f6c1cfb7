package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/models"
)

// The store-decided push: when every change of a push is settled by a
// rule the store applies itself (a policy that advertises
// [models.NewerWins], no apply hooks), PostgreSQL can compare modify_at
// in the statement that writes ([models.NewerWriter]). A push of one model
// then costs one statement: no transaction round trips, no reading the
// stored rows first. Only the changes that were not written are loaded
// afterwards, to answer them by the same rule in Go (stale, or applied for
// a retry); anything else goes the ordinary way.

// newerRows caps the rows of one statement, like the bulk upsert's chunks.
const newerRows = 500

// storeDecides reports whether the store can decide every change of this
// push by itself. The models' routes were decided beforehand (planOf);
// this adds what depends on the push.
func (a *App) storeDecides(preps []*prepared, opts PushOptions) bool {
	if opts.AbortOnStale || a.fastestRoute > routeStore {
		return false
	}
	pushRule := models.NoRule
	if opts.Policy != nil {
		pushRule = StoreRuleOf(opts.Policy)
	}
	n := 0
	for _, pr := range preps {
		if pr == nil {
			continue
		}
		rule := pr.model.rule
		if opts.Policy != nil {
			rule = pushRule
		}
		// A tombstone without data keeps the stored data, which only the
		// ordinary path reads.
		if pr.plan.route(rule) != routeStore || pr.rec.Data == nil {
			return false
		}
		n++
	}
	if n < 2 {
		return n == 1
	}
	seen := make(map[string]bool, n)
	for _, pr := range preps {
		if pr == nil {
			continue
		}
		key := pr.model.name + "\x00" + pr.rec.UID
		if seen[key] {
			return false // one statement cannot write a row twice
		}
		seen[key] = true
	}
	return true
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
	var rd models.Reader = a.store
	writeIfNewer := a.store.WriteIfNewer
	var tx models.Tx
	if len(stmts) > 1 {
		t, err := a.store.Begin(ctx)
		if err != nil {
			return nil, nil, err
		}
		defer t.Rollback() //nolint:errcheck // a no-op after Commit
		tx, rd, writeIfNewer = t, t, t.WriteIfNewer
	}
	now := a.cfg.Now().UTC().Truncate(time.Microsecond)
	next := make([]*models.Record, len(preps))
	written := make([]*Record, len(preps))
	skipped := map[*model][]int{}
	base := int64(-1) // the version before the span, once a write tells it
	for _, s := range stmts {
		recs := make([]*models.Record, len(s.idx))
		for j, i := range s.idx {
			rec := preps[i].rec
			rec.Owner, rec.CreatedAt, rec.UpdatedAt, rec.Version = p.UserID, now, now, place[i]
			recs[j], next[i] = &rec, &rec
		}
		versions, err := writeIfNewer(ctx, models.WriteIfNewerParams{Scope: p.UserID, Model: s.m.name, Span: span, Records: recs})
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
			base = versions[j] - place[i]
			rec := wireRecord(recs[j])
			results[i].Status, results[i].Record = StatusApplied, rec
			written[i] = rec
		}
	}
	if a.afterNewerWrite != nil {
		a.afterNewerWrite()
	}
	var rest []*prepared
	var lost []metConflict
	for m, idx := range skipped {
		uids := make([]string, len(idx))
		for j, i := range idx {
			uids[j] = preps[i].rec.UID
		}
		rows, err := rd.Load(ctx, models.LoadParams{Scope: p.UserID, Model: m.name, UIDs: uids})
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", m.name, err)
		}
		stored := make(map[string]*models.Record, len(rows))
		for k := range rows {
			stored[rows[k].UID] = &rows[k]
		}
		for _, i := range idx {
			s, res := stored[preps[i].rec.UID], &results[i]
			if s == nil {
				rest = settleLater(rest, preps, i) // purged meanwhile
				continue
			}
			// The rule the statement applied, in Go: it explains why the
			// change was not written, or the row changed meanwhile.
			switch models.NewerWins.Decide(s, next[i]) {
			case models.Repeat:
				res.Status, res.Record = StatusApplied, wireRecord(s)
			case models.Lose:
				res.Status, res.Record = StatusStale, wireRecord(s)
				lost = a.noteConflict(lost, ConflictStale, s, next[i], s)
			default:
				rest = settleLater(rest, preps, i) // rewritten meanwhile
			}
		}
	}
	if tx != nil {
		// Several statements share a transaction: their conflicts commit
		// with them.
		if err := a.reportConflicts(ctx, tx.Bun(), p, lost); err != nil {
			return nil, nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, nil, fmt.Errorf("commit: %w", err)
		}
	} else if err := a.reportLost(ctx, p, lost); err != nil {
		return nil, nil, err
	}
	if base >= 0 {
		// The span, base+1 to base+Count, was taken in one transaction:
		// every version in it is this push's.
		for i := range preps {
			if place[i] > 0 {
				results[i].slot = base + place[i]
			}
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
