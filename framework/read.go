package framework

import (
	"context"
	"fmt"

	"github.com/ferrysync/ferry/models"
)

// Read returns the records of model with the given uids that p may read,
// tombstones included, in the order of uids; a uid that does not exist
// and one that p may not read are both simply absent, so an answer never
// tells them apart. Protocol adapters read the server's state of the
// records a device sent with it. It reads outside any transaction: a
// record may change right after.
func (a *App) Read(ctx context.Context, p Principal, model string, uids []string) ([]*Record, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	return a.readScope(ctx, a.store, p.UserID, model, uids)
}

// ReadInSpace is [App.Read] of the shared space uid's records: the records
// of model with the given uids, when p reads that space. A caller who does
// not read it, a space that does not exist and a server without spaces
// are all answered [ErrForbidden] with the same message.
func (a *App) ReadInSpace(ctx context.Context, p Principal, space, model string, uids []string) ([]*Record, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	tx, err := a.store.BeginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("framework: read %s: %w", model, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	scope, err := a.readableSpace(ctx, tx, p, space)
	if err != nil {
		return nil, err
	}
	return a.readScope(ctx, tx, scope, model, uids)
}

// readScope reads model's records among uids in scope, through r.
func (a *App) readScope(ctx context.Context, r models.Reader, scope, model string, uids []string) ([]*Record, error) {
	m, ok := a.model(model)
	if !ok {
		return nil, NewError(CodeUnknownModel, "unknown model %q", model)
	}
	if len(uids) == 0 {
		return nil, nil
	}
	rows, err := r.Load(ctx, models.LoadParams{Scope: scope, Model: m.name, UIDs: uids})
	if err != nil {
		return nil, fmt.Errorf("framework: read %s: %w", model, err)
	}
	byUID := make(map[string]*Record, len(rows))
	for i := range rows {
		byUID[rows[i].UID] = wireRecord(&rows[i])
	}
	out := make([]*Record, 0, len(byUID))
	for _, uid := range uids {
		if r, ok := byUID[uid]; ok {
			out = append(out, r)
			delete(byUID, uid) // a repeated uid comes once
		}
	}
	return out, nil
}
