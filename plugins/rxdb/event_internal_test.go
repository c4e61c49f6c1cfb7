package rxdb

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
)

// TestEventChecksWhatItReads: when the store holds more than the commits
// announced (a commit whose after-commit hook has not run yet, or a
// tombstone that kept more data than its commit carried), the event is
// "RESYNC" too, and the stream reads no more documents than announced
// plus one.
func TestEventChecksWhatItReads(t *testing.T) {
	t.Parallel()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"task.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	p, err := New(Config{Collections: map[string]string{"tasks": "data.Task"}, MaxEventDocuments: 10, MaxEventBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(p)
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ann := framework.Principal{UserID: "ann"}
	push := func(id, title string) {
		t.Helper()
		data, _ := json.Marshal(map[string]string{"title": title})
		res, err := app.Push(ctx, ann, []*framework.Change{{Model: "data.Task", UID: id, ModifyAt: framework.Time{Time: time.Now().UTC()}, Data: data}})
		if err != nil || res[0].Status != framework.StatusApplied {
			t.Fatalf("push: %v %+v", err, res)
		}
	}
	push("a", "small")
	push("b", "small")
	for _, c := range []struct {
		name string
		seq  int64
		pend pending
		want string // "RESYNC", "" for nothing, or the documents' ids
	}{
		{"as announced", 0, pending{docs: 2, bytes: 100}, "a,b"},
		{"fewer announced than stored", 0, pending{docs: 1, bytes: 50}, "RESYNC"},
		{"nothing new", 2, pending{docs: 1, bytes: 50}, ""},
		{"too many announced", 0, pending{docs: 11, bytes: 100}, "RESYNC"},
		{"too large announced", 0, pending{docs: 2, bytes: 1001}, "RESYNC"},
	} {
		ev, next, err := p.event(ctx, ann, "data.Task", "", c.seq, c.pend)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if next != 2 {
			t.Errorf("%s: next position %d, want 2", c.name, next)
		}
		if got := eventIDs(t, ev); got != c.want {
			t.Errorf("%s: event %q, want %q", c.name, got, c.want)
		}
	}
	// A record larger than announced (the store holds 2 KB, the commit
	// said 100 bytes).
	push("c", strings.Repeat("x", 2000))
	ev, next, err := p.event(ctx, ann, "data.Task", "", 2, pending{docs: 1, bytes: 100})
	if err != nil || eventIDs(t, ev) != "RESYNC" || next != 3 {
		t.Fatalf("a record larger than announced: %.100q at %d, %v", ev, next, err)
	}
}

func eventIDs(t *testing.T, ev []byte) string {
	t.Helper()
	if ev == nil {
		return ""
	}
	data, ok := strings.CutPrefix(string(ev), "data: ")
	if !ok || !strings.HasSuffix(data, "\n\n") {
		t.Fatalf("not an event: %q", ev)
	}
	if data == "\"RESYNC\"\n\n" {
		return "RESYNC"
	}
	var b Batch
	if err := json.Unmarshal([]byte(data), &b); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(b.Documents))
	for i, d := range b.Documents {
		var id string
		_ = json.Unmarshal(d["id"], &id)
		ids[i] = id
	}
	return strings.Join(ids, ",")
}
