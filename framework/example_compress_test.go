package framework_test

import (
	"bytes"
	"compress/gzip"
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
	"github.com/gin-gonic/gin"
)

// ExampleCompression mounts the protocol behind Compression: a client
// that sends its push gzip-compressed and accepts gzip gets its answer
// compressed, and every answer says which request encodings the server
// takes.
func ExampleCompression() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	app, err := framework.New(framework.Config{DB: db, Schemas: fstest.MapFS{"todo.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		panic(err)
	}
	app.MustRegisterSchema("app.Todo", framework.ModelOptions{Schema: "todo.json"})
	app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
		return framework.Principal{UserID: "ann"}, nil
	}))
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	compress, err := framework.Compression(framework.CompressionOptions{})
	if err != nil {
		panic(err)
	}
	router := gin.New()
	app.Mount(router.Group("/sync", compress))

	var changes []string
	for i := range 50 {
		changes = append(changes, fmt.Sprintf(`{"model":"app.Todo","uid":"t%d","modify_at":"2026-11-25T10:00:00Z","data":{"text":"buy milk"}}`, i))
	}
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	io.WriteString(zw, `{"device_id":"phone","changes":[`+strings.Join(changes, ",")+`]}`)
	zw.Close()
	req := httptest.NewRequest("POST", "/sync/push", &body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, req)
	zr, _ := gzip.NewReader(rec.Body)
	answer, _ := io.ReadAll(zr)
	fmt.Println(rec.Code, rec.Header().Get("Content-Encoding"), rec.Header().Get("Accept-Encoding"))
	fmt.Println(strings.Count(string(answer), `"status":"applied"`), "applied")
	// Output:
	// 200 gzip gzip, zstd
	// 50 applied
}
