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

// interleave measures candidates in rounds. Within a round the candidates
// take turns, one call each (in an order that rotates every turn), until
// the round has lasted about per for each; so a machine whose load comes
// and goes slows all of them alike. It prints each candidate's median
// time per call over the rounds and the median over rounds of its time
// divided by the first candidate's in the same round. The machine this
// runs on is shared: the ratios are the result, not the times.
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
	for range rounds {
		spent := make([]time.Duration, len(cands))
		calls := make([]int, len(cands))
		roundStart := time.Now()
		for turn := 0; time.Since(roundStart) < per*time.Duration(len(cands)); turn++ {
			for k := range cands {
				i := (k + turn) % len(cands)
				start := time.Now()
				if err := cands[i].run(); err != nil {
					t.Fatalf("%s: %v", cands[i].name, err)
				}
				spent[i] += time.Since(start)
				calls[i]++
			}
		}
		for i := range cands {
			ns[i] = append(ns[i], float64(spent[i].Nanoseconds())/float64(calls[i]))
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
