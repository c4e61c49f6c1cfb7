package models

import (
	"context"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerUsageCounted adds the fifth migration: on PostgreSQL the generic
// table's usage trigger function is replaced by one that skips the rows a
// store-decided write counted itself (typed tables' functions are
// replaced when the framework creates their tables).
func registerUsageCounted(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return ensureUsageTriggers(ctx, tx, tx.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]()))
		})
	}, func(context.Context, *bun.DB) error {
		return nil
	})
}
