package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerSettings adds the seventh migration: ferry_settings, the
// database-wide facts every process shares, starting with the state of
// usage accounting (on: the counters were back-filled and the triggers
// keep them; see [UsageAccounter]).
func registerSettings(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ferry_settings (
	name varchar(64) PRIMARY KEY,
	value varchar(255) NOT NULL)`); err != nil {
				return fmt.Errorf("create ferry_settings: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO ferry_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
				usageSetting, usageOn); err != nil {
				return fmt.Errorf("fill ferry_settings: %w", err)
			}
			return nil
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS ferry_settings`)
		return err
	})
}
