package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/metrics"
	"github.com/ferrysync/ferry/plugins/requestid"
	"github.com/gin-gonic/gin"
)

// Example attaches the plugin, measures every request with its
// middleware, serves /metrics, pushes a note, and reads the push
// counters back from a scrape.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	app, err := framework.New(framework.Config{DB: db,
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object","required":["title"]}`)}}})
	if err != nil {
		panic(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"})
	// A real app uses an auth plugin such as jwtauth; this one trusts everyone as ann.
	app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
		return framework.Principal{UserID: "ann"}, nil
	}))
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		panic(err)
	}
	app.MustUse(m)
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}

	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	router.Use(requestid.Middleware(), m.Middleware())
	app.Mount(router.Group("/sync"))
	router.GET("/metrics", gin.WrapH(m.Handler())) // or on a private listener
	srv := httptest.NewServer(router)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/sync/push", "application/json", strings.NewReader(`{"changes":[
		{"model":"data.Note","uid":"n1","modify_at":"2026-06-01T10:00:00Z","data":{"title":"hello"}},
		{"model":"data.Note","uid":"n2","modify_at":"2026-06-01T10:00:00Z","data":{}}]}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "ferry_push_") {
			fmt.Println(l)
		}
	}
	// Output:
	// ferry_push_changes_total{model="data.Note",status="applied"} 1
	// ferry_push_changes_total{model="data.Note",status="rejected"} 1
	// ferry_push_contention_retries_total 0
	// ferry_push_malformed_changes_total 0
	// ferry_push_rejections_total{code="invalid",model="data.Note"} 1
}
