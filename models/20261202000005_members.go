package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerMembers adds the fifth migration: the membership index of shared
// scopes (spaces), and its index by user, the lookup every pull makes.
func registerMembers(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewCreateTable().Model((*Membership)(nil)).IfNotExists().Exec(ctx); err != nil {
				return fmt.Errorf("create ferry_members: %w", err)
			}
			if _, err := tx.NewCreateIndex().Model((*Membership)(nil)).Index("ferry_members_user").
				IfNotExists().Column("user_id", "scope").Exec(ctx); err != nil {
				return fmt.Errorf("index ferry_members: %w", err)
			}
			return nil
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*Membership)(nil)).IfExists().Exec(ctx)
		return err
	})
}
