package models

import (
	"context"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerUsage adds the third migration: the usage counters of every
// scope, back-filled from the rows already stored, and the triggers that
// keep them on the generic table (the framework adds them to typed
// models' tables when it creates those).
func registerUsage(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, col := range []string{"records", "bytes"} {
				if _, err := tx.ExecContext(ctx, `ALTER TABLE ferry_scopes ADD COLUMN `+col+` bigint NOT NULL DEFAULT 0`); err != nil {
					return fmt.Errorf("add ferry_scopes.%s: %w", col, err)
				}
			}
			return ensureUsageTriggers(ctx, tx, tx.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]()), true)
		})
	}, func(context.Context, *bun.DB) error {
		return nil // the counters stay
	})
}
