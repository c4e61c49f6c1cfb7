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
