package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// Membership is one user's role in one shared scope (a space). The
// framework keeps the table in step with the space's member records, in
// the transaction that writes them, so "which scopes may this user read"
// is one indexed read in the same snapshot as the records.
type Membership struct {
	bun.BaseModel `bun:"table:ferry_members,alias:fm"`

	Scope string `bun:"scope,pk,type:varchar(255)"`
	User  string `bun:"user_id,pk,type:varchar(255)"`
	Role  string `bun:"role,notnull,type:varchar(16)"`
}

// MembershipsParams selects memberships: a user's (User set), a scope's
// (Scope set), or one user's in one scope (both set).
type MembershipsParams struct {
	User  string
	Scope string
	// Limit caps the rows (0: no cap); rows come in scope then user order.
	Limit int
}

// SetMembershipParams gives User the Role in Scope; an empty Role removes
// the membership.
type SetMembershipParams struct {
	Scope string
	User  string
	Role  string
}

// DropMembershipsParams names the scope whose memberships all go.
type DropMembershipsParams struct {
	Scope string
}

// ReadMemberships reads memberships (see [MembershipsParams]); at least
// one of User and Scope must be set.
func ReadMemberships(ctx context.Context, idb bun.IDB, p MembershipsParams) ([]Membership, error) {
	if p.User == "" && p.Scope == "" {
		return nil, fmt.Errorf("models: read memberships: name a user or a scope")
	}
	q := idb.NewSelect().Model((*Membership)(nil))
	if p.User != "" {
		q = q.Where("user_id = ?", p.User)
	}
	if p.Scope != "" {
		q = q.Where("scope = ?", p.Scope)
	}
	q = q.Order("scope", "user_id")
	if p.Limit > 0 {
		q = q.Limit(int64(p.Limit))
	}
	var rows []Membership
	if err := q.Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read memberships: %w", err)
	}
	return rows, nil
}

// SetMembership writes (or, with an empty role, removes) one membership.
func SetMembership(ctx context.Context, idb bun.IDB, p SetMembershipParams) error {
	if p.Scope == "" || p.User == "" {
		return fmt.Errorf("models: set membership: scope and user are required")
	}
	var err error
	if p.Role == "" {
		_, err = idb.NewDelete().Model((*Membership)(nil)).
			Where("scope = ?", p.Scope).Where("user_id = ?", p.User).Exec(ctx)
	} else {
		row := &Membership{Scope: p.Scope, User: p.User, Role: p.Role}
		_, err = idb.NewInsert().Model(row).
			On("CONFLICT (scope, user_id) DO UPDATE").Set("role = EXCLUDED.role").Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("set membership of %q in %q: %w", p.User, p.Scope, err)
	}
	return nil
}

// DropMemberships removes every membership of a scope (a deleted space).
func DropMemberships(ctx context.Context, idb bun.IDB, p DropMembershipsParams) error {
	if _, err := idb.NewDelete().Model((*Membership)(nil)).Where("scope = ?", p.Scope).Exec(ctx); err != nil {
		return fmt.Errorf("drop memberships of %q: %w", p.Scope, err)
	}
	return nil
}
