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
	// Model is the model whose records are listed.
	Model string
	// Seen is the space's version the device had read up to while its
	// user was a member (its checkpoint).
	Seen int64
	// After is an exclusive version bound for paging (0: from the start).
	After int64
	// Limit caps the uids returned (0: no cap).
	Limit int
}

// LostResponse is the answer of [App.ReadLost].
type LostResponse struct {
	// UIDs are the records' uids, in version order.
	UIDs []string
	// Last is the version listed through: the next page's After. Once the
	// listing is complete it is the bound itself and Done is set.
	Last int64
	// Done is set when no uid is left after Last.
	Done bool
}

// ReadLost lists the uids of model's records in a shared space that a
// device of p may hold from the time p read the space, for a protocol
// that can only tell a device to delete records one by one (RxDB): the
// records of the space whose version is at most the bound, in version
// order, paged. The bound is Seen, or the version at which p lost the
// space when the space's records say so and it is later (p's ferry.Member
// tombstone, the ferry.Space tombstone): a record changed between the
// device's checkpoint and the revoke may be on the device in an older
// state. Records changed after the bound are never named.
//
// It reveals uids of a space p may no longer read, and checks no
// membership: the caller must have proven that p read the space up to
// Seen (the RxDB plugin signs its checkpoints for that). Only uids are
// returned, never data. A space that does not exist lists nothing.
func (a *App) ReadLost(ctx context.Context, p Principal, req LostRequest) (*LostResponse, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	if !a.cfg.Spaces || !validUID(req.Space) {
		return nil, errNoSpace
	}
	m, ok := a.model(req.Model)
	if !ok {
		return nil, NewError(CodeUnknownModel, "unknown model %q", req.Model)
	}
	tx, err := a.store.BeginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("framework: read lost space: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	scope := spaceScope(req.Space)
	bound := req.Seen
	for _, own := range []struct{ model, uid string }{{MemberModel, p.UserID}, {SpaceModel, req.Space}} {
		rows, err := tx.Load(ctx, models.LoadParams{Scope: scope, Model: own.model, UIDs: []string{own.uid}})
		if err != nil {
			return nil, fmt.Errorf("framework: read lost space: %w", err)
		}
		for _, r := range rows {
			if r.IsDeleted && r.Version > bound {
				bound = r.Version
			}
		}
	}
	resp := &LostResponse{UIDs: []string{}, Last: max(req.After, 0)}
	if resp.Last >= bound {
		resp.Done = true
		return resp, nil
	}
	page, err := tx.ReadFeed(ctx, models.ReadFeedParams{
		Scopes: []models.ScopeRange{{Scope: scope, After: resp.Last, UpTo: bound}},
		Models: []string{m.name}, Limit: req.Limit,
	})
	if err != nil {
		return nil, fmt.Errorf("framework: read lost space: %w", err)
	}
	for i := range page.Records {
		resp.UIDs = append(resp.UIDs, page.Records[i].UID)
		resp.Last = page.Records[i].Version
	}
	if !page.More {
		resp.Last, resp.Done = bound, true
	}
	return resp, nil
}
