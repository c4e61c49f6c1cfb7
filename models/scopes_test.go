package models_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestListScopes pages through the scope counters in scope order, each
// scope once, with its version and horizon.
func TestListScopes(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		if err := models.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if rows, err := models.ListScopes(ctx, db, models.ListScopesParams{}); err != nil || len(rows) != 0 {
			t.Fatalf("an empty store: %v %v", rows, err)
		}
		for i := range 7 {
			scope := fmt.Sprintf("u%d", i)
			if i == 6 {
				scope = "s:space"
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range i + 1 {
				if _, err := models.ReserveVersion(ctx, tx, scope); err != nil {
					t.Fatal(err)
				}
			}
			if i == 2 {
				if err := models.LockForPurge(ctx, tx, scope, 2); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		var got []models.Scope
		after := ""
		for pages := 0; ; pages++ {
			rows, err := models.ListScopes(ctx, db, models.ListScopesParams{After: after, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) > 3 || pages > 3 {
				t.Fatalf("page %d: %v", pages, rows)
			}
			if len(rows) == 0 {
				break
			}
			got = append(got, rows...)
			after = rows[len(rows)-1].Scope
		}
		order := []string{"s:space", "u0", "u1", "u2", "u3", "u4", "u5"}
		if len(got) != len(order) {
			t.Fatalf("listed %v", got)
		}
		for i, s := range got {
			if s.Scope != order[i] {
				t.Fatalf("listed %v, want the order %v", got, order)
			}
			var n int
			fmt.Sscanf(s.Scope, "u%d", &n)
			if s.Scope != "s:space" && (s.Version != int64(n+1) || s.PurgedVersion != map[bool]int64{true: 2}[n == 2]) {
				t.Errorf("%s: %+v", s.Scope, s)
			}
		}
	})
}
