package framework

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
)

// The hand-written encoder must say exactly what encoding/json says of
// the wire types.
func TestPullEncodingMatchesEncodingJSON(t *testing.T) {
	page := &PullResponse{Cursor: "c<&>", HasMore: true, Changes: []*Record{
		{Model: "data.Note", UID: "a", Owner: "o\"\\\n\t\x01\u2028é\xff", ModifyAt: Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)},
			Version: 7, Data: json.RawMessage(`{"title":"x"}`)},
		{Model: "m", UID: "b", IsDeleted: true, Data: nil},
	}}
	// encoding/json writes a nil RawMessage as null; Ferry always sends an
	// object.
	page.Changes[1].Data = json.RawMessage(`{}`)
	want, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	page.Changes[1].Data = nil
	if got := appendPullResponse(nil, page); string(got) != string(want) {
		t.Fatalf("\ngot  %s\nwant %s", got, want)
	}
	for _, p := range []*PullResponse{
		{Changes: []*Record{}},
		{Changes: []*Record{}, Removed: []string{"a<", "b"}, Spaces: []string{"c\u2028"}},
		{Changes: []*Record{{Model: "m", UID: "u", Space: "s\"", Owner: "s:s\"", Data: json.RawMessage(`{}`)}}, Spaces: []string{}},
		{Changes: []*Record{{Model: "m", UID: "u", Owner: "o", Data: json.RawMessage(`{}`), Gone: true}}},
		{Changes: []*Record{{Model: "m", UID: "u", Owner: "o", Data: json.RawMessage(`{}`), FieldsModifyAt: map[string]Time{
			"z\"<": {Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}, "a": {Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}}}}},
	} {
		want, _ = json.Marshal(p)
		if got := appendPullResponse(nil, p); string(got) != string(want) {
			t.Fatalf("page: %s, want %s", got, want)
		}
	}
}

func TestPushEncodingMatchesEncodingJSON(t *testing.T) {
	op := "op<1>"
	answers := []*wire.PushResponse{
		{Results: []Result{}},
		{Cursor: "c&d", Results: []Result{
			{OpID: &op, Model: "data.Note", UID: "a", Status: StatusApplied, Record: &Record{Model: "data.Note", UID: "a", Owner: "o",
				ModifyAt: Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}, Version: 9, Data: json.RawMessage(`{"t":"\u00e9"}`)}},
			{Model: "m", UID: "b", Status: StatusForbidden},
			{Model: "m", UID: "e", Status: StatusApplied, Resolution: wire.ResolutionMerged, Record: &Record{Model: "m", UID: "e", Data: json.RawMessage(`{}`),
				FieldsModifyAt: map[string]Time{"t": {Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}}}},
			{Model: "m", UID: "d", Status: StatusStale, Record: &Record{Model: "m", UID: "d", Data: json.RawMessage(`{}`)}, MissingBlobs: []string{"sha256:ab", "x\"<"}},
			{Model: "m\"", UID: "c", Status: StatusRejected, Code: CodeQuotaExceeded, Errors: []FieldError{{Path: "/data/x", Message: "must be <string>"}, {Path: "", Message: "\n"}}},
		}},
	}
	for _, a := range answers {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendPushResponse(nil, a); string(got) != string(want) {
			t.Fatalf("\ngot  %s\nwant %s", got, want)
		}
	}
	for _, single := range []*wire.SingleResponse{{Status: StatusStale, Record: answers[1].Results[0].Record}, {Status: StatusApplied},
		{Status: StatusApplied, Record: answers[1].Results[0].Record, MissingBlobs: []string{"sha256:00"}}} {
		want, _ := json.Marshal(single)
		if got := appendSingleResponse(nil, single); string(got) != string(want) {
			t.Fatalf("\ngot  %s\nwant %s", got, want)
		}
	}
}

// What the server writes, the wire types read back unchanged: the Go
// client decodes answers with them.
func TestEncodedAnswersDecodeIntoWireTypes(t *testing.T) {
	op := "7"
	rec := &Record{Model: "data.Note", UID: "a", Owner: "o\u2028", ModifyAt: Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)},
		IsDeleted: true, Version: 9, Data: json.RawMessage(`{"t":"é"}`)}
	push := &wire.PushResponse{Cursor: "c", Results: []Result{
		{OpID: &op, Model: "data.Note", UID: "a", Status: StatusApplied, Record: rec},
		{Model: "m", UID: "b", Status: StatusRejected, Code: CodeInvalid, Errors: []FieldError{{Path: "/uid", Message: "bad"}}},
	}}
	var gotPush wire.PushResponse
	if err := json.Unmarshal(appendPushResponse(nil, push), &gotPush); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(&gotPush)
	want, _ := json.Marshal(push)
	if string(again) != string(want) {
		t.Fatalf("push answer round trip:\ngot  %s\nwant %s", again, want)
	}
	page := &PullResponse{Changes: []*Record{rec}, Cursor: "x", HasMore: true}
	var gotPage wire.PullResponse
	if err := json.Unmarshal(appendPullResponse(nil, page), &gotPage); err != nil {
		t.Fatal(err)
	}
	if len(gotPage.Changes) != 1 || !gotPage.Changes[0].ModifyAt.Equal(rec.ModifyAt.Time) || gotPage.Changes[0].Owner != rec.Owner || !gotPage.HasMore {
		t.Fatalf("pull page round trip: %+v", gotPage)
	}
}
