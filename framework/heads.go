package framework

import (
	"context"
	"fmt"

	"github.com/ferrysync/ferry/models"
)

// Heads returns the current version of every scope p may read (a scope
// nobody wrote to yet is 0): where a pull that reached the end would
// stand. Live streams compare it with what a device has, or was last
// told, to know whether the device has something to pull; it reads the
// scope counters only, never records.
func (a *App) Heads(ctx context.Context, p Principal) (map[string]int64, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	scopes, err := a.readScopes(ctx, a.store, p)
	if err != nil {
		return nil, fmt.Errorf("heads: %w", err)
	}
	state, err := a.store.ScopeState(ctx, models.ScopeStateParams{Scopes: scopes})
	if err != nil {
		return nil, fmt.Errorf("heads: %w", err)
	}
	heads := make(map[string]int64, len(scopes))
	for _, s := range scopes {
		heads[s] = state[s].Version
	}
	return heads, nil
}

// CursorBehind reports whether a pull from cursor (one [App.Pull]
// returned, or "" for a device that never pulled) would bring something,
// given heads from [App.Heads]: some scope's head is past the cursor's
// position, or the cursor is still paging. It answers the protocol's
// invalid_cursor error for a cursor this server did not issue.
func (a *App) CursorBehind(cursor string, heads map[string]int64) (bool, error) {
	c, err := parseCursor(cursor, "")
	if err != nil {
		return false, err
	}
	if c.Upper != nil {
		return true, nil // a pull that stopped between pages
	}
	for scope, v := range heads {
		if v > c.Pos[scope] {
			return true, nil
		}
	}
	for scope := range c.Pos {
		if _, readable := heads[scope]; !readable && spaceOf(scope) != "" {
			return true, nil // a space the user lost: the pull says removed
		}
	}
	return false, nil
}
