package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/models"
)

// accounter returns s's usage switch, or skips: the behaviour is
// optional ([models.UsageAccounter]).
func accounter(t *testing.T, s models.Store) models.UsageAccounter {
	t.Helper()
	ua, ok := s.(models.UsageAccounter)
	if !ok {
		t.Skip("the store keeps usage counters always (no models.UsageAccounter)")
	}
	return ua
}

// setUsage switches s's usage accounting; a hold is released when the
// test ends.
func setUsage(t *testing.T, ua models.UsageAccounter, on bool) models.UsageAccountingState {
	t.Helper()
	st, err := ua.SetUsageAccounting(context.Background(), models.SetUsageAccountingParams{On: on})
	if err != nil {
		t.Fatalf("set usage accounting %v: %v", on, err)
	}
	if st.Hold != nil {
		t.Cleanup(func() { st.Hold.Close() }) //nolint:errcheck // a second Close does nothing
	}
	return st
}

// counters reads the scopes' counter columns, whatever the accounting.
func counters(t *testing.T, s models.Store, scopes ...string) map[string]models.Usage {
	t.Helper()
	st, err := s.ScopeState(context.Background(), models.ScopeStateParams{Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]models.Usage{}
	for _, sc := range scopes {
		out[sc] = models.Usage{Records: st[sc].Records, Bytes: st[sc].Bytes}
	}
	return out
}

// usageWrites writes through every path that changes rows: inserts,
// updates and upserts of both kinds of table, a whole typed value, a
// store-decided write where the store has one, and a purge. It returns
// the rows it added.
func usageWrites(t *testing.T, s models.Store, scope, tag string) int64 {
	t.Helper()
	ctx := context.Background()
	at := t0.Add(time.Duration(len(tag)) * time.Hour)
	write(t, s, models.WriteInsert, rec(DocModel, scope, tag+"i", "inserted", at), rec(ItemModel, scope, tag+"i", "inserted", at))
	write(t, s, models.WriteUpdate, rec(DocModel, scope, tag+"i", "updated, longer", at.Add(time.Second)))
	gone := rec(OtherModel, scope, tag+"gone", "to purge", at)
	gone.IsDeleted = true
	write(t, s, models.WriteUpsert, rec(DocModel, scope, tag+"u", "upserted", at), rec(ItemModel, scope, tag+"i", "item, upserted", at.Add(time.Second)), gone)
	tx, res := begin(t, s, scope)
	v := &Item{Base: models.Base{OwnerID: scope, ID: tag + "v", ModifiedAt: at, Version: res.Next, CreatedAt: at, UpdatedAt: at},
		Title: "whole", N: 7, Secret: "server only"}
	if _, err := tx.InsertValue(ctx, models.InsertValueParams{Model: ItemModel, Value: v}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rows := int64(4) // two docs and two items; the purged one is gone
	for _, model := range []string{ItemModel, DocModel} {
		if !s.Features(model).WriteIfNewer {
			continue
		}
		rows++
		recs := []*models.Record{rec(model, scope, tag+"i", "store-decided", at.Add(time.Minute)), rec(model, scope, tag+"n", "new", at)}
		for i, r := range recs {
			r.Version = int64(i + 1)
		}
		if _, err := s.WriteIfNewer(ctx, models.WriteIfNewerParams{Scope: scope, Model: model,
			Span: models.VersionSpan{Count: int64(len(recs)), Take: true}, Records: recs}); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ = begin(t, s, scope)
	if err := tx.Delete(ctx, models.DeleteParams{Scope: scope, Model: OtherModel, UIDs: []string{tag + "gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// testUsageAccounting: with accounting on the counters follow every
// write; off, writes leave them alone and Usage counts the same answers;
// turned on again, they are recounted to those answers.
func testUsageAccounting(t *testing.T, s models.Store) {
	ua := accounter(t, s)
	first := setUsage(t, ua, true)
	if !first.Counting || first.Recounted {
		t.Fatalf("a migrated store's accounting: %+v, want on and nothing to recount", first)
	}
	n := usageWrites(t, s, "ann", "a")
	usageWrites(t, s, "bob", "b")
	on := map[string]models.Usage{"ann": usage(t, s, "ann"), "bob": usage(t, s, "bob")}
	if got := counters(t, s, "ann", "bob"); got["ann"] != on["ann"] || got["bob"] != on["bob"] {
		t.Fatalf("on: Usage %+v, counters %+v", on, got)
	}
	if on["ann"].Records != n || on["ann"] != on["bob"] {
		t.Fatalf("on: ann and bob wrote the same %d rows: %+v", n, on)
	}

	if first.Hold != nil {
		// A process that needs the counters is running (this one's
		// hold): off stays on.
		if kept := setUsage(t, ua, false); !kept.KeptOn || !kept.Counting {
			t.Fatalf("off while a hold is open: %+v", kept)
		}
		usageWrites(t, s, "bob", "bb")
		if got, want := counters(t, s, "bob")["bob"], usage(t, s, "bob"); got.Records != 2*n || got != want {
			t.Fatalf("kept on: counters %+v, counted %+v", got, want)
		}
		on["bob"] = usage(t, s, "bob")
		if err := first.Hold.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := setUsage(t, ua, false); st.Counting || st.KeptOn {
		t.Fatalf("off with nobody holding it on: %+v", st)
	}
	// Usage counts: the same answers, and then it follows writes.
	for _, sc := range []string{"ann", "bob"} {
		if got := usage(t, s, sc); got != on[sc] {
			t.Fatalf("off: Usage of %s %+v, on it was %+v", sc, got, on[sc])
		}
	}
	frozen := counters(t, s, "ann", "bob", "cat")
	usageWrites(t, s, "ann", "aa")
	usageWrites(t, s, "cat", "c")
	if got := counters(t, s, "ann", "bob", "cat"); fmt.Sprint(got) != fmt.Sprint(frozen) {
		t.Fatalf("off: writes changed the counters from %+v to %+v", frozen, got)
	}
	off := map[string]models.Usage{"ann": usage(t, s, "ann"), "bob": usage(t, s, "bob"), "cat": usage(t, s, "cat")}
	if off["ann"].Records != 2*n || off["bob"] != on["bob"] || off["cat"].Records != n {
		t.Fatalf("off: Usage after more writes %+v", off)
	}
	// Inside a transaction too, and the reservation carries no stale
	// counters.
	tx, res := begin(t, s, "ann")
	if res.Usage != (models.Usage{}) {
		t.Fatalf("off: the reservation's usage %+v, want zero", res.Usage)
	}
	if got := usage(t, tx, "ann"); got != off["ann"] {
		t.Fatalf("off: Usage in a transaction %+v, want %+v", got, off["ann"])
	}
	tx.Rollback() //nolint:errcheck // read only

	// On again: recounted to what was counted, and kept from there.
	st := setUsage(t, ua, true)
	if !st.Counting || !st.Recounted {
		t.Fatalf("on again: %+v, want a recount", st)
	}
	if got := counters(t, s, "ann", "bob", "cat"); fmt.Sprint(got) != fmt.Sprint(off) {
		t.Fatalf("recounted %+v, counted while off %+v", got, off)
	}
	usageWrites(t, s, "cat", "cc")
	cat := usage(t, s, "cat")
	if cat.Records != 2*n {
		t.Fatalf("on again: cat %+v", cat)
	}
	if st.Hold != nil {
		if err := st.Hold.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := setUsage(t, ua, false); st.Counting {
		t.Fatalf("off after the hold was released: %+v", st)
	}
	if got := usage(t, s, "cat"); got != cat {
		t.Fatalf("off: Usage %+v, the counters had %+v", got, cat)
	}
}

// testUsageRecountConcurrent: accounting turned on and off again and
// again while writers write; each recount happens among the writes, and
// in the end the counters equal a count of the rows: no write is counted
// twice or missed.
func testUsageRecountConcurrent(t *testing.T, s models.Store) {
	ua := accounter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	setUsage(t, ua, false)
	const writers = 4
	// Writers stop between transactions, not by cancelling ctx: a
	// cancelled COMMIT may still be committing in the server after the
	// writer returned, so counters read then would miss a write the
	// later count of the rows sees.
	var stop atomic.Bool
	scopes := make([]string, writers)
	progress := make(chan struct{}, 1024)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		scopes[w] = fmt.Sprintf("w%d", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				// New rows, growing updates and deletes, in two tables.
				err := writeTx(ctx, s, scopes[w], func(tx models.Tx, v int64) error {
					r := rec(DocModel, scopes[w], fmt.Sprint(i%7), fmt.Sprintf("%d: %*s", i, i%13, ""), t0.Add(time.Duration(i)*time.Second))
					it := rec(ItemModel, scopes[w], fmt.Sprint(i), "item", t0)
					r.Version, it.Version = v, v+1
					if err := tx.Write(ctx, models.WriteParams{Model: DocModel, Records: []*models.Record{r}, Mode: models.WriteUpsert}); err != nil {
						return err
					}
					if err := tx.Write(ctx, models.WriteParams{Model: ItemModel, Records: []*models.Record{it}, Mode: models.WriteInsert}); err != nil {
						return err
					}
					if i%3 == 0 {
						return tx.Delete(ctx, models.DeleteParams{Scope: scopes[w], Model: ItemModel, UIDs: []string{fmt.Sprint(i - 1)}})
					}
					return nil
				})
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("writer %d: %w", w, err)
					}
					return
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	waitWrites := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-progress:
			case err := <-errc:
				t.Fatal(err)
			}
		}
	}
	for round := range 4 {
		waitWrites(20)
		st := setUsage(t, ua, true) // recounts among the writes
		if !st.Recounted {
			t.Fatalf("round %d: not recounted: %+v", round, st)
		}
		waitWrites(20)
		if st.Hold != nil {
			st.Hold.Close() //nolint:errcheck // checked by the suite's other test
		}
		if round < 3 {
			setUsage(t, ua, false)
		}
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	kept := counters(t, s, scopes...)
	setUsage(t, ua, false) // Usage counts now
	for _, sc := range scopes {
		if got := usage(t, s, sc); got != kept[sc] || got.Records == 0 {
			t.Fatalf("%s: counters %+v after the last recount and the writes since, the rows count %+v", sc, kept[sc], got)
		}
	}
}

// writeTx runs fn in a transaction holding scope's counter, with the
// version reserved, raising the counter by two; it never calls t.Fatal
// (writers run on their own goroutines).
func writeTx(ctx context.Context, s models.Store, scope string, fn func(tx models.Tx, v int64) error) error {
	tx, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	res, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: scope})
	if err != nil {
		return err
	}
	if err := fn(tx, res.Next); err != nil {
		return err
	}
	if err := tx.SetScopeVersion(ctx, models.SetScopeVersionParams{Scope: scope, Version: res.Next + 1}); err != nil {
		return err
	}
	return errors.Join(tx.Commit())
}
