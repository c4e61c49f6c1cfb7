package framework

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
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
	// Spaces filters by space: shared spaces' uids, and [PersonalSpace]
	// for the caller's own; empty means every space the caller reads. A
	// space the caller does not read brings nothing. Part of the cursor's
	// filter, as Models.
	Spaces []string
	// Subscriptions pull only the records of the named subscriptions
	// ("name(v1,v2)", see [App.Subscribe]); a changed record that belongs
	// to none comes as a gone marker. Not with Models. Part of the
	// cursor's filter.
	Subscriptions []string
	// DeviceID names the pulling device, for [App.OnPulled] observers
	// only (the query's device_id); it changes nothing in the answer.
	DeviceID string
}

// PersonalSpace names the caller's own space in [PullRequest.Spaces] (the
// query's spaces=~): no space uid can be it.
const PersonalSpace = "~"

// PullResponse is one page of changes ([wire.PullResponse]).
type PullResponse = wire.PullResponse

// Pull returns the latest state of each record the caller may read that
// changed after the cursor, tombstones included, in version order. When
// HasMore is set the client pulls again with the returned cursor and
// stores the cursor only after the last page.
func (a *App) Pull(ctx context.Context, p Principal, req PullRequest) (*PullResponse, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = a.cfg.DefaultPullLimit
	}
	if limit > a.cfg.MaxPullLimit {
		limit = a.cfg.MaxPullLimit
	}
	names, err := a.modelFilter(req.Models)
	if err != nil {
		return nil, err
	}
	req.Models = names
	if req.Spaces, err = a.spaceFilter(req.Spaces); err != nil {
		return nil, err
	}
	subs, err := a.parseSubscriptions(req.Subscriptions)
	if err != nil {
		return nil, err
	}
	filter := filterKey(req.Models, req.Spaces)
	if subs != nil {
		if req.Models != nil {
			return nil, &Error{Code: CodeInvalid, Message: "a pull takes models or subscriptions, not both",
				Details: []FieldError{{Path: "models", Message: "not with subscriptions"}}}
		}
		filter = filterKey(nil, req.Spaces, subscriptionTexts(subs)...)
		req.Models = subscriptionModels(subs)
	}
	cur, err := decodeCursor(req.Cursor, filter)
	if err != nil {
		return nil, err
	}
	resp := &PullResponse{Changes: []*Record{}}
	tx, err := a.store.BeginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	// What the user reads is read in the same snapshot as the records: a
	// membership removed before this snapshot lets nothing of its space
	// through, one added is read whole.
	scopes, err := a.readScopes(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	scopes = filterScopes(p, scopes, req.Spaces)
	sort.Strings(scopes)
	removed := removedSpaces(cur, scopes)
	next := &cursor{Pos: map[string]int64{}, Filter: cur.Filter}
	state, err := tx.ScopeState(ctx, models.ScopeStateParams{Scopes: scopes})
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
			stale = named && horizon > cur.Purged[s] && pos < horizon
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
	}
	for _, s := range scopes {
		if _, frozen := upper[s]; !frozen {
			// The first page, or a space granted while paging: it is read
			// up to its version now, from its beginning.
			upper[s] = state[s].Version
		}
	}
	ranges := make([]models.ScopeRange, len(scopes))
	for i, s := range scopes {
		ranges[i] = models.ScopeRange{Scope: s, After: cur.Pos[s], UpTo: upper[s]}
	}
	feed, err := tx.ReadFeed(ctx, models.ReadFeedParams{
		Scopes: ranges, Models: req.Models, Limit: limit, MaxBytes: a.cfg.MaxPullBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	resp.HasMore = feed.More
	next.Pos = feed.Positions
	resp.Changes = make([]*Record, 0, len(feed.Records))
	for i := range feed.Records {
		rec := &feed.Records[i]
		if subs != nil && !matchSubscriptions(subs, rec) {
			// It changed and belongs to none of the subscriptions: a
			// device that may hold it (from before the change) drops it;
			// one reading the scope from its start has nothing to drop.
			if cur.Pos[rec.Owner] == 0 {
				continue
			}
			resp.Changes = append(resp.Changes, goneRecord(rec))
			continue
		}
		resp.Changes = append(resp.Changes, wireRecord(rec))
	}
	if resp.HasMore {
		next.Removed = removed
	} else {
		resp.Removed = removed
		resp.Spaces = spacesOfScopes(scopes)
	}
	if resp.HasMore {
		next.Upper = map[string]int64{}
		next.Purged = map[string]int64{}
		for _, s := range scopes {
			next.Upper[s] = upper[s]
			next.Purged[s] = state[s].PurgedVersion
		}
	}
	resp.Cursor = next.encode()
	if a.onPulled.Len() > 0 {
		heads := make(map[string]int64, len(scopes))
		for _, s := range scopes {
			heads[s] = state[s].Version
		}
		a.reportPulled(ctx, p, req.DeviceID, next.Pos, heads, resp)
	}
	a.stats.pullPages.Add(1)
	a.stats.pullRecords.Add(int64(len(resp.Changes)))
	return resp, nil
}

// modelFilter checks a pull's model filter: at most as many names as
// there are registered models, each registered; repeated names count once
// (each name would otherwise add a table to the feed's query).
func (a *App) modelFilter(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if n := len(a.Models()); len(names) > n {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("the models filter names at most %d models", n),
			Details: []FieldError{{Path: "models", Message: fmt.Sprintf("at most %d names", n)}}}
	}
	out := make([]string, 0, len(names))
	for _, name := range names {
		if _, ok := a.model(name); !ok {
			return nil, &Error{Code: CodeUnknownModel, Message: fmt.Sprintf("unknown model %q", name),
				Details: []FieldError{{Path: "models", Message: "not registered"}}}
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
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
	// MaxBytes caps the records' size (0: no cap; see
	// [models.Record.Size]): the answer stops early with HasMore, and
	// always holds at least one record. Adapters set it to
	// Config.MaxPullBytes.
	MaxBytes int
	// Checkpointed says After is a checkpoint the device holds, so it is
	// checked against the purge horizon even when it is 0 (the device
	// synced while the user had nothing, and may have pushed since).
	// Without it, After 0 means a first sync.
	Checkpointed bool
	// Space, when set, reads that shared space's scope instead of the
	// caller's own (a space uid, as clients name it). A caller who does
	// not read the space, a space that does not exist and a server
	// without spaces are all answered [ErrForbidden] with the same
	// message, so the answer never tells them apart.
	Space string
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

// ReadSince returns the caller's own records (or, with Space, a shared
// space's) changed after a version, read in one snapshot together with the
// scope's current version and, for a space, the caller's right to read
// it. It is the
// primitive under protocol adapters whose checkpoint is a number
// (WatermelonDB's timestamp, RxDB's checkpoint); native clients use the
// opaque cursor of [App.Pull]. Versions count the caller's own scope, so a
// checkpoint is meaningful for one user only.
func (a *App) ReadSince(ctx context.Context, p Principal, req SinceRequest) (*SinceResponse, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	names, err := a.modelFilter(req.Models)
	if err != nil {
		return nil, err
	}
	req.Models = names
	tx, err := a.store.BeginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("read since: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	scope := p.UserID
	if req.Space != "" {
		if scope, err = a.readableSpace(ctx, tx, p, req.Space); err != nil {
			return nil, err
		}
	}
	state, err := tx.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{scope}})
	if err != nil {
		return nil, err
	}
	resp := &SinceResponse{Version: state[scope].Version}
	if (req.After > 0 || req.Checkpointed) && req.After < state[scope].PurgedVersion {
		return nil, NewError(CodeResetRequired, "changes after this checkpoint were purged; sync from the start")
	}
	page, err := tx.ReadFeed(ctx, models.ReadFeedParams{
		Scopes: []models.ScopeRange{{Scope: scope, After: req.After, UpTo: resp.Version}},
		Models: req.Models, SkipDeleted: req.SkipDeleted, Limit: req.Limit, MaxBytes: req.MaxBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("read since: %w", err)
	}
	rows := page.Records
	resp.HasMore = page.More
	resp.Records = make([]*Record, len(rows))
	for i := range rows {
		resp.Records[i] = wireRecord(&rows[i])
	}
	return resp, nil
}
