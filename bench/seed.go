package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// seedBody is the body of every seeded note (about 120 bytes).
var seedBody = strings.Repeat("Lorem ipsum dolor sit amet, ", 4) + "consectetur."

// seedServer stores n notes owned by owner straight into the server's
// tables (notes and the scope counter), as if they had been
// pushed: pushing a million records through HTTP would take minutes and
// is not what the pull workloads measure. It writes what the framework
// would: one version per record, counted from the scope's counter.
func seedServer(ctx context.Context, db *bun.DB, owner, prefix string, n int, base time.Time) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var v0 int64
		if err := tx.NewRaw(`SELECT version FROM ferry_scopes WHERE scope = ?`, owner).Scan(ctx, &v0); err != nil {
			return fmt.Errorf("scope of %s: %w", owner, err)
		}
		if models.IsPostgres(db) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notes (uid, owner, modify_at, is_deleted, version, created_at, updated_at, title, body, tags, pinned)
				SELECT ? || g, ?, ?::timestamptz + g * interval '1 microsecond', false, ? + g, now(), now(),
				       'Note ' || g, ?, '["work","home"]', g % 10 = 0
				FROM generate_series(1, ?::int) g`, prefix, owner, base, v0, seedBody, n); err != nil {
				return fmt.Errorf("seed notes: %w", err)
			}
		} else {
			now := time.Now().UTC()
			const chunk = 500
			for start := 1; start <= n; start += chunk {
				end := min(start+chunk-1, n)
				notes := make([]server.Note, 0, end-start+1)
				for g := start; g <= end; g++ {
					uid := prefix + strconv.Itoa(g)
					v := v0 + int64(g)
					notes = append(notes, server.Note{
						Base: models.Base{ID: uid, OwnerID: owner, ModifiedAt: base.Add(time.Duration(g) * time.Microsecond),
							Version: v, CreatedAt: now, UpdatedAt: now},
						Title: "Note " + strconv.Itoa(g), Body: seedBody, Tags: []string{"work", "home"}, Pinned: g%10 == 0,
					})
				}
				if _, err := tx.NewInsert().Model(&notes).Exec(ctx); err != nil {
					return fmt.Errorf("seed notes: %w", err)
				}
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE ferry_scopes SET version = ? WHERE scope = ?`, v0+int64(n), owner)
		return err
	})
}

// analyze refreshes the planner's statistics after a bulk load, as
// autovacuum would shortly after one.
func analyze(ctx context.Context, db *bun.DB) error {
	q := `ANALYZE`
	if models.IsPostgres(db) {
		q = `ANALYZE notes, ferry_scopes` // this schema's tables only
	}
	_, err := db.ExecContext(ctx, q)
	return err
}
