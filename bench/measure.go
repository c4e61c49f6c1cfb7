package main

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// run is one measured run: records moved, wall time, and the latency of
// every request (or statement, for the baseline).
type run struct {
	records int64
	elapsed time.Duration
	lats    []time.Duration
}

func (r run) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.records) / r.elapsed.Seconds()
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted
// latencies in milliseconds (nearest rank).
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return float64(sorted[k]) / float64(time.Millisecond)
}

// op does one request. It returns the records it moved and whether its
// worker is finished.
type op func(ctx context.Context, worker int) (records int, done bool, err error)

// measure runs conc workers calling fn until the deadline passes or every
// worker is done; the first error stops all of them.
func measure(parent context.Context, conc int, deadline time.Time, fn op) (run, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		mu    sync.Mutex
		out   run
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lats []time.Duration
			var recs int64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, done, err := fn(ctx, w)
				if err != nil {
					mu.Lock()
					if first == nil && !errors.Is(err, context.Canceled) {
						first = err
					}
					mu.Unlock()
					cancel()
					break
				}
				lats = append(lats, time.Since(t0))
				recs += int64(n)
				if done {
					break
				}
			}
			mu.Lock()
			out.lats = append(out.lats, lats...)
			out.records += recs
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	if first == nil {
		first = parent.Err()
	}
	return out, first
}

// Result is one workload's line of output.
type Result struct {
	Workload      string  `json:"workload"`
	Store         string  `json:"store"`
	RecordsPerS   float64 `json:"records_per_s"`
	BaselinePerS  float64 `json:"baseline_records_per_s"`
	Ratio         float64 `json:"ratio"`
	P50           float64 `json:"p50_ms"`
	P95           float64 `json:"p95_ms"`
	P99           float64 `json:"p99_ms"`
	BaselineP50   float64 `json:"baseline_p50_ms"`
	ServerRSSMB   float64 `json:"server_rss_mb"`
	Reps          int     `json:"reps"`
	RecordsPerRep int64   `json:"records_per_rep"`
}

// summarize takes the median over repetitions of each figure (the peak RSS
// is the maximum).
func summarize(name, store string, runs, bases []run, rss []float64) Result {
	r := Result{Workload: name, Store: store, Reps: len(runs)}
	var rps, p50, p95, p99, brps, bp50 []float64
	for _, x := range runs {
		s := slices.Clone(x.lats)
		slices.Sort(s)
		rps = append(rps, x.perSecond())
		p50 = append(p50, percentile(s, 50))
		p95 = append(p95, percentile(s, 95))
		p99 = append(p99, percentile(s, 99))
		r.RecordsPerRep = max(r.RecordsPerRep, x.records)
	}
	for _, x := range bases {
		s := slices.Clone(x.lats)
		slices.Sort(s)
		brps = append(brps, x.perSecond())
		bp50 = append(bp50, percentile(s, 50))
	}
	r.RecordsPerS, r.P50, r.P95, r.P99 = median(rps), median(p50), median(p95), median(p99)
	r.BaselinePerS, r.BaselineP50 = median(brps), median(bp50)
	if r.BaselinePerS > 0 {
		r.Ratio = r.RecordsPerS / r.BaselinePerS
	}
	for _, m := range rss {
		r.ServerRSSMB = max(r.ServerRSSMB, m)
	}
	r.RecordsPerS, r.BaselinePerS = round(r.RecordsPerS, 1), round(r.BaselinePerS, 1)
	r.Ratio = round(r.Ratio, 3)
	r.P50, r.P95, r.P99, r.BaselineP50 = round(r.P50, 3), round(r.P95, 3), round(r.P99, 3), round(r.BaselineP50, 3)
	r.ServerRSSMB = round(r.ServerRSSMB, 1)
	return r
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}
