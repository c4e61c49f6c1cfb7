package synctest_test

import (
	"fmt"
	"testing"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/gin-gonic/gin"
)

// An application that embeds Ferry under a mount point of its own runs
// the protocol's conformance suite from one of its tests, against the
// handler it serves (here in process; a URL runs it against a server
// started elsewhere). newApp stands for the application's own
// constructor, and signUp for however it makes users and their tokens.
func ExampleRunConformance() {
	var newApp func(t *testing.T) *framework.App                         // the application's, on a test store
	var signUp func(t *testing.T, app *framework.App) (id, token string) // the application's

	// In the application's sync_test.go:
	testSyncProtocol := func(t *testing.T) {
		app := newApp(t)
		engine := gin.New()
		framework.UseProtocolErrors(engine)
		app.Mount(engine.Group("/api/v1/sync"))

		synctest.RunConformance(t, synctest.ConformanceTarget{
			Handler: engine,
			Mount:   "/api/v1/sync",
			NewUser: func(t *testing.T) synctest.User {
				id, token := signUp(t, app)
				return synctest.User{ID: id, Token: token}
			},
			Owned: synctest.Model{
				Name: "app.Note",
				Data: func(_ synctest.User, n int) map[string]any {
					return map[string]any{"title": fmt.Sprint("note ", n)}
				},
				Invalid: []synctest.InvalidData{{Data: map[string]any{}, Paths: []string{"/data"}}},
			},
			SelfOwned: synctest.Model{
				Name: "app.Profile",
				Data: func(u synctest.User, n int) map[string]any {
					return map[string]any{"name": fmt.Sprint("user ", n)}
				},
			},
			MaxChanges: 500, // the app's framework.Config.MaxChanges
		})
	}
	_ = testSyncProtocol
}
