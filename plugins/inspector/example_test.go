package inspector_test

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
	"github.com/ferrysync/ferry/plugins/inspector"
	"github.com/gin-gonic/gin"
)

// Example attaches the inspector, pushes a note from a device, and reads
// the user's page with the admin credential (and without it).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	app, err := framework.New(framework.Config{DB: db, Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		panic(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"})
	// A real app uses an auth plugin such as jwtauth; this one trusts everyone as ann.
	app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
		return framework.Principal{UserID: "ann"}, nil
	}))
	in, err := inspector.New(inspector.Config{Token: "a-long-random-admin-token"})
	if err != nil {
		panic(err)
	}
	app.MustUse(in)
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	app.MountRoot(router) // GET /inspector/…
	app.Mount(router.Group("/sync"))
	srv := httptest.NewServer(router)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/sync/push", "application/json", strings.NewReader(`{"device_id":"ann-phone","changes":[
		{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"Buy milk"}}]}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	for _, password := range []string{"a-long-random-admin-token", "guess"} {
		req, _ := http.NewRequest("GET", srv.URL+"/inspector/user?id=ann", nil)
		req.SetBasicAuth("admin", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.Contains(string(page), "Buy milk"), strings.Contains(string(page), `data-device="ann-phone"`))
	}
	// Output:
	// 200 true true
	// 401 false false
}
