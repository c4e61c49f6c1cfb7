package jsonbench

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// A candidate is one way of doing the measured work once.
type candidate struct {
	name string
	run  func() error
}

// interleave measures candidates in rounds, each round running every
// candidate for about per, in a rotating order, so that a machine whose
// load changes slows all of them alike. It prints each candidate's median
// time per call and the median over rounds of its time divided by the
// first candidate's in the same round. The machine this runs on is
// shared: the ratios are the result, not the times.
func interleave(t *testing.T, title string, rounds int, per time.Duration, cands []candidate) {
	t.Helper()
	if os.Getenv("FERRY_JSONBENCH") == "" {
		t.Skip("set FERRY_JSONBENCH=1 to run the interleaved comparisons")
	}
	for _, c := range cands { // warm up, and check each works
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	ns := make([][]float64, len(cands))
	for r := range rounds {
		for k := range cands {
			i := (k + r) % len(cands)
			c := cands[i]
			n := 0
			start := time.Now()
			for time.Since(start) < per {
				for range 4 {
					if err := c.run(); err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
				}
				n += 4
			}
			ns[i] = append(ns[i], float64(time.Since(start).Nanoseconds())/float64(n))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d rounds of %v each)\n", title, rounds, per)
	fmt.Fprintf(&b, "| %s | median µs/op | ratio to %s (median, min–max over rounds) |\n| --- | ---: | ---: |\n", "candidate", cands[0].name)
	for i, c := range cands {
		ratios := make([]float64, rounds)
		for r := range rounds {
			ratios[r] = ns[i][r] / ns[0][r]
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.2f (%.2f–%.2f) |\n", c.name, median(ns[i])/1000, median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	t.Log("\n" + b.String())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
