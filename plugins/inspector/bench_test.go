package inspector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
)

// BenchmarkUserPageOfALargeUser loads the page of a user holding 100,000
// records (FERRY_BENCH_RECORDS changes it), newest page and a page
// filtered to a model with one record in a thousand, on SQLite
// (FERRY_BENCH_STORE=postgres for PostgreSQL):
//
//	go test -run '^$' -bench UserPage -benchtime 20x ./plugins/inspector/
func BenchmarkUserPageOfALargeUser(b *testing.B) {
	n := 100_000
	if s := os.Getenv("FERRY_BENCH_RECORDS"); s != "" {
		fmt.Sscan(s, &n)
	}
	store := synctest.SQLite
	if os.Getenv("FERRY_BENCH_STORE") == "postgres" {
		store = synctest.Postgres
	}
	e := newEnv(b, store, options{})
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	for lo := 0; lo < n; lo += 1000 {
		var chs []*framework.Change
		for i := lo; i < min(lo+1000, n); i++ {
			m := "data.Note"
			if i%1000 == 0 {
				m = "data.Tag"
			}
			chs = append(chs, &framework.Change{Model: m, UID: fmt.Sprintf("r%06d", i), ModifyAt: framework.Time{Time: at},
				Data: json.RawMessage(`{"title":"a note of a large user","body":"some text to make it look like one"}`)})
		}
		if _, err := e.app.Push(ctx, framework.Principal{UserID: "big"}, chs); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct{ name, path string }{{"newest", userPage("big")}, {"rare model", userPage("big", "model", "data.Tag")}} {
		b.Run(c.name, func(b *testing.B) {
			var rowsShown int
			for b.Loop() {
				st, html, _ := e.get(b, c.path, func(r *http.Request) { r.SetBasicAuth("admin", token) })
				if st != 200 {
					b.Fatalf("%d", st)
				}
				rowsShown = len(uidsOf(html))
			}
			b.ReportMetric(float64(rowsShown), "rows")
		})
	}
}
