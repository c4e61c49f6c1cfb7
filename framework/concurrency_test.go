package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

var testSchemas = fstest.MapFS{
	"item.json": {Data: []byte(`{"type":"object","required":["n"],"properties":{"n":{"type":"integer"},"s":{"type":"string"}}}`)},
}

func newTestApp(t testing.TB, db *bun.DB) *framework.App {
	t.Helper()
	app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

func item(uid string, at time.Time, n int) *framework.Change {
	return &framework.Change{Model: "test.Item", UID: uid, ModifyAt: framework.Time{Time: at},
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

// tally is a typed model, so that pulls merge two tables (its own and the
// generic one).
type tally struct {
	bun.BaseModel `bun:"table:tallies"`
	models.Base
	N int    `bun:"n,notnull" json:"n"`
	S string `bun:"s,notnull" json:"s,omitempty"`
}

func (*tally) ResourceType() string { return "test.Tally" }
func (*tally) Validate() error      { return nil }

// TestNoMissedChangesUnderConcurrency is the proof DESIGN.md asks for:
// many writers commit out of order into the same scope while pullers page
// through it; every puller ends holding exactly every committed change.
// Writes go to two models in two tables, so pull pages are merged from
// both.
func TestNoMissedChangesUnderConcurrency(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		if err := framework.Register[tally](app, framework.ModelOptions{Schema: "item.json"}); err != nil {
			t.Fatal(err)
		}
		if err := app.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		users := []framework.Principal{{UserID: "u1"}, {UserID: "u2"}}
		const writers, pushesPerWriter = 8, 30
		base := time.Now().Add(-time.Hour).UTC()

		var clock sync.Mutex
		tick := 0
		nextTime := func() time.Time {
			clock.Lock()
			defer clock.Unlock()
			tick++
			return base.Add(time.Duration(tick) * time.Millisecond)
		}

		var wg sync.WaitGroup
		errs := make(chan error, writers*pushesPerWriter)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(w)))
				for i := 0; i < pushesPerWriter; i++ {
					p := users[rng.Intn(len(users))]
					var batch []*framework.Change
					for j := 0; j < 1+rng.Intn(4); j++ {
						ch := item(fmt.Sprintf("%s-i%d", p.UserID, rng.Intn(60)), nextTime(), w*1000+i)
						if rng.Intn(2) == 0 {
							ch.Model = "test.Tally"
						}
						batch = append(batch, ch)
					}
					res, err := app.Push(ctx, p, batch)
					if err != nil {
						errs <- err
						return
					}
					for _, r := range res {
						if r.Status != framework.StatusApplied && r.Status != framework.StatusStale {
							errs <- fmt.Errorf("%s: %s %v", r.UID, r.Status, r.Errors)
						}
					}
				}
			}(w)
		}

		// Pullers sync continuously while the writers run.
		type state map[string]*framework.Record
		stop := make(chan struct{})
		var pw sync.WaitGroup
		pullers := make([]state, 4)
		cursors := make([]string, 4)
		pullAll := func(k int, p framework.Principal) error {
			cursor := cursors[k]
			for {
				resp, err := app.Pull(ctx, p, framework.PullRequest{Cursor: cursor, Limit: 7})
				if err != nil {
					return err
				}
				for _, r := range resp.Changes {
					pullers[k][r.Model+"/"+r.UID] = r
				}
				cursor = resp.Cursor
				if !resp.HasMore {
					cursors[k] = cursor
					return nil
				}
			}
		}
		for k := range pullers {
			pullers[k] = state{}
			pw.Add(1)
			go func(k int) {
				defer pw.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := pullAll(k, users[k%2]); err != nil {
						errs <- err
						return
					}
				}
			}(k)
		}
		wg.Wait()
		close(stop)
		pw.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// One last pull from each puller's stored cursor, then compare with a
		// fresh full pull.
		for k := range pullers {
			if err := pullAll(k, users[k%2]); err != nil {
				t.Fatal(err)
			}
		}
		for k, got := range pullers {
			p := users[k%2]
			fresh, err := app.Pull(ctx, p, framework.PullRequest{Limit: 5000})
			if err != nil || fresh.HasMore {
				t.Fatalf("fresh pull: %v %v", err, fresh.HasMore)
			}
			if len(fresh.Changes) != len(got) {
				t.Fatalf("puller %d holds %d records, server has %d", k, len(got), len(fresh.Changes))
			}
			for _, want := range fresh.Changes {
				have := got[want.Model+"/"+want.UID]
				if have == nil || have.Version != want.Version || string(have.Data) != string(want.Data) {
					t.Fatalf("puller %d missed %s: has %+v, server %+v", k, want.UID, have, want)
				}
			}
		}
	})
}

// TestConcurrentCreateOfOneUID: two owners race to create the same uid;
// both are applied, each holds a record of its own, and neither learns of
// the other's.
func TestConcurrentCreateOfOneUID(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		ctx := context.Background()
		for round := 0; round < 20; round++ {
			uid := fmt.Sprintf("race%d", round)
			var wg sync.WaitGroup
			statuses := make([]string, 2)
			for k, p := range []framework.Principal{{UserID: "a"}, {UserID: "b"}} {
				wg.Add(1)
				go func(k int, p framework.Principal) {
					defer wg.Done()
					res, err := app.Push(ctx, p, []*framework.Change{item(uid, time.Now().Add(-time.Minute), k)})
					if err != nil {
						t.Error(err)
						return
					}
					statuses[k] = res[0].Status
				}(k, p)
			}
			wg.Wait()
			if a, b := statuses[0], statuses[1]; a != "applied" || b != "applied" {
				t.Fatalf("round %d: statuses %s and %s", round, a, b)
			}
			for k, p := range []framework.Principal{{UserID: "a"}, {UserID: "b"}} {
				got, err := app.Read(ctx, p, "test.Item", []string{uid})
				if err != nil || len(got) != 1 || got[0].Owner != p.UserID || !strings.Contains(string(got[0].Data), fmt.Sprint(k)) {
					t.Fatalf("round %d: %s reads %+v %v", round, p.UserID, got, err)
				}
			}
		}
	})
}
