package models

import (
	"context"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerKeys adds the fourth migration: the generic record table is
// keyed by owner, model and uid instead of model and uid, so two users may
// hold the same uid ([UpgradeKeys]; typed tables are upgraded when the
// framework creates them).
func registerKeys(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return upgradeKeys(ctx, tx, tx.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]()))
		})
	}, func(context.Context, *bun.DB) error {
		return nil // two owners may hold one uid now; the old key cannot come back
	})
}
