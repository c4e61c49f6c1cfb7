package framework

import (
	"encoding/json"
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
			{Model: "m\"", UID: "c", Status: StatusRejected, Code: CodeQuotaExceeded, Errors: []FieldError{{Path: "/data/x", Message: "must be <string>"}, {Path: "", Message: "\n"}}},
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
