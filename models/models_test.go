package models_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestMigrateConcurrentlyAndAgain: replicas starting together both succeed,
// and a second run finds nothing to do.
func TestMigrateConcurrentlyAndAgain(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = models.Migrate(ctx, db)
			}(i)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := models.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		all, err := models.Migrations()
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.NewSelect().Table("ferry_migrations").Count(ctx)
		if err != nil || int(n) != len(all.Sorted()) {
			t.Fatalf("migrations recorded: %d %v, want %d", n, err, len(all.Sorted()))
		}
	})
}

func TestStorePrimitives(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		if err := models.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		tbl := models.GenericTable{}
		now := time.Now().UTC().Truncate(time.Microsecond)
		rec := &models.Record{Model: "m", UID: "u1", Owner: "o", ModifyAt: now, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := tbl.Insert(ctx, db, rec); err != nil {
			t.Fatal(err)
		}
		err := tbl.Insert(ctx, db, rec)
		if !models.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: %v is not a unique violation", err)
		}
		// Records are keyed by owner, model and uid: another owner's
		// record with the same uid is a record of its own.
		other := *rec
		other.Owner, other.Data = "someone-else", []byte(`{"x":1}`)
		if err := tbl.Upsert(ctx, db, []*models.Record{&other}); err != nil {
			t.Fatalf("another owner's record with the same uid: %v", err)
		}
		rows, err := tbl.Load(ctx, db, "o", "m", []string{"u1", "missing"})
		if err != nil || len(rows) != 1 || rows[0].Owner != "o" || !rows[0].ModifyAt.Equal(now) || string(rows[0].Data) != "{}" {
			t.Fatalf("load: %+v %v", rows, err)
		}
		rows, err = tbl.Load(ctx, db, "someone-else", "m", []string{"u1"})
		if err != nil || len(rows) != 1 || string(rows[0].Data) != `{"x":1}` {
			t.Fatalf("load the other owner's: %+v %v", rows, err)
		}
		// Versions: reserve takes the lock and counts up per scope.
		for want := int64(1); want <= 3; want++ {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			v, err := models.ReserveVersion(ctx, tx, "scope-a")
			if err != nil || v != want {
				t.Fatalf("reserve: %d %v, want %d", v, err, want)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		state, err := models.ScopeState(ctx, db, []string{"scope-a", "scope-b"})
		if err != nil || state["scope-a"].Version != 3 || state["scope-b"].Version != 0 {
			t.Fatalf("scope state %+v %v", state, err)
		}
	})
}
