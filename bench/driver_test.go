package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/ferrysync/ferry/framework"
)

// TestStatuses checks the driver's scan against encoding/json on an answer
// whose record data spells the key pattern inside strings.
func TestStatuses(t *testing.T) {
	type result struct {
		Status string         `json:"status"`
		Record map[string]any `json:"record,omitempty"`
	}
	answer, err := json.Marshal(map[string]any{"results": []result{
		{Status: "applied", Record: map[string]any{"data": map[string]any{"title": `x "status":"stale" y`}}},
		{Status: "stale", Record: map[string]any{"data": map[string]any{"body": `"status":"`}}},
		{Status: "rejected"},
		{Status: "forbidden"},
		{Status: "something-new"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := statuses(answer, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"applied", "stale", "rejected", "forbidden", "something-new"}
	if !slices.Equal(got, want) {
		t.Fatalf("statuses = %q, want %q", got, want)
	}
	if _, err := statuses([]byte(`{"status":"appl`), nil); err == nil {
		t.Fatal("an unterminated status was accepted")
	}
}

// TestScanPage checks the driver's page scan against a page encoded the
// way the server encodes it.
func TestScanPage(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		page := framework.PullResponse{Changes: []*framework.Record{}, Cursor: "c_-123", HasMore: n == 3}
		for i := range n {
			page.Changes = append(page.Changes, &framework.Record{Model: "data.Note", UID: "u" + strconv.Itoa(i),
				Data: json.RawMessage(`{"title":"{\"model\":","body":"\"cursor\":\"x\"","tags":null,"pinned":false}`)})
		}
		answer, err := json.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scanPage(answer)
		if err != nil || got != (pullPage{Changes: n, Cursor: "c_-123", HasMore: n == 3}) {
			t.Fatalf("%s: %+v %v", answer, got, err)
		}
	}
	if _, err := scanPage([]byte(`{"error":{}}`)); err == nil {
		t.Fatal("an error answer was scanned")
	}
}
