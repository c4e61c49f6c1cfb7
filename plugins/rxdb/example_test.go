package rxdb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/gin-gonic/gin"
)

// Example exposes a model as RxDB collection "tasks", pushes a document,
// pushes a stale edit of it (answered with the server's document, a
// conflict), and pulls.
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
	// A real app uses an auth plugin such as jwtauth; this one trusts everyone as ann.
	app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
		return framework.Principal{UserID: "ann"}, nil
	}))

	rx, err := rxdb.New(rxdb.Config{Collections: map[string]string{"tasks": "data.Task"}})
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	app.MustUse(rx)
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	app.Mount(router.Group("/sync")) // /sync/rxdb/tasks/pull, /push, /pull/stream
	srv := httptest.NewServer(router)
	defer srv.Close()

	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, string(out))
	}
	call("POST", "/sync/rxdb/tasks/push", `[{"newDocumentState":{"id":"t1","title":"Buy milk","_deleted":false}}]`)
	call("POST", "/sync/rxdb/tasks/push", `[{"assumedMasterState":{"id":"t1","title":"Milk","_deleted":false},
		"newDocumentState":{"id":"t1","title":"Buy oat milk","_deleted":false}}]`)
	call("GET", "/sync/rxdb/tasks/pull?seq=0&limit=10", "")
	// Output:
	// 200 []
	// 200 [{"_deleted":false,"id":"t1","title":"Buy milk"}]
	// 200 {"documents":[{"_deleted":false,"id":"t1","title":"Buy milk"}],"checkpoint":{"seq":1}}
}
