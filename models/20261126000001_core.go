package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerCore adds the first migration: the generic record table with its
// feed index, and the scope counters. bun names a Go migration after the
// file that registers it, hence this file's name.
func registerCore(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, model := range []any{(*GenericRecord)(nil), (*scopeV1)(nil)} {
				if _, err := tx.NewCreateTable().Model(model).IfNotExists().Exec(ctx); err != nil {
					return fmt.Errorf("create table for %T: %w", model, err)
				}
			}
			return createFeedIndex(ctx, tx, (*GenericRecord)(nil))
		})
	}, func(ctx context.Context, db *bun.DB) error {
		for _, model := range []any{(*Scope)(nil), (*GenericRecord)(nil)} {
			if _, err := db.NewDropTable().Model(model).IfExists().Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// scopeV1 is ferry_scopes as this migration creates it; later migrations
// add columns (usage counters), so the table is not created from [Scope].
type scopeV1 struct {
	bun.BaseModel `bun:"table:ferry_scopes,alias:fs"`

	Scope         string `bun:"scope,pk,type:varchar(255)"`
	Version       int64  `bun:"version,notnull"`
	PurgedVersion int64  `bun:"purged_version,notnull"`
}
