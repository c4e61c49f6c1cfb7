package framework

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/schemas"
)

func TestCursorRoundTripAndRejects(t *testing.T) {
	c := &cursor{Pos: map[string]int64{"u1": 7}, Upper: map[string]int64{"u1": 9}, Filter: filterKey([]string{"b", "a"}, nil)}
	enc := c.encode()
	got, err := decodeCursor(enc, filterKey([]string{"a", "b"}, nil))
	if err != nil || got.Pos["u1"] != 7 || got.Upper["u1"] != 9 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"!", "e30", enc + "A", "eyJ2IjoxLCJwIjp7InUiOi0xfX0", strings.Repeat("A", maxCursorBytes+1)} {
		if _, err := decodeCursor(bad, c.Filter); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
	if _, err := decodeCursor(enc, ""); err == nil {
		t.Error("a cursor of another models filter was accepted")
	}
}

func TestCursorOfTheMostSpaces(t *testing.T) {
	c := &cursor{Pos: map[string]int64{}, Upper: map[string]int64{}, Purged: map[string]int64{}}
	for i := range maxSpacesLimit + 1 {
		scope := spaceScope(fmt.Sprintf("%064d", i))
		if i == 0 {
			scope = strings.Repeat("u", 64) // the personal scope
		}
		c.Pos[scope], c.Upper[scope], c.Purged[scope] = 1<<62, 1<<62, 1<<62
	}
	for i := range maxSpacesLimit {
		c.Removed = append(c.Removed, fmt.Sprintf("%064d", maxSpacesLimit+i)) // every space just lost, too
	}
	enc := c.encode()
	if got, err := decodeCursor(enc, ""); err != nil || len(got.Pos) != maxSpacesLimit+1 || len(got.Removed) != maxSpacesLimit {
		t.Fatalf("a cursor of %d bytes, of a user in the most spaces while paging: %v", len(enc), err)
	}
	t.Logf("the largest cursor: %d bytes (limit %d)", len(enc), maxCursorBytes)
	// A realistic one: UUID space ids, versions below ten million.
	real := &cursor{Pos: map[string]int64{}}
	for i := range 1000 {
		real.Pos[spaceScope(fmt.Sprintf("%08x-1234-4abc-8def-%012x", i*7919, i*104729))] = 9_999_999
	}
	if n := len(real.encode()); n > 64<<10 {
		t.Fatalf("a cursor of 1,000 UUID spaces takes %d bytes", n)
	}
}

// TestCursorEncoding: the binary form gives back what was encoded, and
// cursors in the JSON form devices still hold decode to the same.
func TestCursorEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		c := &cursor{Filter: []string{"", "abc123"}[rng.IntN(2)]}
		fill := func() map[string]int64 {
			if rng.IntN(3) == 0 {
				return nil
			}
			m := map[string]int64{}
			for range rng.IntN(5) + 1 {
				m[[]string{"ann", "s:L", "s:M", "bob", "s:" + strings.Repeat("z", 64)}[rng.IntN(5)]] = rng.Int64N(1 << uint(rng.IntN(62)+1))
			}
			return m
		}
		c.Pos, c.Upper, c.Purged = fill(), fill(), fill()
		if c.Upper != nil && rng.IntN(2) == 0 {
			c.Removed = []string{"L", "M"}[:rng.IntN(2)+1]
		}
		for scope, p := range c.Pos { // a valid cursor: positions within the bounds
			if c.Upper != nil && c.Upper[scope] < p {
				c.Upper[scope] = p
			}
		}
		got, err := decodeCursor(c.encode(), c.Filter)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
		}
		old := *c
		old.V = cursorFormatJSON
		b, _ := json.Marshal(&old)
		if got, err := decodeCursor(base64.RawURLEncoding.EncodeToString(b), c.Filter); err != nil || got.encode() != c.encode() {
			t.Fatalf("a JSON cursor %s: %+v %v", b, got, err)
		}
	}
	// Truncated or padded binary cursors are refused.
	enc := (&cursor{Pos: map[string]int64{"ann": 5, "s:L": 9}, Upper: map[string]int64{"ann": 7, "s:L": 9}}).encode()
	raw, _ := base64.RawURLEncoding.DecodeString(enc)
	for i := 1; i < len(raw); i++ {
		if _, err := decodeCursor(base64.RawURLEncoding.EncodeToString(raw[:i]), ""); err == nil {
			t.Fatalf("a cursor cut to %d of %d bytes decoded", i, len(raw))
		}
	}
	if _, err := decodeCursor(base64.RawURLEncoding.EncodeToString(append(raw, 0)), ""); err == nil {
		t.Fatal("a cursor with a byte after it decoded")
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add("")
	f.Add((&cursor{Pos: map[string]int64{"u": 3}}).encode())
	f.Add((&cursor{Pos: map[string]int64{"u": 3}, Upper: map[string]int64{"u": 5}, Filter: "abc"}).encode())
	f.Add("eyJ2IjoxfQ")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"h":{"a":-1}}`))) // negative versions only in a map without positions
	f.Add((&cursor{Pos: map[string]int64{"u": 3, "s:L": 1}, Upper: map[string]int64{"u": 5, "s:L": 1}, Purged: map[string]int64{"s:L": 1},
		Removed: []string{"M"}, Filter: "abc"}).encode())
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s, "")
		if err != nil {
			if pe := asProtocolError(err); pe.Code != CodeInvalidCursor {
				t.Fatalf("error code %s", pe.Code)
			}
			return
		}
		for scope, p := range c.Pos {
			if p < 0 || c.Upper != nil && c.Upper[scope] < p {
				t.Fatalf("accepted a bad position: %+v", c)
			}
		}
		again, err := decodeCursor(c.encode(), "")
		if err != nil || again.encode() != c.encode() {
			t.Fatalf("%+v encodes to a cursor that decodes to %+v (%v)", c, again, err)
		}
	})
}

// FuzzEnvelopeFastPath: the hand-written envelope check never accepts what
// the protocol's schema refuses.
func FuzzEnvelopeFastPath(f *testing.F) {
	for _, s := range []string{
		`{"model":"data.Note","uid":"a","modify_at":"2026-01-01T00:00:00Z","data":{"title":"x"}}`,
		`{"model":"m","uid":"a","modify_at":1,"is_deleted":true,"op_id":"1","owner":"o","version":3}`,
		`{"model":"","uid":"a","modify_at":1}`, `{"model":"m","uid":1,"modify_at":1}`,
		`{"model":"m","uid":"a","modify_at":1,"version":1.5}`, `{"model":"m","uid":"a","modify_at":1,"data":[]}`,
	} {
		f.Add(s)
	}
	app := &App{}
	ps, err := newSchemaSet(schemas.Protocol)
	if err != nil {
		f.Fatal(err)
	}
	if app.protocol.change, err = ps.compile("change.json"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v any
		if decodeJSON(strings.NewReader(body), &v) != nil {
			return
		}
		obj, ok := v.(map[string]any)
		if !ok || !envelopeOK(obj) {
			return
		}
		if errs := schemaErrors(app.protocol.change, v, ""); len(errs) > 0 {
			t.Fatalf("fast path accepted %s, schema says %v", body, errs)
		}
	})
}
