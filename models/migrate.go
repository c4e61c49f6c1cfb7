package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// Migrations returns Ferry's own schema migrations. A new set is built on
// every call, so nothing is shared between App values.
func Migrations() (*migrate.Migrations, error) {
	m := migrate.NewMigrations()
	if err := registerCore(m); err != nil {
		return nil, fmt.Errorf("register core migration: %w", err)
	}
	return m, nil
}

// Migrate brings Ferry's tables up to date. Several replicas may start at
// once: bun's migration lock lets one migrate while the others wait (up to
// lockWait) and then find nothing left to do.
func Migrate(ctx context.Context, db *bun.DB) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	migrator := migrate.NewMigrator(db, ms,
		migrate.WithTableName("ferry_migrations"),
		migrate.WithLocksTableName("ferry_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true))
	if err := migrator.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	const lockWait = 30 * time.Second
	deadline := time.Now().Add(lockWait)
	for {
		status, err := migrator.MigrationsWithStatus(ctx)
		if err != nil {
			return fmt.Errorf("list migrations: %w", err)
		}
		if len(status.Unapplied()) == 0 {
			return nil
		}
		if err := migrator.Lock(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("migrations table stayed locked for %s (a crashed migration leaves a row in ferry_migration_locks; delete it): %w", lockWait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer migrator.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the lock row names the table
	if _, err := migrator.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
