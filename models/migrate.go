package models

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
	"github.com/uptrace/bun/schema"
)

// Migrations returns Ferry's own schema migrations. A new set is built on
// every call, so nothing is shared between App values.
func Migrations() (*migrate.Migrations, error) {
	m := migrate.NewMigrations()
	if err := registerCore(m); err != nil {
		return nil, fmt.Errorf("register core migration: %w", err)
	}
	if err := registerFeed(m); err != nil {
		return nil, fmt.Errorf("register feed migration: %w", err)
	}
	if err := registerUsage(m); err != nil {
		return nil, fmt.Errorf("register usage migration: %w", err)
	}
	if err := registerKeys(m); err != nil {
		return nil, fmt.Errorf("register keys migration: %w", err)
	}
	if err := registerMembers(m); err != nil {
		return nil, fmt.Errorf("register members migration: %w", err)
	}
	if err := registerFieldTimes(m); err != nil {
		return nil, fmt.Errorf("register field times migration: %w", err)
	}
	if err := registerSettings(m); err != nil {
		return nil, fmt.Errorf("register settings migration: %w", err)
	}
	return m, nil
}

// migrateLockKey is the PostgreSQL advisory lock Ferry's migrations hold
// ("ferry" in ASCII).
const migrateLockKey = 0x6665727279

// Migrate brings Ferry's tables up to date. Several replicas may start at
// once: bun's migration lock lets one migrate while the others wait (up to
// lockWait) and then find nothing left to do.
//
// then runs after the migrations while the lock is still held: the
// framework creates typed models' tables there, which would race the same
// way.
func Migrate(ctx context.Context, db *bun.DB, then ...func(context.Context, bun.IDB) error) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	if IsPostgres(db) {
		// Replicas starting together would race creating the migration
		// tables; a session advisory lock makes them take turns.
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrateLockKey); err != nil {
			return fmt.Errorf("migrate: take advisory lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrateLockKey) //nolint:errcheck // released with the session anyway
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
			return runAll(ctx, db, then)
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
	return runAll(ctx, db, then)
}

func runAll(ctx context.Context, db *bun.DB, fns []func(context.Context, bun.IDB) error) error {
	for _, fn := range fns {
		if err := fn(ctx, db); err != nil {
			return err
		}
	}
	return nil
}

// genericStep is a migration's up and down functions for a step run on
// the generic record table in one transaction, with nothing to undo.
// (bun names a Go migration after the file that calls Register, so each
// migration file calls it itself.)
func genericStep(step func(context.Context, bun.Tx, *schema.Table) error) (up, down migrate.MigrationFunc) {
	return func(ctx context.Context, db *bun.DB) error {
			return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				return step(ctx, tx, tx.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]()))
			})
		}, func(context.Context, *bun.DB) error {
			return nil
		}
}
