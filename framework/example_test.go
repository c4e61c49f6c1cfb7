package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/models"
)

// Example registers a schema-only model with a server-wins policy and an
// after-commit hook, then pushes and pulls through the App's Go API (the
// HTTP routes call the same methods).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	schemas := fstest.MapFS{"todo.json": {Data: []byte(`{"type":"object","required":["text"]}`)}}
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas})
	if err != nil {
		panic(err)
	}
	serverWins := framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
		return framework.Resolution{Outcome: framework.KeepStored}, nil
	})
	app.MustRegisterSchema("app.Todo", framework.ModelOptions{Schema: "todo.json", Policy: serverWins})
	app.OnCommit().Bind(&hook.Handler[*framework.CommitEvent]{ID: "example.log", Func: func(e *framework.CommitEvent) error {
		fmt.Printf("committed %d record(s) for %s\n", len(e.Records), e.Principal.UserID)
		return e.Next()
	}})
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}

	ann := framework.Principal{UserID: "ann"}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	change := func(text string, at time.Time) *framework.Change {
		return &framework.Change{Model: "app.Todo", UID: "t1", ModifyAt: framework.Time{Time: at},
			Data: json.RawMessage(`{"text":"` + text + `"}`)}
	}
	res, _ := app.Push(ctx, ann, []*framework.Change{change("buy milk", at)})
	fmt.Println(res[0].Status, res[0].Record.Version)
	res, _ = app.Push(ctx, ann, []*framework.Change{change("buy oat milk", at.Add(time.Hour))})
	fmt.Println(res[0].Status, string(res[0].Record.Data))

	page, _ := app.Pull(ctx, ann, framework.PullRequest{})
	fmt.Println(len(page.Changes), page.HasMore)
	// Output:
	// committed 1 record(s) for ann
	// applied 1
	// stale {"text":"buy milk"}
	// 1 false
}

// ExamplePolicyFunc is a custom conflict policy: when two devices edit a
// note, keep the incoming change but with the longer of the two titles.
// The merged record is validated and stored like any change, and the
// merge is idempotent, so a retried change answers applied with the same
// version.
func ExamplePolicyFunc() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	schemas := fstest.MapFS{"note.json": {Data: []byte(`{"type":"object","required":["title"],"properties":{"title":{"type":"string"},"body":{"type":"string"}}}`)}}
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas})
	if err != nil {
		panic(err)
	}
	longerTitle := framework.PolicyFunc(func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
		var stored, incoming map[string]any
		if err := json.Unmarshal(c.Stored.Data, &stored); err != nil {
			return framework.Resolution{}, err
		}
		if err := json.Unmarshal(c.Incoming.Data, &incoming); err != nil {
			return framework.Resolution{}, err
		}
		if s, _ := stored["title"].(string); len(s) > len(fmt.Sprint(incoming["title"])) {
			incoming["title"] = s
		}
		merged, err := json.Marshal(incoming)
		return framework.Resolution{Outcome: framework.Merge, Data: merged}, err
	})
	app.MustRegisterSchema("app.Note", framework.ModelOptions{Schema: "note.json", Policy: longerTitle})
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}

	ann := framework.Principal{UserID: "ann"}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	note := func(title, body string, at time.Time) *framework.Change {
		return &framework.Change{Model: "app.Note", UID: "n1", ModifyAt: framework.Time{Time: at},
			Data: json.RawMessage(`{"title":"` + title + `","body":"` + body + `"}`)}
	}
	show := func(res []framework.Result) {
		r := res[0]
		fmt.Println(r.Status, r.Record.Version, string(r.Record.Data))
	}
	res, _ := app.Push(ctx, ann, []*framework.Change{note("Groceries for the weekend", "milk", at)})
	show(res)
	edit := note("Groceries", "milk, eggs", at.Add(time.Minute))
	res, _ = app.Push(ctx, ann, []*framework.Change{edit})
	show(res)
	res, _ = app.Push(ctx, ann, []*framework.Change{edit}) // a retry
	show(res)
	// Output:
	// applied 1 {"title":"Groceries for the weekend","body":"milk"}
	// applied 2 {"body":"milk, eggs","title":"Groceries for the weekend"}
	// applied 2 {"body":"milk, eggs","title":"Groceries for the weekend"}
}
