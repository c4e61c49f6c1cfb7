package synctest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// The suite holds for a bare App mounted where an embedding application
// puts it, on both stores: it needs nothing of the example app.
func TestRunConformanceOnABareApp(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Schemas: fstest.MapFS{
			"note.json":    {Data: []byte(`{"type":"object","required":["title"],"properties":{"title":{"type":"string","minLength":1,"maxLength":100}}}`)},
			"profile.json": {Data: []byte(`{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}`)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("app.Note", framework.ModelOptions{Schema: "note.json"})
		app.MustRegisterSchema("app.Profile", framework.ModelOptions{Schema: "profile.json", SelfOwned: true})
		// A token is "token-" and the id of a user NewUser made.
		var mu sync.Mutex
		known := map[string]bool{}
		app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
			id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer token-")
			mu.Lock()
			defer mu.Unlock()
			if !ok || !known[id] {
				return framework.Principal{}, framework.ErrUnauthenticated
			}
			return framework.Principal{UserID: id}, nil
		}))
		if err := app.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		gin.SetMode(gin.TestMode)
		engine := gin.New()
		framework.UseProtocolErrors(engine)
		app.Mount(engine.Group("/api/v1/sync"))

		users := 0
		synctest.RunConformance(t, synctest.ConformanceTarget{
			Handler: engine,
			Mount:   "/api/v1/sync",
			NewUser: func(t *testing.T) synctest.User {
				mu.Lock()
				defer mu.Unlock()
				users++
				id := fmt.Sprintf("user%d", users)
				known[id] = true
				return synctest.User{ID: id, Token: "token-" + id}
			},
			Owned: synctest.Model{
				Name: "app.Note",
				Data: func(_ synctest.User, n int) map[string]any { return map[string]any{"title": fmt.Sprint("note ", n)} },
				Invalid: []synctest.InvalidData{
					{Data: map[string]any{"title": ""}, Paths: []string{"/data/title"}},
					{Data: map[string]any{"title": 7}, Paths: []string{"/data/title"}},
				},
			},
			SelfOwned: synctest.Model{
				Name: "app.Profile",
				Data: func(u synctest.User, n int) map[string]any { return map[string]any{"name": fmt.Sprint(u.ID, " ", n)} },
			},
		})
	})
}
