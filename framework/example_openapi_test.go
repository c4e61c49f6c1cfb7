package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// pingPlugin serves GET /ping under the sync mount point and describes
// it, referring to the core's error responses.
type pingPlugin struct{}

func (pingPlugin) Name() string                   { return "ping" }
func (pingPlugin) Setup(app *framework.App) error { return nil }
func (pingPlugin) MountRoutes(r gin.IRouter) {
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"pong": true}) })
}

// OpenAPI implements framework.OpenAPIDescriber; a real plugin embeds
// the JSON (//go:embed openapi.json).
func (pingPlugin) OpenAPI() (*openapi3.T, error) {
	return framework.ParseOpenAPIFragment([]byte(`{"paths": {"/ping": {"get": {
		"operationId": "ping",
		"responses": {
			"200": {"description": "pong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pong"}}}},
			"401": {"$ref": "#/components/responses/Unauthenticated"}}}}},
		"components": {"schemas": {"Pong": {"type": "object", "required": ["pong"], "properties": {"pong": {"type": "boolean"}}}}}}`), "/ping", "/ping")
}

// ExampleOpenAPIDescriber composes the App's description: the core's
// routes and the plugin's, under the mount point the App is served at
// (GET /sync/openapi.json serves the same bytes).
func ExampleOpenAPIDescriber() {
	ctx := context.Background()
	db, err := models.OpenSQLite(ctx, ":memory:") // describing reads no data
	if err != nil {
		panic(err)
	}
	defer db.Close()
	app, err := framework.New(framework.Config{DB: db})
	if err == nil {
		err = app.Use(pingPlugin{})
	}
	if err != nil {
		panic(err)
	}

	b, err := app.OpenAPI(ctx, "/sync")
	if err != nil {
		panic(err)
	}
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		panic(err)
	}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	fmt.Println(doc.OpenAPI)
	for _, p := range paths {
		fmt.Println(p)
	}
	// Output:
	// 3.1.0
	// /sync/
	// /sync/openapi.json
	// /sync/ping
	// /sync/pull
	// /sync/push
}
