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
	m, ok := a.model(model)
	if !ok {
		return nil, NewError(CodeUnknownModel, "unknown model %q", model)
	}
	if len(uids) == 0 {
		return nil, nil
	}
	rows, err := a.store.Load(ctx, models.LoadParams{Scope: p.UserID, Model: m.name, UIDs: uids})
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
