package framework

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// The hand-written encoder must say exactly what encoding/json says.
func TestPullEncodingMatchesEncodingJSON(t *testing.T) {
	page := &PullResponse{Cursor: "c<&>", HasMore: true, Changes: []*Record{
		{Model: "data.Note", UID: "a", Owner: "o\"\\\n\t\x01\u2028é\xff", ModifyAt: Time{time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)},
			Version: 7, Data: json.RawMessage(`{"title":"x"}`)},
		{Model: "m", UID: "b", IsDeleted: true, Data: nil},
	}}
	want, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json writes a nil RawMessage as null; Ferry always sends an
	// object.
	page.Changes[1].Data = json.RawMessage(`{}`)
	want, _ = json.Marshal(page)
	page.Changes[1].Data = nil
	if got := page.appendJSON(nil); string(got) != string(want) {
		t.Fatalf("\ngot  %s\nwant %s", got, want)
	}
	empty := &PullResponse{Changes: []*Record{}}
	want, _ = json.Marshal(empty)
	if got := empty.appendJSON(nil); string(got) != string(want) {
		t.Fatalf("empty page: %s, want %s", got, want)
	}
}

func TestPushEncodingMatchesEncodingJSON(t *testing.T) {
	op := "op<1>"
	answers := []*pushResponse{
		{Results: []Result{}},
		{Cursor: "c&d", Results: []Result{
			{OpID: &op, Model: "data.Note", UID: "a", Status: StatusApplied, Record: &Record{Model: "data.Note", UID: "a", Owner: "o",
				ModifyAt: Time{time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}, Version: 9, Data: json.RawMessage(`{"t":"\u00e9"}`)}},
			{Model: "m", UID: "b", Status: StatusForbidden},
			{Model: "m\"", UID: "c", Status: StatusRejected, Errors: []FieldError{{Path: "/data/x", Message: "must be <string>"}, {Path: "", Message: "\n"}}},
		}},
	}
	for _, a := range answers {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("\ngot  %s\nwant %s", got, want)
		}
	}
	for _, single := range []*singleResponse{{Status: StatusStale, Record: answers[1].Results[0].Record}, {Status: StatusApplied}} {
		want, _ := json.Marshal(single)
		if got := single.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("\ngot  %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f", "\u2028\u2029", "\xff\xfe", "é日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}

// appendJSONValue writes decoded values exactly as json.Marshal does:
// sorted keys, the same escapes, numbers as written.
func TestValueEncodingMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	odd := []any{"o\"\\\n\t\x01\u2028é\xff<&>", map[string]any{"é": json.Number("1.5E+300"), "<k>": []any{}, "": nil},
		json.Number("-0.5e-7"), json.Number("0"), map[string]any{}, []any{nil, true, false}}
	for i := range 5000 {
		v := randomJSON(rng, 0)
		switch i % 3 {
		case 1:
			v = nearlyValid(rng)
		case 2:
			v = map[string]any{"odd": odd[rng.IntN(len(odd))], "v": v}
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONValue(nil, v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%#v:\ngot  %s (%v)\nwant %s", v, got, err, want)
		}
	}
	if got, _ := appendJSONValue(nil, json.Number("")); string(got) != "0" {
		t.Errorf("empty number: %s, json.Marshal says 0", got)
	}
	for _, bad := range []any{json.Number("01"), json.Number("1."), json.Number("+1"), json.Number("1e"), json.Number("NaN"), 1.5, struct{}{}} {
		if _, err := appendJSONValue(nil, []any{bad}); err == nil {
			t.Errorf("%#v was encoded", bad)
		}
		if _, err := json.Marshal([]any{bad}); err == nil && !isFloatOrStruct(bad) {
			t.Errorf("json.Marshal accepts %#v; the two disagree", bad)
		}
	}
}

func isFloatOrStruct(v any) bool {
	switch v.(type) {
	case float64, struct{}:
		return true
	}
	return false
}
