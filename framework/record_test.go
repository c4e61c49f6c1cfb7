package framework

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/schemas"
)

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   any
		want string // TimeFormat, or "!" + part of the message
	}{
		{"2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000000Z"},
		{"2026-11-25T10:00:00.1234567Z", "2026-11-25T10:00:00.123456Z"},
		{"2026-11-25T10:00:00+00:00", "2026-11-25T10:00:00.000000Z"},
		{"2026-11-25T10:00:00+02:00", "!must be UTC"},
		{"2026-11-25 10:00:00", "!RFC 3339"},
		{json.Number("1764064800"), "2025-11-25T10:00:00.000000Z"},
		{json.Number("1764064800.5"), "2025-11-25T10:00:00.500000Z"},
		{json.Number("1.7640648e9"), "2025-11-25T10:00:00.000000Z"},
		{json.Number("-1"), "!out of range"},
		{json.Number("1e400"), "!out of range"},
		{json.Number("99999999999999"), "!out of range"},
		{nil, "!required"},
		{true, "!RFC 3339 string or a number"},
	}
	for _, c := range cases {
		got, msg := parseTime(c.in)
		if strings.HasPrefix(c.want, "!") {
			if !strings.Contains(msg, c.want[1:]) {
				t.Errorf("parseTime(%v): message %q, want one containing %q", c.in, msg, c.want[1:])
			}
			continue
		}
		if msg != "" || got.Format(TimeFormat) != c.want {
			t.Errorf("parseTime(%v) = %s %q, want %s", c.in, got.Format(TimeFormat), msg, c.want)
		}
	}
}

func TestTimeJSONRoundTrip(t *testing.T) {
	in := Time{time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)}
	b, _ := json.Marshal(in)
	if string(b) != `"2026-01-02T03:04:05.678901Z"` {
		t.Fatalf("encoded %s", b)
	}
	var out Time
	if err := json.Unmarshal(b, &out); err != nil || !out.Equal(in.Time) {
		t.Fatalf("decoded %v %v", out, err)
	}
	if err := json.Unmarshal([]byte(`"2026-01-02T03:04:05+01:00"`), &out); err == nil {
		t.Fatal("non-UTC accepted")
	}
}

func TestValidUID(t *testing.T) {
	for s, want := range map[string]bool{
		"5f0c2b1e-8d7a-4c1e-9f3a-2b6d8e0f1a2c": true, "abcdefgh12345678": true, "a_b": true,
		"": false, strings.Repeat("a", 65): false, "a b": false, "a/b": false, "é": false,
	} {
		if validUID(s) != want {
			t.Errorf("validUID(%q) = %v", s, !want)
		}
	}
}

func TestCursorRoundTripAndRejects(t *testing.T) {
	c := &cursor{Pos: map[string]int64{"u1": 7}, Upper: map[string]int64{"u1": 9}, Filter: filterKey([]string{"b", "a"})}
	enc := c.encode()
	got, err := decodeCursor(enc, filterKey([]string{"a", "b"}))
	if err != nil || got.Pos["u1"] != 7 || got.Upper["u1"] != 9 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"!", "e30", enc + "A", "eyJ2IjoxLCJwIjp7InUiOi0xfX0", strings.Repeat("A", 9000)} {
		if _, err := decodeCursor(bad, c.Filter); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
	if _, err := decodeCursor(enc, ""); err == nil {
		t.Error("a cursor of another models filter was accepted")
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

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-25T10:00:00Z", "1764064800.25", "1e9", "-0", "2026-11-25T10:00:00+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{s, json.Number(s)} {
			got, msg := parseTime(v)
			if msg == "" && (got.Before(minTime) || got.After(maxTime) || got.Location() != time.UTC) {
				t.Fatalf("parseTime(%q) = %v", s, got)
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
