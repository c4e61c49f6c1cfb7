package adapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/adapter"
	"github.com/ferrysync/ferry/models"
)

// Example is the core of an adapter for a made-up protocol whose clients
// push flat documents ({"id", fields…, "_rev"}) without times: each
// document becomes a change stamped with the receive time, the push
// applies them, and the refused ones are answered with the server's
// state (absent: the record does not exist). A real adapter is a plugin
// that does this in a route handler (see plugins/rxdb).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	schemas := fstest.MapFS{"task.json": {Data: []byte(`{"type":"object","required":["title"]}`)}}
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas})
	if err != nil {
		panic(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	ann := framework.Principal{UserID: "ann"}

	// What framework.ReadJSONBodyWithin decoded from the client's body.
	docs := []any{
		map[string]any{"id": "t1", "title": "Buy milk", "_rev": "1"},
		map[string]any{"id": "t2", "_rev": "1"}, // no title: refused
	}
	now := adapter.Now(app)
	changes := make([]*framework.Change, len(docs))
	for i, d := range docs {
		id, data, msg := adapter.Split(d, "_rev")
		if msg != "" {
			panic(msg) // a real adapter answers 400 with it
		}
		changes[i] = &framework.Change{Model: "data.Task", UID: id, ModifyAt: now, Data: data}
	}
	results, err := app.PushWith(ctx, ann, changes, framework.PushOptions{})
	if err != nil {
		panic(err)
	}
	var refused []adapter.Ref
	for _, res := range results {
		switch res.Status {
		case framework.StatusApplied:
			doc, _ := adapter.Flatten(res.Record)
			out, _ := json.Marshal(doc)
			fmt.Println("stored", string(out))
		case framework.StatusRejected, framework.StatusForbidden:
			fmt.Println("refused", res.UID, res.Errors[0].Path)
			refused = append(refused, adapter.Ref{Model: res.Model, UID: res.UID})
		}
	}
	state, err := adapter.ServerState(ctx, app, ann, refused)
	if err != nil {
		panic(err)
	}
	for _, r := range refused {
		_, held := state[r]
		fmt.Println(r.UID, "held by the server:", held)
	}
	// Output:
	// stored {"id":"t1","title":"Buy milk"}
	// refused t2 /data
	// t2 held by the server: false
}

// ExampleFieldTimes derives a change's field times for a model that
// merges field by field, from an RxDB-style pair of states: the fields
// that differ from the assumed state are the device's edits (at the
// change's modify_at), the others are named at the epoch, so they never
// win against the server's.
func ExampleFieldTimes() {
	assumed := json.RawMessage(`{"title":"Plan","body":"draft","tags":"work"}`)
	next := json.RawMessage(`{"title":"Plan","body":"final"}`)
	edited, _ := adapter.EditedFields(assumed, next)
	at := framework.Time{Time: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	times := adapter.FieldTimes(next, edited, at)
	fmt.Println("edited:", edited)
	for _, f := range []string{"body", "tags", "title"} {
		if t, ok := times[f]; ok {
			fmt.Println(f, t.Format(time.RFC3339))
		} else {
			fmt.Println(f, "at the change's modify_at")
		}
	}
	// Output:
	// edited: [body tags]
	// body at the change's modify_at
	// tags 2026-05-01T09:00:00Z
	// title 1970-01-01T00:00:00Z
}
