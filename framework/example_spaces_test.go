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
	"github.com/ferrysync/ferry/models"
)

// ExampleConfig_spaces shares a list between two users through a space,
// pulls one list's tasks by a subscription, and revokes the share.
func ExampleConfig_spaces() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	schemas := fstest.MapFS{"task.json": {Data: []byte(`{"type":"object","required":["title"]}`)}}
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas, Spaces: true})
	if err != nil {
		panic(err)
	}
	app.MustRegisterSchema("app.Task", framework.ModelOptions{Schema: "task.json"})
	app.MustSubscribe(framework.Subscription{Name: "tasks_of_list", Model: "app.Task", Params: []string{"list"},
		Match: framework.FieldEquals("list", "list")})
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}

	ann, bob := framework.Principal{UserID: "ann"}, framework.Principal{UserID: "bob"}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	change := func(model, uid, data string) *framework.Change {
		at = at.Add(time.Second)
		return &framework.Change{Space: "family", Model: model, UID: uid, ModifyAt: framework.Time{Time: at}, Data: json.RawMessage(data)}
	}
	res, _ := app.Push(ctx, ann, []*framework.Change{
		change(framework.SpaceModel, "family", `{"name":"Family"}`), // creates the space: ann is its admin
		change("app.Task", "milk", `{"title":"Milk","list":"shopping"}`),
		change("app.Task", "mow", `{"title":"Mow the lawn","list":"garden"}`),
		change(framework.MemberModel, "bob", `{"role":"writer"}`),
	})
	for _, r := range res {
		fmt.Println(r.Model, r.UID, r.Status)
	}

	page, _ := app.Pull(ctx, bob, framework.PullRequest{Subscriptions: []string{"tasks_of_list(shopping)"}})
	for _, r := range page.Changes {
		fmt.Println("bob's shopping list:", r.UID, "in", r.Space)
	}

	all, _ := app.Pull(ctx, bob, framework.PullRequest{})
	revoke := change(framework.MemberModel, "bob", "null")
	revoke.Data, revoke.IsDeleted = nil, true
	app.Push(ctx, ann, []*framework.Change{revoke})
	after, _ := app.Pull(ctx, bob, framework.PullRequest{Cursor: all.Cursor})
	fmt.Println("removed:", after.Removed, "records:", len(after.Changes))
	// Output:
	// ferry.Space family applied
	// app.Task milk applied
	// app.Task mow applied
	// ferry.Member bob applied
	// bob's shopping list: milk in family
	// removed: [family] records: 0
}
