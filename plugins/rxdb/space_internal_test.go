package rxdb

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework"
)

func TestCheckpointSecretRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	rotated, err := New(Config{CheckpointSecret: newKey, PreviousCheckpointSecrets: [][]byte{oldKey}})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := New(Config{CheckpointSecret: newKey})
	if err != nil {
		t.Fatal(err)
	}
	old := sign(oldKey, "bob", "L", 7, nil)
	if !rotated.verify("bob", "L", 7, nil, old) || dropped.verify("bob", "L", 7, nil, old) {
		t.Fatal("a checkpoint of the previous secret: accepted only while the secret is listed")
	}
	if got := rotated.checkpoint(framework.Principal{UserID: "bob"}, "L", 7).Sig; got != sign(newKey, "bob", "L", 7, nil) {
		t.Fatalf("signed with %q, want the current secret's", got)
	}
	for _, c := range []struct{ user, space string }{{"bob", "M"}, {"bo", "bL"}, {"cat", "L"}} {
		if rotated.verify(c.user, c.space, 7, nil, old) {
			t.Errorf("bob's signature verifies for %+v", c)
		}
	}
	// A listing's bound is signed: another bound, or none, does not verify.
	upto, other := int64(9), int64(10)
	listing := sign(newKey, "bob", "L", 7, &upto)
	if !rotated.verify("bob", "L", 7, &upto, listing) || rotated.verify("bob", "L", 7, &other, listing) || rotated.verify("bob", "L", 7, nil, listing) {
		t.Error("the listing's bound is not bound by its signature")
	}
	for _, cfg := range []Config{
		{CheckpointSecret: []byte("short")},
		{CheckpointSecret: newKey, PreviousCheckpointSecrets: [][]byte{[]byte("short")}},
		{PreviousCheckpointSecrets: [][]byte{oldKey}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}

func TestRefusedHeader(t *testing.T) {
	t.Parallel()
	h := refusedHeader([]Refusal{{ID: "a", Status: "forbidden", Errors: []framework.FieldError{{Path: "/space", Message: "é😀 reader"}}}})
	for _, r := range h {
		if r > 0x7e || r < 0x20 {
			t.Fatalf("header not ASCII: %q", h)
		}
	}
	var back []Refusal
	if err := json.Unmarshal([]byte(h), &back); err != nil || back[0].Errors[0].Message != "é😀 reader" {
		t.Fatalf("decoded %v, %v", back, err)
	}
	many := make([]Refusal, 500)
	for i := range many {
		many[i] = Refusal{ID: strings.Repeat("x", 60), Status: "rejected", Errors: []framework.FieldError{
			{Path: "/data/title", Message: strings.Repeat("m", 300)}, {Path: "/a"}, {Path: "/b"}, {Path: "/c"}}}
	}
	h = refusedHeader(many)
	if len(h) > MaxRefusedHeader || json.Unmarshal([]byte(h), &back) != nil || len(back) == 0 || len(back[0].Errors) != 3 || len(back[0].Errors[0].Message) != 200 {
		t.Fatalf("capped header: %d bytes, %d rows", len(h), len(back))
	}
}
