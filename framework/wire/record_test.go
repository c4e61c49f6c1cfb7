package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func errMessage(err error) string {
	if err == nil {
		return ""
	}
	var te *TimeError
	if !errors.As(err, &te) {
		return "not a *TimeError: " + err.Error()
	}
	return te.Message
}

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
		{1764064800.25, "2025-11-25T10:00:00.250000Z"},
		{-5.0, "!out of range"},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in)
		msg := errMessage(err)
		if strings.HasPrefix(c.want, "!") {
			if !strings.Contains(msg, c.want[1:]) {
				t.Errorf("ParseTime(%v): message %q, want one containing %q", c.in, msg, c.want[1:])
			}
			continue
		}
		if msg != "" || got.Format(TimeFormat) != c.want {
			t.Errorf("ParseTime(%v) = %s %q, want %s", c.in, got.Format(TimeFormat), msg, c.want)
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
	err := json.Unmarshal([]byte(`"2026-01-02T03:04:05+01:00"`), &out)
	var te *TimeError
	if !errors.As(err, &te) || te.Message != "modify_at must be UTC" {
		t.Fatalf("non-UTC: %v", err)
	}
	if err := json.Unmarshal([]byte(`1764064800.25`), &out); err != nil || out.Format(TimeFormat) != "2025-11-25T10:00:00.250000Z" {
		t.Fatalf("epoch seconds: %v %v", out, err)
	}
}

func TestValidUID(t *testing.T) {
	for s, want := range map[string]bool{
		"5f0c2b1e-8d7a-4c1e-9f3a-2b6d8e0f1a2c": true, "abcdefgh12345678": true, "a_b": true,
		"": false, strings.Repeat("a", 65): false, "a b": false, "a/b": false, "é": false,
	} {
		if ValidUID(s) != want {
			t.Errorf("ValidUID(%q) = %v", s, !want)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-25T10:00:00Z", "1764064800.25", "1e9", "-0", "2026-11-25T10:00:00+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{s, json.Number(s)} {
			got, err := ParseTime(v)
			msg := errMessage(err)
			if msg == "" && (got.Before(minTime) || got.After(maxTime) || got.Location() != time.UTC) {
				t.Fatalf("ParseTime(%q) = %v", s, got)
			}
		}
	})
}

// FuzzTimeUnmarshal: the shortcuts of Time.UnmarshalJSON decide as
// decoding the value first would.
func FuzzTimeUnmarshal(f *testing.F) {
	for _, s := range []string{`"2026-11-25T10:00:00Z"`, `"2026-11-25T10:00:00\u002e5Z"`, `1764064800.25`, `-1`, `1e9`, `null`, `"x"`, `0x10`, `"a\"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if dec.Decode(&v) != nil || dec.More() {
			return // encoding/json never hands such text to UnmarshalJSON
		}
		want, wantErr := ParseTime(v)
		var got Time
		err := got.UnmarshalJSON([]byte(s))
		if (err == nil) != (wantErr == nil) || err == nil && !got.Equal(want) {
			t.Fatalf("UnmarshalJSON(%s) = %v %v, want %v %v", s, got, err, want, wantErr)
		}
	})
}
