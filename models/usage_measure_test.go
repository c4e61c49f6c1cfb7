package models_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
)

// TestMeasureUsageAccounting measures, on PostgreSQL, what turning usage
// accounting on costs (the recount, while writes wait) and what Usage
// costs with it off (a count) against on (one row), for a store of
// FERRY_MEASURE_ROWS rows (default 1,000,000) over 10,000 scopes and one
// scope of a tenth of them. It runs only with FERRY_MEASURE_USAGE=1:
//
//	FERRY_MEASURE_USAGE=1 go test -count=1 -v -run '^TestMeasureUsageAccounting$' ./models/
func TestMeasureUsageAccounting(t *testing.T) {
	if os.Getenv("FERRY_MEASURE_USAGE") != "1" {
		t.Skip("set FERRY_MEASURE_USAGE=1 to measure the recount and Usage without counters")
	}
	rows := 1_000_000
	if v := os.Getenv("FERRY_MEASURE_ROWS"); v != "" {
		rows, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	db := synctest.OpenPostgres(t)
	s := models.NewStore(db)
	if err := s.Register("m.note", models.Typed[newerNote]()); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ua := s.(models.UsageAccounter)
	set := func(on bool) (models.UsageAccountingState, time.Duration) {
		start := time.Now()
		st, err := ua.SetUsageAccounting(ctx, models.SetUsageAccountingParams{On: on})
		if err != nil {
			t.Fatal(err)
		}
		if st.Hold != nil {
			t.Cleanup(func() { st.Hold.Close() })
		}
		return st, time.Since(start)
	}
	set(false)
	// One big scope ("big", a tenth of the rows), the rest over 10,000.
	for _, q := range []string{
		`INSERT INTO newer_notes (uid, owner, modify_at, is_deleted, version, created_at, updated_at, title, tags, secret)
		 SELECT 'n' || g, CASE WHEN g % 10 = 0 THEN 'big' ELSE 'u' || (g % 10000) END, now(), false, g, now(), now(),
		        'a title of some length ' || g, '["a","b"]', 's'
		 FROM generate_series(1, ?) AS g`,
		`INSERT INTO ferry_scopes (scope, version, purged_version) SELECT DISTINCT owner, ?, 0 FROM newer_notes ON CONFLICT DO NOTHING`,
		`ANALYZE newer_notes`,
	} {
		if _, err := db.ExecContext(ctx, q, rows); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	time1 := func(scope string) (models.Usage, time.Duration) {
		var best time.Duration
		var u models.Usage
		for i := range 5 {
			start := time.Now()
			var err error
			if u, err = s.Usage(ctx, scope); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); i == 0 || d < best {
				best = d
			}
		}
		return u, best
	}
	smallOff, dSmallOff := time1("u1")
	bigOff, dBigOff := time1("big")
	st, dOn := set(true)
	if !st.Recounted {
		t.Fatalf("not recounted: %+v", st)
	}
	smallOn, dSmallOn := time1("u1")
	bigOn, dBigOn := time1("big")
	if smallOn != smallOff || bigOn != bigOff {
		t.Fatalf("counted %+v %+v, recounted %+v %+v", smallOff, bigOff, smallOn, bigOn)
	}
	t.Logf("%d rows: turning accounting on (recount) took %v", rows, dOn.Round(time.Millisecond))
	t.Logf("Usage of a scope of %d rows: off (count) %v, on (counters) %v", smallOff.Records, dSmallOff.Round(time.Microsecond), dSmallOn.Round(time.Microsecond))
	t.Logf("Usage of a scope of %d rows: off (count) %v, on (counters) %v", bigOff.Records, dBigOff.Round(time.Microsecond), dBigOn.Round(time.Microsecond))
}
