package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// TestUsageUnderConcurrentUpdates: eight devices of one user rewrite the
// same few records at once, with data of changing sizes. On PostgreSQL
// these pushes are store-decided and keep the usage counters themselves
// from the rows they replace, so a write committed between one
// statement's snapshot and its lock would, if not caught, count a stale
// size. The counters must equal a recount at the end.
func TestUsageUnderConcurrentUpdates(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newQuotaApp(t, db, framework.Config{UsageAccounting: framework.UsageOn})
		t0 := time.Now().Add(-time.Hour).UTC()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					var batch []*framework.Change
					for j := range 1 + (w+i)%3 {
						batch = append(batch, &framework.Change{Model: "test.Item", UID: fmt.Sprintf("r%d", (w+i+j)%5),
							ModifyAt: framework.Time{Time: t0.Add(time.Duration(i*8+w) * time.Millisecond)},
							Data:     json.RawMessage(fmt.Sprintf(`{"n":%d,"s":%q}`, i, strings.Repeat("x", (w*7+i*3)%50)))})
					}
					if _, err := app.Push(context.Background(), framework.Principal{UserID: "ann"}, batch); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if u := checkUsage(t, app, "ann", "after concurrent updates"); u.Records != 5 {
			t.Fatalf("usage %+v, want 5 records", u)
		}
	})
}
