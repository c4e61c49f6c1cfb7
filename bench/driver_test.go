package main

import (
	"encoding/json"
	"slices"
	"testing"
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
