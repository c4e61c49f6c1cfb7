package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerCore adds the first migration: the generic record table, the
// scope counters and the change index. bun names a Go migration after the
// file that registers it, hence this file's name.
func registerCore(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, model := range []any{(*GenericRecord)(nil), (*Scope)(nil), (*Change)(nil)} {
				if _, err := tx.NewCreateTable().Model(model).IfNotExists().Exec(ctx); err != nil {
					return fmt.Errorf("create table for %T: %w", model, err)
				}
			}
			// Pulls scan the change index by scope and version.
			_, err := tx.NewCreateIndex().Model((*Change)(nil)).Index("ferry_changes_scope_version").
				IfNotExists().Column("scope", "version").Exec(ctx)
			return err
		})
	}, func(ctx context.Context, db *bun.DB) error {
		for _, model := range []any{(*Change)(nil), (*Scope)(nil), (*GenericRecord)(nil)} {
			if _, err := db.NewDropTable().Model(model).IfExists().Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}
