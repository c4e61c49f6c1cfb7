package framework

import (
	"fmt"
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
	enc := c.encode()
	if got, err := decodeCursor(enc, ""); err != nil || len(got.Pos) != maxSpacesLimit+1 {
		t.Fatalf("a cursor of %d bytes, of a user in the most spaces while paging: %v", len(enc), err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add("")
	f.Add((&cursor{Pos: map[string]int64{"u": 3}}).encode())
	f.Add((&cursor{Pos: map[string]int64{"u": 3}, Upper: map[string]int64{"u": 5}, Filter: "abc"}).encode())
	f.Add("eyJ2IjoxfQ")
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
