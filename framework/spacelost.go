package framework

import (
	"context"
	"fmt"
	"slices"

	"github.com/ferrysync/ferry/models"
)

// errNoSpace answers a read of a shared space the caller does not read:
// the same for a space that does not exist, so nothing is revealed.
var errNoSpace = &Error{Code: CodeForbidden, Message: "no such space, or you are not a member of it"}

// readableSpace returns the scope of the shared space uid when p reads it,
// as of r's snapshot, and errNoSpace otherwise.
func (a *App) readableSpace(ctx context.Context, r models.Reader, p Principal, uid string) (string, error) {
	if !a.cfg.Spaces || !validUID(uid) {
		return "", errNoSpace
	}
	scopes, err := a.readScopes(ctx, r, p)
	if err != nil {
		return "", err
	}
	scope := spaceScope(uid)
	if !slices.Contains(scopes, scope) {
		return "", errNoSpace
	}
	return scope, nil
}

// LostRequest asks [App.ReadLost] for the uids a device of a former member
// may still hold.
type LostRequest struct {
	// Space is the shared space's uid.
	Space string
	// Model is the model whose records are listed; Models lists several
	// (in one pass over the space's versions).
	Model  string
	Models []string
	// Seen is the space's version the device had read up to while its
	// user was a member (its checkpoint).
	Seen int64
	// Unproven says Seen is only the device's word (a protocol whose
	// checkpoints cannot be signed, such as WatermelonDB's numeric
	// last_pulled_at): the listing then needs the space's own record of
	// p's membership, p's ferry.Member record (live or tombstone), and is
	// answered as for a stranger without it; Seen counts only up to when
	// p lost the space, and when nothing says when that was, nothing is
	// listed.
	Unproven bool
	// UpTo is the listing's upper bound, as the first page answered it
	// (0: this is the first page; the space's current version is taken).
	// A listing never goes past it, so it ends.
	UpTo int64
	// After is an exclusive version bound for paging (0: from the start).
	After int64
	// Limit caps the uids returned (0: no cap).
	Limit int
}

// LostResponse is the answer of [App.ReadLost].
type LostResponse struct {
	// UIDs are the records' uids, in version order.
	UIDs []string
	// Records are the same records with their models.
	Records []LostRecord
	// UpTo is the listing's upper bound: pass it with every later page.
	UpTo int64
	// Last is the version listed through: the next page's After. Once the
	// listing is complete it is UpTo and Done is set.
	Last int64
	// Done is set when no uid is left after Last.
	Done bool
}

// LostRecord is one record of a [LostResponse].
type LostRecord struct {
	Model, UID string
}

// maxLostScan bounds the records one [App.ReadLost] call reads per uid it
// may return: records created after the user lost the space are read and
// skipped, and a space full of them must not make one call read it all.
const maxLostScan = 10

// ReadLost lists the uids of model's records in a shared space that a
// device of p may hold from the time p read the space, for a protocol
// that can only tell a device to delete records one by one (RxDB): in
// version order, paged, up to a bound fixed by the first page. A record is
// listed when its version is at most Seen, or, when the space's records
// say when p lost the space (p's ferry.Member tombstone, the ferry.Space
// tombstone), when it was written before that: its version is at most the
// loss's, or it was created before the loss and changed since (the device
// may hold it in an older state). A record created after the loss is never
// named. When nothing says when p lost it (an [Authorizer] dropped the
// space), only versions up to Seen are listed.
//
// It reveals uids of a space p may no longer read, and checks no
// membership: the caller must have proven that p read the space up to
// Seen (the RxDB plugin signs its checkpoints for that). Only uids are
// returned, never data. A space that does not exist lists nothing. A page
// may hold fewer than Limit uids and not be the last (Done unset) when
// many records created after the loss had to be skipped.
func (a *App) ReadLost(ctx context.Context, p Principal, req LostRequest) (*LostResponse, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	if !a.cfg.Spaces || !validUID(req.Space) {
		return nil, errNoSpace
	}
	names := req.Models
	if req.Model != "" {
		names = append([]string{req.Model}, names...)
	}
	if len(names) == 0 {
		return nil, NewError(CodeUnknownModel, "no model named")
	}
	for _, name := range names {
		if _, ok := a.model(name); !ok {
			return nil, NewError(CodeUnknownModel, "unknown model %q", name)
		}
	}
	tx, err := a.store.BeginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("framework: read lost space: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	scope := spaceScope(req.Space)
	// When p lost the space: the latest of the tombstones that remove it.
	// An unproven Seen counts only up to the loss, so every tombstone
	// that removes the space is considered.
	var loss *models.Record
	wasMember := false
	for _, own := range []struct{ model, uid string }{{MemberModel, p.UserID}, {SpaceModel, req.Space}} {
		rows, err := tx.Load(ctx, models.LoadParams{Scope: scope, Model: own.model, UIDs: []string{own.uid}})
		if err != nil {
			return nil, fmt.Errorf("framework: read lost space: %w", err)
		}
		for i := range rows {
			r := &rows[i]
			wasMember = wasMember || own.model == MemberModel
			if r.IsDeleted && (req.Unproven || r.Version > req.Seen) && (loss == nil || r.Version > loss.Version) {
				loss = r
			}
		}
	}
	if req.Unproven && !wasMember {
		return nil, errNoSpace
	}
	bound := req.Seen
	switch {
	case loss != nil:
		bound = loss.Version
	case req.Unproven:
		bound = 0 // nothing says when p lost it: p's word alone lists nothing
	}
	resp := &LostResponse{UIDs: []string{}, Records: []LostRecord{}, UpTo: req.UpTo, Last: max(req.After, 0)}
	if resp.UpTo <= 0 {
		state, err := tx.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{scope}})
		if err != nil {
			return nil, fmt.Errorf("framework: read lost space: %w", err)
		}
		resp.UpTo = state[scope].Version
		if loss == nil {
			resp.UpTo = min(resp.UpTo, bound) // nothing later can be listed
		}
	}
	scan := 0
	for resp.Last < resp.UpTo {
		want := 0
		if req.Limit > 0 {
			want = req.Limit - len(resp.UIDs)
			if want <= 0 || scan >= maxLostScan*req.Limit {
				return resp, nil
			}
		}
		page, err := tx.ReadFeed(ctx, models.ReadFeedParams{
			Scopes: []models.ScopeRange{{Scope: scope, After: resp.Last, UpTo: resp.UpTo}},
			Models: names, Limit: want,
		})
		if err != nil {
			return nil, fmt.Errorf("framework: read lost space: %w", err)
		}
		for i := range page.Records {
			r := &page.Records[i]
			if r.Version <= bound || loss != nil && r.CreatedAt.Before(loss.UpdatedAt) {
				resp.UIDs = append(resp.UIDs, r.UID)
				resp.Records = append(resp.Records, LostRecord{Model: r.Model, UID: r.UID})
			}
			resp.Last = r.Version
		}
		scan += len(page.Records)
		if !page.More {
			resp.Last = resp.UpTo
		}
	}
	resp.Done = true
	return resp, nil
}
