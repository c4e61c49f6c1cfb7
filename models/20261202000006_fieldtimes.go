package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerFieldTimes adds the sixth migration: per-field edit times of
// the records of models whose conflict policy merges field by field.
func registerFieldTimes(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		if _, err := db.NewCreateTable().Model((*fieldTimesRow)(nil)).IfNotExists().Exec(ctx); err != nil {
			return fmt.Errorf("create ferry_field_times: %w", err)
		}
		return nil
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*fieldTimesRow)(nil)).IfExists().Exec(ctx)
		return err
	})
}
