package models

import (
	"context"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// registerFeed adds the second migration, for stores the first version of
// the core migration created: pulls read each record table by its
// (owner, version) index, so the separate change index goes. Writing it
// made every record cost a second row and two more index entries.
func registerFeed(m *migrate.Migrations) error {
	return m.Register(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if err := createFeedIndex(ctx, tx, (*GenericRecord)(nil)); err != nil {
				return err
			}
			_, err := tx.NewDropTable().Table("ferry_changes").IfExists().Exec(ctx)
			return err
		})
	}, func(context.Context, *bun.DB) error {
		return nil // the change index is not rebuilt
	})
}
