package framework_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
)

// BenchmarkPushBatch500 measures App.Push of 500 new records per batch
// (half creates, half updates of the previous batch's records).
func BenchmarkPushBatch500(b *testing.B) {
	for _, store := range []synctest.Store{synctest.Postgres, synctest.SQLite} {
		b.Run(string(store), func(b *testing.B) {
			app := newTestApp(b, synctest.Open(b, store))
			ctx := context.Background()
			p := framework.Principal{UserID: "bench"}
			at := time.Now().Add(-time.Hour)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch := make([]*framework.Change, 500)
				for j := range batch {
					uid := fmt.Sprintf("r%d", (i*250+j)%1_000_000)
					batch[j] = item(uid, at.Add(time.Duration(i*500+j)*time.Microsecond), j)
				}
				res, err := app.Push(ctx, p, batch)
				if err != nil || res[0].Status != framework.StatusApplied {
					b.Fatal(err, res[0])
				}
			}
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkPullPage5000 measures App.Pull of a full 5000-record page.
func BenchmarkPullPage5000(b *testing.B) {
	for _, store := range []synctest.Store{synctest.Postgres, synctest.SQLite} {
		b.Run(string(store), func(b *testing.B) {
			app := newTestApp(b, synctest.Open(b, store))
			ctx := context.Background()
			p := framework.Principal{UserID: "bench"}
			at := time.Now().Add(-time.Hour)
			for i := 0; i < 10; i++ {
				batch := make([]*framework.Change, 500)
				for j := range batch {
					batch[j] = item(fmt.Sprintf("r%d-%d", i, j), at, j)
				}
				if _, err := app.Push(ctx, p, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				page, err := app.Pull(ctx, p, framework.PullRequest{Limit: 5000})
				if err != nil || len(page.Changes) != 5000 {
					b.Fatal(err, len(page.Changes))
				}
			}
			b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkPushSingle measures App.Push of one change at a time from 8
// goroutines, each its own user, alternating creates and updates: the
// single-record path without HTTP. Compare with the bench program's
// single_c8, which adds HTTP, JWT and a client on the same cores.
func BenchmarkPushSingle(b *testing.B) {
	for _, store := range []synctest.Store{synctest.Postgres, synctest.SQLite} {
		b.Run(string(store), func(b *testing.B) {
			app := newTestApp(b, synctest.Open(b, store))
			ctx := context.Background()
			var worker atomic.Int64
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := worker.Add(1)
				p := framework.Principal{UserID: fmt.Sprintf("bench-%d", w)}
				for i := 0; pb.Next(); i++ {
					ch := item(fmt.Sprintf("w%d-%d", w, i/2), time.Now(), i)
					res, err := app.Push(ctx, p, []*framework.Change{ch})
					if err != nil || res[0].Status != framework.StatusApplied {
						b.Fatal(err, res[0])
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
