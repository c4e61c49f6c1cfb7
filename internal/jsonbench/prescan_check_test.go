package jsonbench

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ferrysync/ferry/framework/jsonvalue"
)

// TestPrescanMatchesJSONValue: on valid texts, prescan finds the limit
// jsonvalue.ParseWithin stops at (the same limit, at the same place), and
// passes the texts it parses, so that the measured prescan does the work
// a parser without limits would need.
func TestPrescanMatchesJSONValue(t *testing.T) {
	if os.Getenv("FERRY_JSONBENCH") == "" {
		t.Skip("set FERRY_JSONBENCH=1 to check the measured prescan")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	lims := []jsonvalue.Limits{{MaxDepth: 2}, {MaxElements: 2}, {MaxValues: 5}, {MaxDepth: 3, MaxElements: 3, MaxValues: 12}, limits}
	n := 0
	for range 50_000 {
		text := []byte(randomValue(rng, 0))
		if rng.IntN(4) == 0 {
			text = []byte(fmt.Sprintf(`{"a/~b":%s,"c":[%s,%s]}`, text, randomValue(rng, 0), randomValue(rng, 0)))
		}
		if _, err := decodeStd(text); err != nil || dupKeys(text) {
			continue
		}
		lim := lims[rng.IntN(len(lims))]
		_, want := jsonvalue.ParseWithin(text, lim)
		got := prescan(text, lim)
		var wl, gl *jsonvalue.LimitError
		errors.As(want, &wl)
		errors.As(got, &gl)
		if (wl == nil) != (gl == nil) || wl != nil && *wl != *gl {
			t.Fatalf("%s with %+v: prescan %v, jsonvalue %v", text, lim, got, want)
		}
		n++
	}
	t.Logf("%d texts agree", n)
}

// dupKeys reports whether an object of text repeats a key (prescan
// counts repeated keys as members, jsonvalue does not).
func dupKeys(text []byte) bool {
	type level struct {
		keys      map[string]bool // nil for an array
		expectKey bool
	}
	var st []level
	dec := stdjson.NewDecoder(bytes.NewReader(text))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := len(st) - 1
		switch tok {
		case stdjson.Delim('{'), stdjson.Delim('['):
			l := level{}
			if tok == stdjson.Delim('{') {
				l = level{keys: map[string]bool{}, expectKey: true}
			}
			st = append(st, l)
			continue
		case stdjson.Delim('}'), stdjson.Delim(']'):
			st = st[:top]
			if top > 0 && st[top-1].keys != nil {
				st[top-1].expectKey = true
			}
			continue
		}
		if top < 0 || st[top].keys == nil {
			continue
		}
		if st[top].expectKey {
			key := tok.(string)
			if st[top].keys[key] {
				return true
			}
			st[top].keys[key] = true
			st[top].expectKey = false
		} else {
			st[top].expectKey = true
		}
	}
}
