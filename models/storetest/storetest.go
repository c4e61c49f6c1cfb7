// Package storetest is the conformance suite of [models.Store]: every
// behaviour the sync engine relies on, run against a real store. Ferry
// runs it on PostgreSQL and SQLite; a store of your own, or a wrapper
// around one (adding metrics, tracing, a cache), passes it too before
// Ferry can rely on it:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) models.Store {
//			return mystore.Wrap(models.NewStore(synctest.OpenSQLite(t)))
//		})
//	}
//
// The suite registers its own models (st.Item, a typed table, and st.Doc
// and st.Other in the generic table) on each fresh store open returns, and
// migrates it.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// Item is the suite's typed model.
type Item struct {
	bun.BaseModel `bun:"table:storetest_items"`
	models.Base
	Title  string `bun:"title,notnull" json:"title"`
	N      int64  `bun:"n,notnull" json:"n"`
	Secret string `bun:"secret,notnull" json:"-"` // server-only: survives syncs
}

// The suite's model names.
const (
	ItemModel  = "st.Item"
	DocModel   = "st.Doc"
	OtherModel = "st.Other"
	// TimedModel is a generic model whose store keeps field times
	// ([models.WithFieldTimes]).
	TimedModel = "st.Timed"
)

// Run runs the suite; open returns a fresh, empty store for each subtest
// (cleaned up by the test).
func Run(t *testing.T, open func(t testing.TB) models.Store) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s models.Store)
	}{
		{"KeysAreScopeModelUID", testKeys},
		{"WriteModes", testWriteModes},
		{"VersionsPerScope", testVersions},
		{"CommitOrderIsVersionOrder", testCommitOrder},
		{"FeedAcrossTables", testFeed},
		{"FeedAcrossScopes", testFeedScopes},
		{"FeedByteCap", testFeedBytes},
		{"Savepoints", testSavepoints},
		{"Usage", testUsage},
		{"UsageAccounting", testUsageAccounting},
		{"UsageRecountConcurrent", testUsageRecountConcurrent},
		{"Purge", testPurge},
		{"InsertValue", testInsertValue},
		{"WriteIfNewer", testWriteIfNewer},
		{"ReadSnapshot", testReadSnapshot},
		{"Memberships", testMemberships},
		{"FieldTimes", testFieldTimes},
		{"FeedByteCapCountsFieldTimes", testFeedFieldTimesBytes},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			for model, spec := range map[string]models.TableSpec{
				ItemModel: models.Typed[Item](), DocModel: models.Generic(), OtherModel: models.Generic(),
				TimedModel: models.WithFieldTimes(models.Generic()),
			} {
				if err := s.Register(model, spec); err != nil {
					t.Fatalf("register %s: %v", model, err)
				}
			}
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			c.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 123456000, time.UTC)

// rec is a record of model in scope with data {"title": title}.
func rec(model, scope, uid, title string, at time.Time) *models.Record {
	data := fmt.Sprintf(`{"title":%q}`, title)
	if model == ItemModel {
		data = fmt.Sprintf(`{"title":%q,"n":0}`, title)
	}
	return &models.Record{Model: model, UID: uid, Owner: scope, ModifyAt: at, Data: json.RawMessage(data),
		CreatedAt: t0, UpdatedAt: t0}
}

// write stores recs in one transaction, each model's in one Write, taking
// versions from their scope in order; it returns the versions.
func write(t *testing.T, s models.Store, mode models.WriteMode, recs ...*models.Record) []int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	next := map[string]int64{}
	var out []int64
	for _, r := range recs {
		if _, ok := next[r.Owner]; !ok {
			res, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: r.Owner})
			if err != nil {
				t.Fatal(err)
			}
			next[r.Owner] = res.Next
		}
		r.Version = next[r.Owner]
		next[r.Owner]++
		out = append(out, r.Version)
		if err := tx.Write(ctx, models.WriteParams{Model: r.Model, Records: []*models.Record{r}, Mode: mode}); err != nil {
			t.Fatalf("write %s/%s of %s: %v", r.Model, r.UID, r.Owner, err)
		}
	}
	for scope, v := range next {
		if err := tx.SetScopeVersion(ctx, models.SetScopeVersionParams{Scope: scope, Version: v - 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return out
}

// begin starts a transaction that holds scope's counter, rolled back when
// the test ends unless committed.
func begin(t *testing.T, s models.Store, scope string) (models.Tx, models.Reservation) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() }) //nolint:errcheck // after Commit, a no-op
	res, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return tx, res
}

func load(t *testing.T, r models.Reader, scope, model string, uids ...string) map[string]models.Record {
	t.Helper()
	rows, err := r.Load(context.Background(), models.LoadParams{Scope: scope, Model: model, UIDs: uids})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]models.Record{}
	for _, row := range rows {
		if row.Owner != scope || row.Model != model {
			t.Fatalf("load of %s/%s returned %+v", scope, model, row)
		}
		out[row.UID] = row
	}
	return out
}

func title(r models.Record) string {
	var v struct{ Title string }
	_ = json.Unmarshal(r.Data, &v)
	return v.Title
}

func testKeys(t *testing.T, s models.Store) {
	for _, model := range []string{ItemModel, DocModel} {
		write(t, s, models.WriteUpsert, rec(model, "ann", "same", "ann's", t0), rec(model, "bob", "same", "bob's", t0))
		if got := load(t, s, "ann", model, "same", "missing"); len(got) != 1 || title(got["same"]) != "ann's" {
			t.Fatalf("%s: ann loads %+v", model, got)
		}
		if got := load(t, s, "bob", model, "same"); len(got) != 1 || title(got["same"]) != "bob's" {
			t.Fatalf("%s: bob loads %+v", model, got)
		}
		if got := load(t, s, "carol", model, "same"); len(got) != 0 {
			t.Fatalf("%s: carol loads %+v", model, got)
		}
	}
	// The generic table keeps models apart too.
	write(t, s, models.WriteUpsert, rec(OtherModel, "ann", "same", "other", t0))
	if got := load(t, s, "ann", DocModel, "same"); title(got["same"]) != "ann's" {
		t.Fatalf("a record of another model with the same uid replaced ann's: %+v", got)
	}
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Delete(ctx, models.DeleteParams{Scope: "bob", Model: DocModel, UIDs: []string{"same"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(load(t, s, "bob", DocModel, "same")) != 0 || len(load(t, s, "ann", DocModel, "same")) != 1 {
		t.Fatal("deleting bob's record touched ann's, or not bob's")
	}
}

func testWriteModes(t *testing.T, s models.Store) {
	ctx := context.Background()
	for _, model := range []string{ItemModel, DocModel} {
		write(t, s, models.WriteInsert, rec(model, "ann", "a", "first", t0))
		// Inserting it again is a unique violation, and the transaction
		// fails.
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		again := rec(model, "ann", "a", "again", t0)
		again.Version = 99
		err = tx.Write(ctx, models.WriteParams{Model: model, Records: []*models.Record{again}, Mode: models.WriteInsert})
		if !models.IsUniqueViolation(err) {
			t.Fatalf("%s: a second insert: %v, want a unique violation", model, err)
		}
		tx.Rollback() //nolint:errcheck // failed
		upd := rec(model, "ann", "a", "updated", t0.Add(time.Second))
		upd.CreatedAt = t0.Add(time.Hour) // must not be written
		write(t, s, models.WriteUpdate, upd)
		got := load(t, s, "ann", model, "a")["a"]
		if title(got) != "updated" || !got.ModifyAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("%s: after update %+v", model, got)
		}
		up := rec(model, "ann", "a", "upserted", t0.Add(2*time.Second))
		up.IsDeleted = true
		up.CreatedAt = t0.Add(time.Hour)
		v := write(t, s, models.WriteUpsert, up, rec(model, "ann", "b", "new", t0))
		got = load(t, s, "ann", model, "a")["a"]
		if title(got) != "upserted" || !got.IsDeleted || got.Version != v[0] || !got.CreatedAt.Equal(t0) {
			t.Fatalf("%s: after upsert %+v (created_at must be kept)", model, got)
		}
		if b := load(t, s, "ann", model, "b")["b"]; b.Version != v[1] || title(b) != "new" {
			t.Fatalf("%s: upserted new record %+v", model, b)
		}
	}
}

func testVersions(t *testing.T, s models.Store) {
	ctx := context.Background()
	if st, err := s.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{"nobody"}}); err != nil || len(st) != 0 {
		t.Fatalf("a scope nobody wrote: %+v %v", st, err)
	}
	a := write(t, s, models.WriteUpsert, rec(DocModel, "ann", "1", "x", t0), rec(ItemModel, "ann", "2", "x", t0), rec(DocModel, "bob", "1", "x", t0))
	if fmt.Sprint(a) != "[1 2 1]" {
		t.Fatalf("versions %v, want [1 2 1]: counted per scope, across tables", a)
	}
	b := write(t, s, models.WriteUpsert, rec(DocModel, "ann", "3", "x", t0))
	st, err := s.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{"ann", "bob"}})
	if err != nil || b[0] != 3 || st["ann"].Version != 3 || st["bob"].Version != 1 {
		t.Fatalf("after a second transaction: %v %+v %v", b, st, err)
	}
	// A transaction that rolls back uses no version for good.
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: "ann"}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback() //nolint:errcheck // on purpose
	if c := write(t, s, models.WriteUpsert, rec(DocModel, "ann", "4", "x", t0)); c[0] != 4 {
		t.Fatalf("after a rollback: version %d, want 4", c[0])
	}
}

// testCommitOrder: a second writer of a scope waits for the first, so it
// cannot take a higher version and commit first.
func testCommitOrder(t *testing.T, s models.Store) {
	ctx := context.Background()
	first, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := first.ReserveVersion(ctx, models.ReserveVersionParams{Scope: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan int64, 1)
	go func() {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Error(err)
			second <- -1
			return
		}
		defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
		r, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: "ann"})
		if err != nil {
			t.Error(err)
			second <- -1
			return
		}
		second <- r.Next
		_ = tx.Commit()
	}()
	select {
	case v := <-second:
		t.Fatalf("a second writer reserved version %d while the first held the scope", v)
	case <-time.After(200 * time.Millisecond):
		// (Never a false failure: a slow machine only makes this wait
		// prove less.)
	}
	if err := first.SetScopeVersion(ctx, models.SetScopeVersionParams{Scope: "ann", Version: r1.Next + 4}); err != nil {
		t.Fatal(err)
	}
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if v := <-second; v != r1.Next+5 {
		t.Fatalf("the second writer got version %d, want %d: after everything the first committed", v, r1.Next+5)
	}
}

func feed(t *testing.T, r models.Reader, p models.ReadFeedParams) (models.FeedResult, string) {
	t.Helper()
	res, err := r.ReadFeed(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, rec := range res.Records {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s@%d", rec.Owner, rec.UID, rec.Version)
	}
	return res, b.String()
}

func testFeed(t *testing.T, s models.Store) {
	del := rec(ItemModel, "ann", "i2", "gone", t0)
	del.IsDeleted = true
	write(t, s, models.WriteUpsert,
		rec(DocModel, "ann", "d1", "x", t0), rec(ItemModel, "ann", "i1", "x", t0), rec(OtherModel, "ann", "o1", "x", t0),
		del, rec(DocModel, "ann", "d2", "x", t0), rec(DocModel, "bob", "d1", "x", t0))
	all := []models.ScopeRange{{Scope: "ann", UpTo: 5}}
	if _, got := feed(t, s, models.ReadFeedParams{Scopes: all}); got != "ann:d1@1 ann:i1@2 ann:o1@3 ann:i2@4 ann:d2@5" {
		t.Fatalf("whole feed: %s", got)
	}
	if _, got := feed(t, s, models.ReadFeedParams{Scopes: all, Models: []string{DocModel, ItemModel}, SkipDeleted: true}); got != "ann:d1@1 ann:i1@2 ann:d2@5" {
		t.Fatalf("two models without tombstones: %s", got)
	}
	if _, got := feed(t, s, models.ReadFeedParams{Scopes: []models.ScopeRange{{Scope: "ann", After: 1, UpTo: 4}}}); got != "ann:i1@2 ann:o1@3 ann:i2@4" {
		t.Fatalf("a stretch: %s", got)
	}
	res, got := feed(t, s, models.ReadFeedParams{Scopes: all, Limit: 2})
	if got != "ann:d1@1 ann:i1@2" || !res.More || res.Positions["ann"] != 2 {
		t.Fatalf("limit 2: %s more=%v at %v", got, res.More, res.Positions)
	}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: []models.ScopeRange{{Scope: "ann", After: 2, UpTo: 5}}, Limit: 3})
	if got != "ann:o1@3 ann:i2@4 ann:d2@5" || res.More || res.Positions["ann"] != 5 {
		t.Fatalf("the rest, exactly the limit: %s more=%v at %v", got, res.More, res.Positions)
	}
	for _, r := range res.Records {
		if r.Model == ItemModel && !strings.Contains(string(r.Data), `"n":`) {
			t.Fatalf("a typed record's data is its struct's encoding: %s", r.Data)
		}
		if strings.Contains(string(r.Data), "secret") {
			t.Fatalf("a server-only field travelled: %s", r.Data)
		}
	}
}

func testFeedScopes(t *testing.T, s models.Store) {
	write(t, s, models.WriteUpsert,
		rec(DocModel, "ann", "a1", "x", t0), rec(ItemModel, "ann", "a2", "x", t0),
		rec(DocModel, "bob", "b1", "x", t0), rec(DocModel, "bob", "b2", "x", t0), rec(ItemModel, "bob", "b3", "x", t0),
		rec(DocModel, "carol", "c1", "x", t0))
	scopes := []models.ScopeRange{{Scope: "ann", UpTo: 2}, {Scope: "bob", UpTo: 3}, {Scope: "carol", UpTo: 1}, {Scope: "dave"}}
	res, got := feed(t, s, models.ReadFeedParams{Scopes: scopes})
	if got != "ann:a1@1 ann:a2@2 bob:b1@1 bob:b2@2 bob:b3@3 carol:c1@1" || res.More ||
		fmt.Sprint(res.Positions) != "map[ann:2 bob:3 carol:1 dave:0]" {
		t.Fatalf("three scopes: %s more=%v at %v", got, res.More, res.Positions)
	}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: scopes, Limit: 3})
	if got != "ann:a1@1 ann:a2@2 bob:b1@1" || !res.More || fmt.Sprint(res.Positions) != "map[ann:2 bob:1 carol:0 dave:0]" {
		t.Fatalf("limit 3: %s more=%v at %v", got, res.More, res.Positions)
	}
	// Going on from the positions gives the rest, once.
	next := make([]models.ScopeRange, len(scopes))
	for i, sc := range scopes {
		next[i] = models.ScopeRange{Scope: sc.Scope, After: res.Positions[sc.Scope], UpTo: sc.UpTo}
	}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: next, Limit: 3})
	if got != "bob:b2@2 bob:b3@3 carol:c1@1" || res.More {
		t.Fatalf("the rest: %s more=%v", got, res.More)
	}
}

func testFeedBytes(t *testing.T, s models.Store) {
	big := strings.Repeat("x", 4000)
	write(t, s, models.WriteUpsert, rec(DocModel, "ann", "1", big, t0), rec(ItemModel, "ann", "2", big, t0), rec(DocModel, "ann", "3", big, t0))
	one := (&models.Record{Model: DocModel, UID: "1", Owner: "ann", Data: json.RawMessage(`{"title":"` + big + `"}`)}).Size()
	res, got := feed(t, s, models.ReadFeedParams{Scopes: []models.ScopeRange{{Scope: "ann", UpTo: 3}}, MaxBytes: 2*one + 100})
	if got != "ann:1@1 ann:2@2" || !res.More || res.Positions["ann"] != 2 {
		t.Fatalf("two records' bytes: %s more=%v at %v", got, res.More, res.Positions)
	}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: []models.ScopeRange{{Scope: "ann", UpTo: 3}}, MaxBytes: 10})
	if got != "ann:1@1" || !res.More {
		t.Fatalf("a cap below one record still gives that record: %s more=%v", got, res.More)
	}
}

func testSavepoints(t *testing.T, s models.Store) {
	ctx := context.Background()
	tx, res := begin(t, s, "ann")
	kept, undone := rec(DocModel, "ann", "kept", "x", t0), rec(ItemModel, "ann", "undone", "x", t0)
	kept.Version, undone.Version = res.Next, res.Next+1
	if err := tx.InSavepoint(ctx, func() error {
		return tx.Write(ctx, models.WriteParams{Model: DocModel, Records: []*models.Record{kept}, Mode: models.WriteInsert})
	}); err != nil {
		t.Fatal(err)
	}
	veto := errors.New("vetoed")
	err := tx.InSavepoint(ctx, func() error {
		if err := tx.Write(ctx, models.WriteParams{Model: ItemModel, Records: []*models.Record{undone}, Mode: models.WriteInsert}); err != nil {
			return err
		}
		return veto
	})
	if !errors.Is(err, veto) {
		t.Fatalf("InSavepoint returned %v, want fn's error", err)
	}
	// A failing statement inside a savepoint leaves the transaction usable
	// (PostgreSQL would abort it otherwise).
	err = tx.InSavepoint(ctx, func() error {
		return tx.Write(ctx, models.WriteParams{Model: DocModel, Records: []*models.Record{kept}, Mode: models.WriteInsert})
	})
	if !models.IsUniqueViolation(err) {
		t.Fatalf("a duplicate in a savepoint: %v", err)
	}
	if err := tx.SetScopeVersion(ctx, models.SetScopeVersionParams{Scope: "ann", Version: res.Next}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(load(t, s, "ann", DocModel, "kept")) != 1 || len(load(t, s, "ann", ItemModel, "undone")) != 0 {
		t.Fatal("the savepoints kept the wrong writes")
	}
}

func usage(t *testing.T, r models.Reader, scope string) models.Usage {
	t.Helper()
	u, err := r.Usage(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testUsage(t *testing.T, s models.Store) {
	if u := usage(t, s, "ann"); u != (models.Usage{}) {
		t.Fatalf("a new scope uses %+v", u)
	}
	write(t, s, models.WriteUpsert, rec(DocModel, "ann", "1", "abc", t0), rec(ItemModel, "ann", "2", "abc", t0), rec(DocModel, "bob", "1", "abc", t0))
	u := usage(t, s, "ann")
	if u.Records != 2 || u.Bytes < 2*models.RowOverhead {
		t.Fatalf("two records use %+v", u)
	}
	write(t, s, models.WriteUpsert, rec(DocModel, "ann", "1", "abcdefghij", t0.Add(time.Second)))
	if v := usage(t, s, "ann"); v.Records != 2 || v.Bytes != u.Bytes+7 {
		t.Fatalf("a record 7 bytes longer: %+v after %+v", v, u)
	}
	if b := usage(t, s, "bob"); b.Records != 1 {
		t.Fatalf("bob uses %+v", b)
	}
}

func testPurge(t *testing.T, s models.Store) {
	ctx := context.Background()
	gone, live := rec(DocModel, "ann", "gone", "x", t0), rec(DocModel, "ann", "live", "x", t0)
	gone.IsDeleted = true
	theirs := rec(DocModel, "bob", "gone", "x", t0)
	theirs.IsDeleted = true
	v := write(t, s, models.WriteUpsert, gone, live, theirs)
	stones, err := s.Tombstones(ctx, models.TombstonesParams{Model: DocModel, Before: t0.Add(time.Second), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range stones {
		keys = append(keys, r.Owner+":"+r.UID)
	}
	slices.Sort(keys)
	if fmt.Sprint(keys) != "[ann:gone bob:gone]" {
		t.Fatalf("tombstones %v", keys)
	}
	if st, _ := s.Tombstones(ctx, models.TombstonesParams{Model: DocModel, Before: t0, Limit: 10}); len(st) != 0 {
		t.Fatalf("tombstones written before their own time: %+v", st)
	}
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	if err := tx.LockForPurge(ctx, models.LockForPurgeParams{Scope: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Delete(ctx, models.DeleteParams{Scope: "ann", Model: DocModel, UIDs: []string{"gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.LockForPurge(ctx, models.LockForPurgeParams{Scope: "ann", Horizon: v[0]}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	st, err := s.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{"ann", "bob"}})
	if err != nil || st["ann"].PurgedVersion != v[0] || st["bob"].PurgedVersion != 0 || st["ann"].Version != 2 {
		t.Fatalf("scope state after purge: %+v %v", st, err)
	}
	if len(load(t, s, "ann", DocModel, "gone", "live")) != 1 || len(load(t, s, "bob", DocModel, "gone")) != 1 {
		t.Fatal("purge removed the wrong records")
	}
	if u := usage(t, s, "ann"); u.Records != 1 {
		t.Fatalf("usage after purge: %+v", u)
	}
}

func testInsertValue(t *testing.T, s models.Store) {
	ctx := context.Background()
	tx, res := begin(t, s, "ann")
	v := &Item{Base: models.Base{OwnerID: "ann", ID: "v", ModifiedAt: t0, Version: res.Next, CreatedAt: t0, UpdatedAt: t0},
		Title: "whole", N: 7, Secret: "s3cret"}
	got, err := tx.InsertValue(ctx, models.InsertValueParams{Model: ItemModel, Value: v})
	if err != nil || got.UID != "v" || got.Version != res.Next || strings.Contains(string(got.Data), "s3cret") || !strings.Contains(string(got.Data), `"n":7`) {
		t.Fatalf("insert value: %+v %s %v", got, got.Data, err)
	}
	if _, err := tx.InsertValue(ctx, models.InsertValueParams{Model: DocModel, Value: v}); err == nil {
		t.Fatal("a typed value went into a schema-only model")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A sync update keeps the server-only field.
	up := rec(ItemModel, "ann", "v", "synced", t0.Add(time.Second))
	write(t, s, models.WriteUpsert, up)
	var secret string
	if db := s.DB(); db != nil {
		if err := db.NewSelect().Model((*Item)(nil)).Column("secret").Where("uid = 'v'").Scan(ctx, &secret); err != nil || secret != "s3cret" {
			t.Fatalf("server-only field after a sync: %q %v", secret, err)
		}
	}
}

func testWriteIfNewer(t *testing.T, s models.Store) {
	for _, model := range []string{ItemModel, DocModel} {
		if !s.Features(model).WriteIfNewer {
			t.Logf("%s: the store does not write if newer", model)
			continue
		}
		ctx := context.Background()
		w := func(recs ...*models.Record) string {
			t.Helper()
			for i, r := range recs {
				r.Version = int64(i + 1)
			}
			got, err := s.WriteIfNewer(ctx, models.WriteIfNewerParams{Scope: "ann", Model: model,
				Span: models.VersionSpan{Count: int64(len(recs)), Take: true}, Records: recs})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(got)
		}
		base := map[string]int64{ItemModel: 0, DocModel: 6}[model] // the scope is shared: the first round took 6 versions
		if got := w(rec(model, "ann", "a", "one", t0), rec(model, "ann", "b", "two", t0)); got != fmt.Sprintf("[%d %d]", base+1, base+2) {
			t.Fatalf("%s: creates %s", model, got)
		}
		tie := rec(model, "ann", "b", "two, edited", t0)
		if got := w(rec(model, "ann", "a", "older", t0.Add(-time.Microsecond)), rec(model, "ann", "a2", "new", t0), tie); got != fmt.Sprintf("[0 %d %d]", base+4, base+5) {
			t.Fatalf("%s: older, new, tie with other content: %s", model, got)
		}
		if got := w(rec(model, "ann", "b", "two, edited", t0)); got != "[0]" {
			t.Fatalf("%s: an exact repeat: %s", model, got)
		}
		got := load(t, s, "ann", model, "a", "b")
		if title(got["a"]) != "one" || title(got["b"]) != "two, edited" {
			t.Fatalf("%s: stored %+v", model, got)
		}
	}
}

func testReadSnapshot(t *testing.T, s models.Store) {
	ctx := context.Background()
	write(t, s, models.WriteUpsert, rec(DocModel, "ann", "1", "x", t0))
	rd, err := s.BeginRead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := rd.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{"ann"}})
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		write(t, s, models.WriteUpsert, rec(ItemModel, "ann", "2", "x", t0))
	}()
	select {
	case <-written: // PostgreSQL: a writer does not wait for readers
	case <-time.After(500 * time.Millisecond): // SQLite's one connection: it waits
	}
	after, err := rd.ScopeState(ctx, models.ScopeStateParams{Scopes: []string{"ann"}})
	if err != nil {
		t.Fatal(err)
	}
	_, got := feed(t, rd, models.ReadFeedParams{Scopes: []models.ScopeRange{{Scope: "ann", UpTo: 2}}})
	rd.Rollback() //nolint:errcheck // read-only
	<-written
	if before["ann"].Version != 1 || after["ann"].Version != 1 || got != "ann:1@1" {
		t.Fatalf("a read transaction saw a later write: %+v %+v %s", before, after, got)
	}
}

// members renders memberships as "scope/user=role" in the order read.
func members(t *testing.T, r models.Reader, p models.MembershipsParams) string {
	t.Helper()
	rows, err := r.Memberships(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(rows))
	for i, m := range rows {
		parts[i] = m.Scope + "/" + m.User + "=" + m.Role
	}
	return strings.Join(parts, " ")
}

func testMemberships(t *testing.T, s models.Store) {
	ctx := context.Background()
	tx, _ := begin(t, s, "s:list")
	for _, m := range []models.SetMembershipParams{
		{Scope: "s:list", User: "ann", Role: "admin"},
		{Scope: "s:list", User: "bob", Role: "reader"},
		{Scope: "s:other", User: "bob", Role: "writer"},
		{Scope: "s:list", User: "bob", Role: "writer"}, // a role change replaces the row
	} {
		if err := tx.SetMembership(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Uncommitted memberships are the transaction's own.
	if got := members(t, tx, models.MembershipsParams{User: "bob"}); got != "s:list/bob=writer s:other/bob=writer" {
		t.Fatalf("in the transaction, bob's memberships = %q", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    models.MembershipsParams
		want string
	}{
		{models.MembershipsParams{User: "bob"}, "s:list/bob=writer s:other/bob=writer"},
		{models.MembershipsParams{Scope: "s:list"}, "s:list/ann=admin s:list/bob=writer"},
		{models.MembershipsParams{Scope: "s:list", User: "ann"}, "s:list/ann=admin"},
		{models.MembershipsParams{User: "bob", Limit: 1}, "s:list/bob=writer"},
		{models.MembershipsParams{User: "carl"}, ""},
	} {
		if got := members(t, s, c.p); got != c.want {
			t.Errorf("memberships %+v = %q, want %q", c.p, got, c.want)
		}
	}
	if _, err := s.Memberships(ctx, models.MembershipsParams{}); err == nil {
		t.Error("memberships of nobody in no scope: no error")
	}

	tx, _ = begin(t, s, "s:list")
	if err := tx.SetMembership(ctx, models.SetMembershipParams{Scope: "s:list", User: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.DropMemberships(ctx, models.DropMembershipsParams{Scope: "s:other"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := members(t, s, models.MembershipsParams{User: "bob"}); got != "" {
		t.Fatalf("after removal, bob's memberships = %q", got)
	}
	if got := members(t, s, models.MembershipsParams{Scope: "s:list"}); got != "s:list/ann=admin" {
		t.Fatalf("after removal, the list's members = %q", got)
	}
	// A read transaction sees memberships as of its snapshot.
	rd, err := s.BeginRead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Rollback() //nolint:errcheck // read-only
	if got := members(t, rd, models.MembershipsParams{User: "ann"}); got != "s:list/ann=admin" {
		t.Fatalf("read transaction: ann's memberships = %q", got)
	}
}

// testFieldTimes: a timed model's field times are written with its
// records, read back by Load and the feed, replaced and cleared by later
// writes, and removed with purged records; other models have none.
func testFieldTimes(t *testing.T, s models.Store) {
	ctx := context.Background()
	if s.Features(TimedModel).WriteIfNewer {
		t.Fatal("a timed model's records must not be written by WriteIfNewer (it names no times)")
	}
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	a := rec(TimedModel, "ann", "a", "x", t2)
	a.FieldTimes = models.FieldTimes{"title": t1, "gone": t2}
	b := rec(TimedModel, "ann", "b", "x", t2)
	bob := rec(TimedModel, "bob", "a", "x", t2)
	bob.FieldTimes = models.FieldTimes{"title": t0}
	write(t, s, models.WriteUpsert, a, b, bob, rec(DocModel, "ann", "d", "x", t2))
	got := load(t, s, "ann", TimedModel, "a", "b")
	if !got["a"].FieldTimes.Equal(models.FieldTimes{"title": t1, "gone": t2}) || got["b"].FieldTimes != nil {
		t.Fatalf("loaded field times: a %v, b %v", got["a"].FieldTimes, got["b"].FieldTimes)
	}
	if ft := load(t, s, "bob", TimedModel, "a")["a"].FieldTimes; !ft.Equal(models.FieldTimes{"title": t0}) {
		t.Fatalf("bob's record has its own field times: %v", ft)
	}
	res, _ := feed(t, s, models.ReadFeedParams{Scopes: []models.ScopeRange{{Scope: "ann", UpTo: 3}}})
	for _, r := range res.Records {
		want := models.FieldTimes(nil)
		if r.Model == TimedModel && r.UID == "a" {
			want = models.FieldTimes{"title": t1, "gone": t2}
		}
		if !r.FieldTimes.Equal(want) || (want == nil && r.FieldTimes != nil) {
			t.Fatalf("feed's %s/%s field times: %v, want %v", r.Model, r.UID, r.FieldTimes, want)
		}
	}
	// A write replaces the times; one without times clears them.
	a2 := rec(TimedModel, "ann", "a", "y", t2)
	a2.FieldTimes = models.FieldTimes{"title": t2}
	b2 := rec(TimedModel, "ann", "b", "y", t2)
	b2.FieldTimes = models.FieldTimes{"body": t1}
	write(t, s, models.WriteUpdate, a2, b2)
	got = load(t, s, "ann", TimedModel, "a", "b")
	if !got["a"].FieldTimes.Equal(models.FieldTimes{"title": t2}) || !got["b"].FieldTimes.Equal(models.FieldTimes{"body": t1}) {
		t.Fatalf("after replacing: a %v, b %v", got["a"].FieldTimes, got["b"].FieldTimes)
	}
	write(t, s, models.WriteUpsert, rec(TimedModel, "ann", "a", "z", t2))
	if ft := load(t, s, "ann", TimedModel, "a")["a"].FieldTimes; ft != nil {
		t.Fatalf("a write without field times keeps %v", ft)
	}
	// A savepoint rolled back undoes the times with the record.
	tx, _ := begin(t, s, "ann")
	err := tx.InSavepoint(ctx, func() error {
		c := rec(TimedModel, "ann", "b", "w", t2)
		c.FieldTimes = models.FieldTimes{"title": t0}
		if err := tx.Write(ctx, models.WriteParams{Model: TimedModel, Records: []*models.Record{c}, Mode: models.WriteUpdate}); err != nil {
			return err
		}
		return errors.New("undo")
	})
	if err == nil || err.Error() != "undo" {
		t.Fatalf("savepoint: %v", err)
	}
	if ft := load(t, tx, "ann", TimedModel, "b")["b"].FieldTimes; !ft.Equal(models.FieldTimes{"body": t1}) {
		t.Fatalf("after a rolled-back savepoint: %v", ft)
	}
	if err := tx.Delete(ctx, models.DeleteParams{Scope: "ann", Model: TimedModel, UIDs: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A record written again after its purge starts without times.
	write(t, s, models.WriteInsert, rec(TimedModel, "ann", "b", "new", t2))
	if ft := load(t, s, "ann", TimedModel, "b")["b"].FieldTimes; ft != nil {
		t.Fatalf("a purged record's times outlived it: %v", ft)
	}
	if ft := load(t, s, "bob", TimedModel, "a")["a"].FieldTimes; !ft.Equal(models.FieldTimes{"title": t0}) {
		t.Fatalf("ann's purge touched bob's times: %v", ft)
	}
}

// testFeedFieldTimesBytes: field times count toward a feed's byte cap in
// every scope of the read, so records with many times cannot take a page
// far past it, and going on from the positions gives the rest once.
func testFeedFieldTimesBytes(t *testing.T, s models.Store) {
	times := models.FieldTimes{}
	for i := range 200 {
		times[fmt.Sprintf("field_%03d_%s", i, strings.Repeat("n", 100))] = t0
	}
	var recs []*models.Record
	for _, scope := range []string{"ann", "bob"} {
		for _, uid := range []string{"1", "2", "3"} {
			r := rec(TimedModel, scope, uid, "x", t0)
			r.FieldTimes = times
			recs = append(recs, r)
		}
	}
	write(t, s, models.WriteUpsert, recs...)
	one := recs[0].Size()
	if one < 20_000 {
		t.Fatalf("a record with 200 long field times counts %d bytes: its times are not counted", one)
	}
	scopes := []models.ScopeRange{{Scope: "ann", UpTo: 3}, {Scope: "bob", UpTo: 3}}
	res, got := feed(t, s, models.ReadFeedParams{Scopes: scopes, MaxBytes: 2*one + 100})
	if got != "ann:1@1 ann:2@2" || !res.More || res.Positions["ann"] != 2 || res.Positions["bob"] != 0 {
		t.Fatalf("two records' bytes: %s more=%v at %v", got, res.More, res.Positions)
	}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: scopes, MaxBytes: 4*one + 100})
	if got != "ann:1@1 ann:2@2 ann:3@3 bob:1@1" || !res.More || res.Positions["ann"] != 3 || res.Positions["bob"] != 1 {
		t.Fatalf("a cap in the second scope: %s more=%v at %v", got, res.More, res.Positions)
	}
	for _, r := range res.Records {
		if !r.FieldTimes.Equal(times) {
			t.Fatalf("%s/%s came without its times", r.Owner, r.UID)
		}
	}
	next := []models.ScopeRange{{Scope: "ann", After: 3, UpTo: 3}, {Scope: "bob", After: 1, UpTo: 3}}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: next, MaxBytes: 4*one + 100})
	if got != "bob:2@2 bob:3@3" || res.More {
		t.Fatalf("the rest: %s more=%v", got, res.More)
	}
	res, got = feed(t, s, models.ReadFeedParams{Scopes: scopes, MaxBytes: 10})
	if got != "ann:1@1" || !res.More || res.Positions["ann"] != 1 {
		t.Fatalf("a cap below one record still gives that record: %s more=%v at %v", got, res.More, res.Positions)
	}
}
