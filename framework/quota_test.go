package framework_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// newQuotaApp is an App with a schema-only model (test.Item, decided by
// the store on PostgreSQL), a typed one (test.Tally) and a schema-only one
// with an apply hook (test.Hooked, written change by change in a
// savepoint), so every write path is taken.
func newQuotaApp(t testing.TB, db *bun.DB, cfg framework.Config) *framework.App {
	t.Helper()
	cfg.DB, cfg.Schemas = db, testSchemas
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := framework.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	app.MustRegisterSchema("test.Hooked", framework.ModelOptions{Schema: "item.json"})
	framework.MustRegister[tally](app, framework.ModelOptions{Schema: "item.json"})
	// The hook grows what is written, after the framework saw the change.
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "test.grow", Tags: []string{"test.Hooked"},
		Func: func(e *framework.ApplyEvent) error {
			if !e.Record.IsDeleted {
				var v map[string]any
				if err := json.Unmarshal(e.Record.Data, &v); err == nil {
					v["s"] = fmt.Sprint(v["s"], "+hook")
					e.Record.Data, _ = json.Marshal(v)
				}
			}
			return e.Next()
		}})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

// recount computes owner's usage from the record tables themselves, as
// framework.Quota defines it, for comparison with the maintained counters.
func recount(t testing.TB, db *bun.DB, owner string) framework.Usage {
	t.Helper()
	size := func(col string) string {
		if models.IsPostgres(db) {
			return "coalesce(octet_length(CAST(" + col + " AS text)), 0)"
		}
		return "coalesce(length(CAST(" + col + " AS BLOB)), 0)"
	}
	var u framework.Usage
	for _, q := range []string{
		"SELECT count(*), coalesce(sum(128 + " + size("data") + "), 0) FROM ferry_records WHERE owner = ?",
		"SELECT count(*), coalesce(sum(128 + " + size("n") + " + " + size("s") + "), 0) FROM tallies WHERE owner = ?",
	} {
		var n, b int64
		if err := db.NewRaw(q, owner).Scan(context.Background(), &n, &b); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		u.Records += n
		u.Bytes += b
	}
	return u
}

func checkUsage(t testing.TB, app *framework.App, owner, when string) framework.Usage {
	t.Helper()
	got, err := app.Usage(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	if want := recount(t, app.DB(), owner); got != want {
		t.Fatalf("%s: usage of %s is %+v, the tables hold %+v", when, owner, got, want)
	}
	return got
}

// counters reads owner's usage counters as stored, whatever the App's
// accounting.
func counters(t testing.TB, db *bun.DB, owner string) models.Usage {
	t.Helper()
	u, err := models.ReadUsage(context.Background(), db, owner)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkUsageMode is checkUsage, and with accounting off the counters
// untouched.
func checkUsageMode(t testing.TB, app *framework.App, owner, when string) framework.Usage {
	t.Helper()
	got := checkUsage(t, app, owner, when)
	if !app.UsageAccountingOn() {
		if c := counters(t, app.DB(), owner); c != (models.Usage{}) {
			t.Fatalf("%s: accounting off, yet the counters of %s hold %+v", when, owner, c)
		}
	}
	return got
}

// TestUsageCountersExact: after a random mix of creates, updates,
// tombstones (of stored and unknown records, with and without data),
// retries, stale and foreign changes, server inserts, all-or-nothing
// pushes and purges on every write path, then concurrent pushes of one
// user, each user's counters equal a recount from the tables.
//
// With usage accounting off, App.Usage counts the rows instead, and must
// be as exact, and the writes leave the counters alone.
func TestUsageCountersExact(t *testing.T) {
	for _, kind := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			for _, mode := range []framework.UsageAccounting{framework.UsageOn, framework.UsageOff} {
				t.Run(mode.String(), func(t *testing.T) { testUsageCountersExact(t, synctest.Open(t, kind), mode) })
			}
		})
	}
}

func testUsageCountersExact(t *testing.T, db *bun.DB, mode framework.UsageAccounting) {
	ctx := context.Background()
	app := newQuotaApp(t, db, framework.Config{UsageAccounting: mode})
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"u1", "u2"}
	base := time.Now().Add(-time.Hour).UTC()
	modelsOf := []string{"test.Item", "test.Tally", "test.Hooked"}
	change := func() *framework.Change {
		ch := &framework.Change{
			Model:    modelsOf[rng.IntN(len(modelsOf))],
			UID:      fmt.Sprintf("r%d", rng.IntN(30)),
			ModifyAt: framework.Time{Time: base.Add(time.Duration(rng.IntN(600)) * time.Second)},
		}
		if rng.IntN(5) == 0 {
			ch.IsDeleted = true
			if rng.IntN(2) == 0 {
				return ch // a tombstone without data
			}
		}
		ch.Data = json.RawMessage(fmt.Sprintf(`{"n":%d,"s":%q}`, rng.IntN(1e6), strings.Repeat("é", rng.IntN(40))))
		return ch
	}
	inserted := 0
	for round := range 60 {
		p := framework.Principal{UserID: users[rng.IntN(len(users))]}
		switch k := rng.IntN(10); {
		case k < 6: // an ordinary push, with retries and repeats inside
			var batch []*framework.Change
			for range 1 + rng.IntN(25) {
				ch := change()
				batch = append(batch, ch)
				if rng.IntN(6) == 0 {
					again := *ch
					batch = append(batch, &again)
				}
			}
			if _, err := app.Push(ctx, p, batch); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(3) == 0 { // the whole push again: a retry
				if _, err := app.Push(ctx, p, batch); err != nil {
					t.Fatal(err)
				}
			}
		case k < 7: // all or nothing, as protocol adapters push
			_, err := app.PushWith(ctx, p, []*framework.Change{change(), change()}, framework.PushOptions{AbortOnStale: true})
			if err != nil && !errors.Is(err, framework.ErrConflict) {
				t.Fatal(err)
			}
		case k < 8: // a server insert
			inserted++
			v := &tally{N: inserted, S: strings.Repeat("x", inserted)}
			v.ID, v.OwnerID = fmt.Sprintf("ins%d", inserted), p.UserID
			if _, err := framework.Insert(ctx, app, v); err != nil {
				t.Fatal(err)
			}
		default: // purge every tombstone
			if _, err := app.PurgeTombstones(ctx, time.Nanosecond); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range users {
			checkUsageMode(t, app, u, fmt.Sprintf("round %d", round))
		}
	}
	// One user's devices pushing at once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 10 {
				var batch []*framework.Change
				for j := range 1 + rng.IntN(20) {
					batch = append(batch, &framework.Change{
						Model: modelsOf[(i+j)%3], UID: fmt.Sprintf("c%d", rng.IntN(40)),
						ModifyAt:  framework.Time{Time: base.Add(time.Duration(rng.IntN(3600)) * time.Second)},
						IsDeleted: rng.IntN(4) == 0,
						Data:      json.RawMessage(fmt.Sprintf(`{"n":%d,"s":%q}`, w, strings.Repeat("z", rng.IntN(30)))),
					})
				}
				if _, err := app.Push(ctx, framework.Principal{UserID: "u1"}, batch); err != nil {
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
	for _, u := range users {
		if got := checkUsageMode(t, app, u, "after concurrent pushes"); got.Records == 0 {
			t.Fatalf("%s stores nothing: the test wrote nothing", u)
		}
	}
}

func statusCodes(res []framework.Result) string {
	var b strings.Builder
	for _, r := range res {
		b.WriteString(r.Status)
		if r.Code != "" {
			b.WriteString(":" + r.Code)
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

func mustPush(t *testing.T, app *framework.App, user string, changes ...*framework.Change) []framework.Result {
	t.Helper()
	res, err := app.Push(context.Background(), framework.Principal{UserID: user}, changes)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func itemData(uid string, at time.Time, data string) *framework.Change {
	return &framework.Change{Model: "test.Item", UID: uid, ModifyAt: framework.Time{Time: at}, Data: json.RawMessage(data)}
}

func tombstone(uid string, at time.Time) *framework.Change {
	return &framework.Change{Model: "test.Item", UID: uid, ModifyAt: framework.Time{Time: at}, IsDeleted: true}
}

// TestQuotaRecords: a batch that crosses the record quota applies the
// changes up to it and rejects the rest with quota_exceeded, leaving its
// neighbours alone; at the quota, updates and deletions of stored records
// still apply, a tombstone of an unknown uid (a new row) does not, and a
// purge makes room again.
func TestQuotaRecords(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newQuotaApp(t, db, framework.Config{Quota: framework.Quota{MaxRecords: 5}})
		t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
		hooked := func(uid string, n int) *framework.Change {
			ch := item(uid, at(0), n)
			ch.Model = "test.Hooked" // written in a savepoint, around its hook
			return ch
		}
		if got := statusCodes(mustPush(t, app, "ann", item("a", at(0), 1), item("b", at(0), 2), item("c", at(0), 3))); got != "applied applied applied" {
			t.Fatal(got)
		}
		res := mustPush(t, app, "ann",
			item("d", at(0), 4), item("e", at(0), 5), // 4 and 5 records
			item("f", at(0), 6),                          // a sixth: refused
			itemData("a", at(1), `{"n":1,"s":"longer"}`), // an update: no new row
			itemData("c", at(1), `{"n":3}`),              // an update of the same size
			item("b", at(0), 2),                          // a retry
			tombstone("g", at(1)),                        // an unknown uid: a new row
			hooked("k", 1),                               // a new row in the savepoint path
		)
		if got := statusCodes(res); got != "applied applied rejected:quota_exceeded applied applied applied rejected:quota_exceeded rejected:quota_exceeded" {
			t.Fatalf("crossing batch: %s", got)
		}
		for _, i := range []int{2, 6, 7} {
			if r := res[i]; r.Record != nil || len(r.Errors) != 1 || r.Errors[0].Path != "" || !strings.Contains(r.Errors[0].Message, "quota") {
				t.Errorf("refused change %d: %+v", i, r)
			}
		}
		if u := checkUsage(t, app, "ann", "at the quota"); u.Records != 5 {
			t.Fatalf("usage %+v, want 5 records", u)
		}
		// At the quota: deleting (with or without data) and updating apply.
		del := tombstone("c", at(2))
		delData := itemData("d", at(2), `{"n":4}`)
		delData.IsDeleted = true
		if got := statusCodes(mustPush(t, app, "ann", del, delData, item("e", at(2), 50), item("h", at(2), 8))); got != "applied applied applied rejected:quota_exceeded" {
			t.Fatalf("at the quota: %s", got)
		}
		// Another user is not affected.
		if got := statusCodes(mustPush(t, app, "bob", item("x1", at(0), 1), item("x2", at(0), 1))); got != "applied applied" {
			t.Fatalf("bob: %s", got)
		}
		// Purging the tombstones makes room.
		if _, err := app.PurgeTombstones(context.Background(), time.Nanosecond); err != nil {
			t.Fatal(err)
		}
		if u := checkUsage(t, app, "ann", "after the purge"); u.Records != 3 {
			t.Fatalf("after the purge: %+v, want 3 records", u)
		}
		if got := statusCodes(mustPush(t, app, "ann", item("h", at(3), 8), item("i", at(3), 9), item("j", at(3), 10))); got != "applied applied rejected:quota_exceeded" {
			t.Fatalf("after the purge: %s", got)
		}
		checkUsage(t, app, "ann", "end")
	})
}

// TestQuotaBytes: the byte quota is exact for schema-only models (each
// row 128 bytes plus its data's JSON text): a push that would pass it by
// one byte is refused, one that reaches it exactly applies, and at the
// quota a shrinking update applies and makes room for as much growth.
func TestQuotaBytes(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		// a {"n":1,"s":"abcd"} 146, b {"n":2} 135, c {"n":3} 135.
		app := newQuotaApp(t, db, framework.Config{Quota: framework.Quota{MaxBytes: 416}})
		t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
		steps := []struct {
			change *framework.Change
			want   string
			bytes  int64
		}{
			{itemData("a", at(0), `{"n":1,"s":"abcd"}`), "applied", 146},
			{itemData("b", at(0), `{"n":2}`), "applied", 281},
			{itemData("c", at(0), `{"n":3,"s":"x"}`), "rejected:quota_exceeded", 281}, // 417
			{itemData("c", at(0), `{"n":3}`), "applied", 416},
			{itemData("b", at(1), `{"n":22}`), "rejected:quota_exceeded", 416}, // one byte more
			{itemData("a", at(1), `{"n":1}`), "applied", 405},                  // shrinks by 11
			{itemData("c", at(1), `{"n":3,"s":"abcdefg"}`), "rejected:quota_exceeded", 405},
			{itemData("c", at(2), `{"n":3,"s":"abcd"}`), "applied", 416}, // grows by 11
			{tombstone("a", at(3)), "applied", 416},                      // keeps its data
		}
		for i, s := range steps {
			if got := statusCodes(mustPush(t, app, "ann", s.change)); got != s.want {
				t.Fatalf("step %d (%s %s): %s, want %s", i, s.change.UID, s.change.Data, got, s.want)
			}
			if u := checkUsage(t, app, "ann", fmt.Sprint("step ", i)); u.Bytes != s.bytes {
				t.Fatalf("step %d: %d bytes, want %d", i, u.Bytes, s.bytes)
			}
		}
	})
}

// TestQuotaKeepsTheStoreDecidedPush: under the quota a push is still the
// one store-decided statement on PostgreSQL (nothing through bun); when
// the push might cross it, nothing is written by that statement and the
// ordinary path decides change by change, also for a push of several
// statements (two models, more rows than one statement takes).
func TestQuotaKeepsTheStoreDecidedPush(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newQuotaApp(t, db, framework.Config{Quota: framework.Quota{MaxRecords: 700, MaxBytes: 1 << 30}})
		app.MustRegisterSchema("test.Other", framework.ModelOptions{Schema: "item.json"})
		t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		hook := &countQueries{}
		db.AddQueryHook(hook)
		res := mustPush(t, app, "ann", item("a", t0, 1), item("b", t0, 2))
		if got := statusCodes(res); got != "applied applied" {
			t.Fatal(got)
		}
		if models.IsPostgres(db) && hook.n != 0 {
			t.Errorf("a push far from the quota sent %d statements through bun; want the one store-decided statement", hook.n)
		}
		// 2 stored; 800 more over two models and three statements: 698 fit.
		var batch []*framework.Change
		for i := range 800 {
			ch := item(fmt.Sprintf("bulk-%d", i), t0, i)
			if i%2 == 1 {
				ch.Model = "test.Other"
			}
			batch = append(batch, ch)
		}
		hook.n = 0
		res = mustPush(t, app, "ann", batch...)
		if models.IsPostgres(db) && hook.n == 0 {
			t.Error("the push crossing the quota was not settled the ordinary way")
		}
		for i, r := range res {
			want := framework.StatusApplied
			if i >= 698 {
				want = framework.StatusRejected
			}
			if r.Status != want || (want == framework.StatusRejected) != (r.Code == framework.CodeQuotaExceeded) {
				t.Fatalf("change %d: %s %s, want %s", i, r.Status, r.Code, want)
			}
			if i > 0 && i < 698 && r.Record.Version <= res[i-1].Record.Version {
				t.Fatalf("versions out of request order at %d", i)
			}
		}
		if u := checkUsage(t, app, "ann", "after the crossing push"); u.Records != 700 {
			t.Fatalf("usage %+v, want 700 records", u)
		}
		// Updates of stored records at the quota: the guard fails (it
		// counts every change as a new row), the ordinary path applies them.
		hook.n = 0
		if got := statusCodes(mustPush(t, app, "ann", item("a", t0.Add(time.Second), 10))); got != "applied" {
			t.Fatal(got)
		}
		if models.IsPostgres(db) && hook.n == 0 {
			t.Error("the update at the quota was decided by the store's guard alone")
		}
		checkUsage(t, app, "ann", "end")
	})
}

// TestQuotaUnderConcurrency: devices of one user pushing at once cannot
// together pass the quota: exactly MaxRecords changes apply.
func TestQuotaUnderConcurrency(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newQuotaApp(t, db, framework.Config{Quota: framework.Quota{MaxRecords: 50}})
		t0 := time.Now().Add(-time.Hour).UTC()
		var mu sync.Mutex
		applied, refused := 0, 0
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 4 {
					var batch []*framework.Change
					for j := range 5 {
						model := "test.Item"
						if j%2 == 1 {
							model = "test.Tally"
						}
						batch = append(batch, &framework.Change{Model: model, UID: fmt.Sprintf("w%d-%d-%d", w, i, j),
							ModifyAt: framework.Time{Time: t0}, Data: json.RawMessage(`{"n":1}`)})
					}
					res, err := app.Push(context.Background(), framework.Principal{UserID: "ann"}, batch)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for _, r := range res {
						switch {
						case r.Status == framework.StatusApplied:
							applied++
						case r.Code == framework.CodeQuotaExceeded:
							refused++
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if applied != 50 || refused != 110 {
			t.Fatalf("%d applied and %d refused of 160, want 50 and 110", applied, refused)
		}
		if u := checkUsage(t, app, "ann", "end"); u.Records != 50 {
			t.Fatalf("usage %+v", u)
		}
	})
}

// TestQuotaFor: Config.QuotaFor gives each user their plan's quota; its
// error fails the push.
func TestQuotaFor(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		plans := map[string]framework.Quota{"free": {MaxRecords: 1}, "pro": {}}
		app := newQuotaApp(t, db, framework.Config{QuotaFor: func(_ context.Context, user string) (framework.Quota, error) {
			q, ok := plans[user]
			if !ok {
				return framework.Quota{}, errors.New("no plan")
			}
			return q, nil
		}})
		t0 := time.Now().Add(-time.Hour)
		if got := statusCodes(mustPush(t, app, "free", item("a", t0, 1), item("b", t0, 1))); got != "applied rejected:quota_exceeded" {
			t.Fatalf("free: %s", got)
		}
		if got := statusCodes(mustPush(t, app, "pro", item("c", t0, 1), item("d", t0, 1))); got != "applied applied" {
			t.Fatalf("pro: %s", got)
		}
		if _, err := app.Push(context.Background(), framework.Principal{UserID: "nobody"}, []*framework.Change{item("e", t0, 1)}); err == nil {
			t.Fatal("a failing QuotaFor did not fail the push")
		}
		if q, _ := app.QuotaOf(context.Background(), "free"); q.MaxRecords != 1 {
			t.Fatalf("QuotaOf: %+v", q)
		}
		if _, err := framework.New(framework.Config{DB: db, Quota: framework.Quota{MaxBytes: -1}}); err == nil || !strings.Contains(err.Error(), "Config.Quota") {
			t.Fatalf("a negative quota: %v", err)
		}
	})
}

// TestQuotaOverHTTP: a push answers the refused change rejected with code
// quota_exceeded beside its applied neighbour; the single-record endpoint
// answers 413 quota_exceeded in the error shape.
func TestQuotaOverHTTP(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newQuotaApp(t, db, framework.Config{Quota: framework.Quota{MaxRecords: 1}})
		app.SetAuthenticator(bearerUser)
		base := serveApp(t, app)
		at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
		st, body := postPush(t, base, `{"device_id":"d","changes":[`+
			`{"op_id":"1","model":"test.Item","uid":"a","modify_at":"`+at+`","data":{"n":1}},`+
			`{"op_id":"2","model":"test.Item","uid":"b","modify_at":"`+at+`","data":{"n":2}}]}`)
		if st != 200 {
			t.Fatalf("push: %d %s", st, body)
		}
		var answer struct {
			Results []map[string]json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Fatal(err)
		}
		if len(answer.Results) != 2 || string(answer.Results[0]["status"]) != `"applied"` || answer.Results[0]["code"] != nil {
			t.Fatalf("first result: %s", body)
		}
		r := answer.Results[1]
		if string(r["status"]) != `"rejected"` || string(r["code"]) != `"quota_exceeded"` || !strings.HasPrefix(string(r["errors"]), `[{"path":"","message":`) {
			t.Fatalf("refused result: %s", body)
		}
		req, _ := http.NewRequest("POST", base+"/sync/", strings.NewReader(`{"model":"test.Item","uid":"c","modify_at":"`+at+`","data":{"n":3}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer user:ann")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error framework.Error `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error.Code != framework.CodeQuotaExceeded || len(e.Error.Details) != 1 {
			t.Fatalf("single record over the quota: %d %+v", resp.StatusCode, e)
		}
	})
}

// TestUsageBackfill: a store the migrations before the usage counters
// created, holding records in the generic table and in a typed model's
// table, gets exact counters when migrated, and keeps them.
func TestUsageBackfill(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app := newQuotaApp(t, db, framework.Config{UsageAccounting: framework.UsageOn})
		t0 := time.Now().Add(-time.Hour)
		for _, u := range []string{"ann", "bob"} {
			mustPush(t, app, u, item(u+"1", t0, 1), itemData(u+"2", t0, `{"n":2,"s":"ünïcode"}`),
				&framework.Change{Model: "test.Tally", UID: u + "t", ModifyAt: framework.Time{Time: t0}, Data: json.RawMessage(`{"n":12345,"s":"abc"}`)})
		}
		// Back to the layout of the earlier migrations.
		undo := []string{
			`DROP TRIGGER ferry_usage_ins ON ferry_records`, `DROP TRIGGER ferry_usage_upd ON ferry_records`, `DROP TRIGGER ferry_usage_del ON ferry_records`,
			`DROP TRIGGER ferry_usage_ins ON tallies`, `DROP TRIGGER ferry_usage_upd ON tallies`, `DROP TRIGGER ferry_usage_del ON tallies`,
		}
		if !models.IsPostgres(db) {
			undo = nil
			for _, table := range []string{"ferry_records", "tallies"} {
				for _, ev := range []string{"ins", "upd", "del"} {
					undo = append(undo, "DROP TRIGGER ferry_usage_"+table+"_"+ev)
				}
			}
		}
		undo = append(undo, `ALTER TABLE ferry_scopes DROP COLUMN records`, `ALTER TABLE ferry_scopes DROP COLUMN bytes`,
			`DELETE FROM ferry_migrations WHERE name = '20261201000003'`)
		for _, q := range undo {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// The old store gets one more record with no counters at all.
		if _, err := db.ExecContext(ctx, `INSERT INTO tallies (uid, owner, modify_at, is_deleted, version, created_at, updated_at, n, s)
			VALUES ('late', 'ann', ?, false, 99, ?, ?, 7, 'late')`, t0, t0, t0); err != nil {
			t.Fatal(err)
		}
		again := newQuotaApp(t, db, framework.Config{UsageAccounting: framework.UsageOn}) // migrates
		for _, u := range []string{"ann", "bob"} {
			if got := checkUsage(t, again, u, "after the migration"); got.Records < 3 {
				t.Fatalf("%s: %+v", u, got)
			}
		}
		mustPush(t, again, "ann", item("ann3", t0, 3), tombstone("ann1", t0.Add(time.Minute)))
		checkUsage(t, again, "ann", "after a push")
	})
}

// BenchmarkPushBatch500Quota is BenchmarkPushBatch500 on PostgreSQL with a
// quota far away: the store-decided statement carries the usage guard.
func BenchmarkPushBatch500Quota(b *testing.B) {
	app := newQuotaApp(b, synctest.Open(b, synctest.Postgres), framework.Config{Quota: framework.Quota{MaxRecords: 1 << 40, MaxBytes: 1 << 50}})
	ctx := context.Background()
	p := framework.Principal{UserID: "bench"}
	at := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := make([]*framework.Change, 500)
		for j := range batch {
			batch[j] = item(fmt.Sprintf("r%d", (i*250+j)%1_000_000), at.Add(time.Duration(i*500+j)*time.Microsecond), j)
		}
		res, err := app.Push(ctx, p, batch)
		if err != nil || res[0].Status != framework.StatusApplied {
			b.Fatal(err, res[0])
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPushSingleQuota is BenchmarkPushSingle on PostgreSQL with a
// quota far away.
func BenchmarkPushSingleQuota(b *testing.B) {
	app := newQuotaApp(b, synctest.Open(b, synctest.Postgres), framework.Config{Quota: framework.Quota{MaxRecords: 1 << 40, MaxBytes: 1 << 50}})
	ctx := context.Background()
	var worker atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		p := framework.Principal{UserID: fmt.Sprintf("bench-%d", w)}
		for i := 0; pb.Next(); i++ {
			res, err := app.Push(ctx, p, []*framework.Change{item(fmt.Sprintf("w%d-%d", w, i/2), time.Now(), i)})
			if err != nil || res[0].Status != framework.StatusApplied {
				b.Fatal(err, res[0])
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
