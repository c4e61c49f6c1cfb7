package framework

import (
	"context"
	"fmt"
	"sort"

	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// PullRequest asks for the changes after Cursor.
type PullRequest struct {
	// Cursor is the opaque position from the previous pull; empty for an
	// initial sync.
	Cursor string
	// Limit caps the page (0: the default; above the maximum: capped).
	Limit int
	// Models filters by model; empty means all. A cursor belongs to the
	// filter it was issued for.
	Models []string
}

// PullResponse is one page of changes.
type PullResponse struct {
	Changes []*Record `json:"changes"`
	Cursor  string    `json:"cursor"`
	HasMore bool      `json:"has_more"`
}

// readScopes are the scopes p may read: its own. Sharing plugins will widen
// this.
func (a *App) readScopes(p Principal) []string {
	return []string{p.UserID}
}

// Pull returns the latest state of each record the caller may read that
// changed after the cursor, tombstones included, in version order. When
// HasMore is set the client pulls again with the returned cursor and
// stores the cursor only after the last page.
func (a *App) Pull(ctx context.Context, p Principal, req PullRequest) (*PullResponse, error) {
	if p.UserID == "" {
		return nil, NewError(CodeUnauthenticated, "no user")
	}
	limit := req.Limit
	if limit <= 0 {
		limit = a.cfg.DefaultPullLimit
	}
	if limit > a.cfg.MaxPullLimit {
		limit = a.cfg.MaxPullLimit
	}
	for _, name := range req.Models {
		if _, ok := a.model(name); !ok {
			return nil, &Error{Code: CodeUnknownModel, Message: fmt.Sprintf("unknown model %q", name),
				Details: []FieldError{{Path: "models", Message: "not registered"}}}
		}
	}
	cur, err := decodeCursor(req.Cursor, filterKey(req.Models))
	if err != nil {
		return nil, err
	}
	scopes := a.readScopes(p)
	sort.Strings(scopes)

	resp := &PullResponse{Changes: []*Record{}}
	tx, err := a.db.BeginTx(ctx, models.ReadTxOptions(a.db))
	if err != nil {
		return nil, fmt.Errorf("pull: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	next := &cursor{Pos: map[string]int64{}, Filter: cur.Filter}
	state, err := models.ScopeState(ctx, tx, scopes)
	if err != nil {
		return nil, err
	}
	// A tombstone this cursor has not passed may have been purged: the
	// device could keep a record deleted elsewhere, so it must start over.
	// A stored cursor is checked against the horizon; a pull that is
	// paging only against purges since its first page (an initial sync
	// needs no tombstones, and must be able to finish).
	for _, s := range scopes {
		// A position the cursor names, even 0 (the device pulled while
		// the scope was empty, then may have pushed), is checked; only a
		// scope the cursor has never seen starts from nothing.
		pos, named := cur.Pos[s]
		horizon := state[s].PurgedVersion
		stale := named && pos < horizon
		if cur.Upper != nil {
			stale = horizon > cur.Purged[s] && pos < horizon
		}
		if stale {
			return nil, NewError(CodeResetRequired, "changes after this cursor were purged; discard the cursor and local synced state, and pull from the start")
		}
		if cur.Pos[s] > state[s].Version {
			// The store is behind the cursor (restored from a backup, or
			// another server): new changes would hide below the cursor.
			return nil, NewError(CodeResetRequired, "the cursor is ahead of this server's data; discard it and pull from the start")
		}
	}
	upper := cur.Upper
	if upper == nil {
		// First page: freeze the upper bounds, so paging ends.
		upper = map[string]int64{}
		for _, s := range scopes {
			upper[s] = state[s].Version
		}
	}
	var index []models.Change
	for _, s := range scopes {
		pos, up := cur.Pos[s], upper[s]
		next.Pos[s] = pos
		if resp.HasMore || pos >= up {
			continue // the page is full, or nothing new in this scope
		}
		need := limit - len(index)
		rows, err := models.ReadChanges(ctx, tx, models.ChangesParams{
			Scope: s, After: pos, UpTo: up, Models: req.Models, Limit: need + 1,
		})
		if err != nil {
			return nil, err
		}
		if len(rows) > need {
			rows = rows[:need]
			next.Pos[s] = rows[need-1].Version
			resp.HasMore = true
		} else {
			next.Pos[s] = up
		}
		index = append(index, rows...)
	}
	if resp.HasMore {
		next.Upper = upper
		next.Purged = map[string]int64{}
		for _, s := range scopes {
			next.Purged[s] = state[s].PurgedVersion
		}
	}
	if resp.Changes, err = a.loadChanges(ctx, tx, index); err != nil {
		return nil, err
	}
	resp.Cursor = next.encode()
	return resp, nil
}

// loadChanges loads the records an index page names, in index order.
// Primary-key lookups by uid lists, not a join with the index: a join's
// plan depends on table statistics, and on a freshly loaded table
// PostgreSQL chose a nested loop that made a 5000-record page take 1.3 s
// instead of 30 ms (BenchmarkPullPage5000).
func (a *App) loadChanges(ctx context.Context, idb bun.IDB, index []models.Change) ([]*Record, error) {
	byModel := map[string][]string{}
	for _, c := range index {
		byModel[c.Model] = append(byModel[c.Model], c.UID)
	}
	found := make(map[string]*models.Record, len(index))
	for name, uids := range byModel {
		m, ok := a.model(name)
		if !ok {
			continue // a model no longer registered is not served
		}
		for start := 0; start < len(uids); start += 1000 {
			end := min(start+1000, len(uids))
			rows, err := m.table.Load(ctx, idb, name, uids[start:end])
			if err != nil {
				return nil, fmt.Errorf("pull: load %s: %w", name, err)
			}
			for i := range rows {
				found[name+"\x00"+rows[i].UID] = &rows[i]
			}
		}
	}
	out := make([]*Record, 0, len(index))
	for _, c := range index {
		if r, ok := found[c.Model+"\x00"+c.UID]; ok {
			out = append(out, wireRecord(r))
		}
	}
	return out, nil
}

// SinceRequest asks [App.ReadSince] for the caller's changes after a
// version.
type SinceRequest struct {
	// Models filters by model; empty means all.
	Models []string
	// After is an exclusive version bound (0: from the start).
	After int64
	// Limit caps the records returned (0: no cap).
	Limit int
	// SkipDeleted leaves tombstones out (a first sync needs none).
	SkipDeleted bool
	// Checkpointed says After is a checkpoint the device holds, so it is
	// checked against the purge horizon even when it is 0 (the device
	// synced while the user had nothing, and may have pushed since).
	// Without it, After 0 means a first sync.
	Checkpointed bool
}

// SinceResponse is the answer of [App.ReadSince].
type SinceResponse struct {
	// Records are in version order.
	Records []*Record
	// Version is the caller's scope version in the same snapshot: every
	// change up to it is in Records unless HasMore is set.
	Version int64
	// HasMore is set when Limit cut the answer; pull again after the last
	// record's version.
	HasMore bool
}

// ReadSince returns the caller's own records changed after a version, read
// in one snapshot together with the scope's current version. It is the
// primitive under protocol adapters whose checkpoint is a number
// (WatermelonDB's timestamp, RxDB's checkpoint); native clients use the
// opaque cursor of [App.Pull]. Versions count the caller's own scope, so a
// checkpoint is meaningful for one user only.
func (a *App) ReadSince(ctx context.Context, p Principal, req SinceRequest) (*SinceResponse, error) {
	if p.UserID == "" {
		return nil, NewError(CodeUnauthenticated, "no user")
	}
	for _, name := range req.Models {
		if _, ok := a.model(name); !ok {
			return nil, NewError(CodeUnknownModel, "unknown model %q", name)
		}
	}
	tx, err := a.db.BeginTx(ctx, models.ReadTxOptions(a.db))
	if err != nil {
		return nil, fmt.Errorf("read since: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	state, err := models.ScopeState(ctx, tx, []string{p.UserID})
	if err != nil {
		return nil, err
	}
	resp := &SinceResponse{Version: state[p.UserID].Version}
	if (req.After > 0 || req.Checkpointed) && req.After < state[p.UserID].PurgedVersion {
		return nil, NewError(CodeResetRequired, "changes after this checkpoint were purged; sync from the start")
	}
	var index []models.Change
	after := req.After
	for after < resp.Version {
		batch := 5000
		if req.Limit > 0 {
			batch = min(batch, req.Limit-len(index)+1)
		}
		rows, err := models.ReadChanges(ctx, tx, models.ChangesParams{
			Scope: p.UserID, After: after, UpTo: resp.Version, Models: req.Models, Limit: batch,
		})
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].Version
		for _, r := range rows {
			if req.SkipDeleted && r.IsDeleted {
				continue
			}
			index = append(index, r)
		}
		if req.Limit > 0 && len(index) > req.Limit {
			index = index[:req.Limit]
			resp.HasMore = true
			break
		}
		if len(rows) < batch {
			break
		}
	}
	if resp.Records, err = a.loadChanges(ctx, tx, index); err != nil {
		return nil, err
	}
	return resp, nil
}
