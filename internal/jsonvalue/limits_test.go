package jsonvalue_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// referenceLimits finds the first limit a valid text goes over by
// encoding/json's tokens: the answer CheckLimits must give.
func referenceLimits(text []byte, lim jsonvalue.Limits) *jsonvalue.LimitError {
	type level struct {
		object    bool
		count     int
		key       string
		expectKey bool
	}
	var st []*level
	path := func(levels []*level) string {
		var b strings.Builder
		for _, l := range levels {
			b.WriteByte('/')
			if l.object {
				b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(l.key))
			} else {
				b.WriteString(strconv.Itoa(l.count - 1))
			}
		}
		return b.String()
	}
	depthCap := lim.MaxDepth
	if depthCap <= 0 {
		depthCap = 10000
	}
	values := 0
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber() // a valid number such as 1e700 does not fit a float64, and is still a value
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *level
		if len(st) > 0 {
			top = st[len(st)-1]
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			st = st[:len(st)-1]
			if len(st) > 0 && st[len(st)-1].object {
				st[len(st)-1].expectKey = true
			}
			continue
		}
		if top != nil && top.object && top.expectKey {
			top.key, top.expectKey = tok.(string), false
			continue
		}
		// A value.
		if top != nil {
			top.count++
			if lim.MaxElements > 0 && top.count > lim.MaxElements {
				return &jsonvalue.LimitError{Path: path(st[:len(st)-1]), Limit: "elements", Max: lim.MaxElements}
			}
			if top.object {
				top.expectKey = true
			}
		}
		values++
		if lim.MaxValues > 0 && values > lim.MaxValues {
			return &jsonvalue.LimitError{Limit: "values", Max: lim.MaxValues}
		}
		if tok == json.Delim('{') || tok == json.Delim('[') {
			if len(st)+1 > depthCap {
				return &jsonvalue.LimitError{Path: path(st), Limit: "depth", Max: depthCap}
			}
			st = append(st, &level{object: tok == json.Delim('{'), expectKey: tok == json.Delim('{')})
		}
	}
}

func checkAgainstReference(t *testing.T, text []byte, lim jsonvalue.Limits) {
	t.Helper()
	if !json.Valid(text) {
		return
	}
	want := referenceLimits(text, lim)
	err := jsonvalue.CheckLimits(text, lim)
	var got *jsonvalue.LimitError
	if err != nil && !errors.As(err, &got) {
		t.Fatalf("%q: %v is not a *LimitError", text, err)
	}
	if (got == nil) != (want == nil) || got != nil && *got != *want {
		t.Fatalf("%.200q with %+v:\nCheckLimits %#v\nreference   %#v", text, lim, got, want)
	}
	// ParseWithin answers the same, and parses what stays within.
	v, perr := jsonvalue.ParseWithin(text, lim)
	if want != nil {
		if !errors.As(perr, &got) || *got != *want {
			t.Fatalf("%.200q: ParseWithin %v, want %v", text, perr, want)
		}
	} else if perr != nil || v == nil && !bytes.Equal(bytes.TrimSpace(text), []byte("null")) {
		t.Fatalf("%.200q: ParseWithin %v", text, perr)
	}
}

var testLimits = []jsonvalue.Limits{
	{MaxDepth: 1}, {MaxDepth: 2}, {MaxElements: 1}, {MaxElements: 2}, {MaxValues: 1}, {MaxValues: 5},
	{MaxDepth: 3, MaxElements: 3, MaxValues: 12}, {MaxDepth: 64, MaxElements: 10_000, MaxValues: 500_000}, {},
}

// TestCheckLimitsMatchesReference: on valid texts (random, and the
// hostile shapes the limits are for), CheckLimits stops at the limit and
// place encoding/json's tokens say, for several limits.
func TestCheckLimitsMatchesReference(t *testing.T) {
	hostile := []string{
		strings.Repeat("[", 65) + strings.Repeat("]", 65),
		"[" + strings.Repeat("0,", 10_000) + "0]",
		"[" + strings.Repeat("[],", 20_000) + "[]]",
		`{"a":` + strings.Repeat(`{"b~/\u0063":`, 70) + "1" + strings.Repeat("}", 71),
		`{"x":[1,{"y":[2,3,{"z":"\"]}["}]}]}`,
		`[ "a" , { "k" : [ true , false , null , -1.5e3 ] } ]`,
		`{"dup":1,"dup":2,"dup":3}`,
		`[1e700]`, `{"n":[-1e999999999,2]}`, // valid numbers no float64 holds: the fuzzer's find
	}
	for _, s := range hostile {
		for _, lim := range testLimits {
			checkAgainstReference(t, []byte(s), lim)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	for range n {
		text := randomValue(rng, 0)
		if rng.IntN(3) == 0 {
			text = fmt.Sprintf(`{"a/~b":%s,"c\n":[%s,%s]}`, text, randomValue(rng, 0), randomValue(rng, 0))
		}
		checkAgainstReference(t, []byte(text), testLimits[rng.IntN(len(testLimits))])
	}
}

// FuzzCheckLimits: on any valid text, CheckLimits agrees with the
// reference, and ParseWithin with both.
func FuzzCheckLimits(f *testing.F) {
	for _, s := range tricky {
		f.Add([]byte(s), 2, 2, 5)
	}
	f.Fuzz(func(t *testing.T, text []byte, depth, elements, values int) {
		lim := jsonvalue.Limits{MaxDepth: depth % 70, MaxElements: elements % 50, MaxValues: values % 200}
		if lim.MaxDepth < 0 || lim.MaxElements < 0 || lim.MaxValues < 0 {
			return
		}
		checkAgainstReference(t, text, lim)
	})
}
