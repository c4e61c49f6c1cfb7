package watermelon_test

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
	"github.com/ferrysync/ferry/plugins/watermelon"
	"github.com/gin-gonic/gin"
)

// Example exposes a model as WatermelonDB table "tasks", then pushes a
// record as WatermelonDB's synchronize() would and pulls it back.
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

	wm, err := watermelon.New(watermelon.Config{Tables: map[string]string{"tasks": "data.Task"}})
	if err != nil {
		panic(err)
	}
	app.MustUse(wm)
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	app.Mount(router.Group("/sync")) // GET and POST /sync/watermelon
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
	call("GET", "/sync/watermelon?last_pulled_at=null&schema_version=1&migration=null", "")
	call("POST", "/sync/watermelon?last_pulled_at=1",
		`{"tasks":{"created":[{"id":"t1","title":"Buy milk","_status":"created","_changed":""}],"updated":[],"deleted":[]}}`)
	call("GET", "/sync/watermelon?last_pulled_at=1&schema_version=1&migration=null", "")
	// Output:
	// 200 {"changes":{"tasks":{"created":[],"updated":[],"deleted":[]}},"timestamp":1,"has_more":false}
	// 200 {"ok":true,"rejected":[]}
	// 200 {"changes":{"tasks":{"created":[],"updated":[{"id":"t1","title":"Buy milk"}],"deleted":[]}},"timestamp":2,"has_more":false}
}
