package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// routePlugin serves GET /{path} under the sync mount point and, when
// fragment is set, describes it.
type routePlugin struct {
	name, path string
	status     int
	fragment   string
}

func (p *routePlugin) Name() string                   { return p.name }
func (p *routePlugin) Setup(app *framework.App) error { return nil }
func (p *routePlugin) MountRoutes(r gin.IRouter) {
	r.GET(p.path, func(c *gin.Context) { c.Status(p.status) })
}

// describedPlugin is a routePlugin with a description.
type describedPlugin struct{ routePlugin }

func (p *describedPlugin) OpenAPI() (*openapi3.T, error) {
	return framework.ParseOpenAPIFragment([]byte(p.fragment), "", "")
}

// helloFragment describes GET /hello with the core's error responses.
const helloFragment = `{"paths": {"/hello": {"get": {"operationId": "hello", "responses": {
	"201": {"description": "hello"},
	"401": {"$ref": "#/components/responses/Unauthenticated"}}}}},
	"components": {"schemas": {"Hello": {"type": "string"}}}}`

func openAPIServer(t *testing.T, mount string, plugins ...framework.Plugin) (*gin.Engine, string) {
	t.Helper()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Schemas: testSchemas})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	app.MustUse(plugins...)
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	app.SetAuthenticator(bearerUser)
	mw, err := framework.Compression(framework.CompressionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	framework.UseProtocolErrors(engine)
	app.Mount(engine.Group(mount, mw))
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return engine, srv.URL
}

func TestOpenAPIComposes(t *testing.T) {
	t.Parallel()
	hello := &describedPlugin{routePlugin{name: "hello", path: "/hello", status: http.StatusCreated, fragment: helloFragment}}
	silent := &routePlugin{name: "silent", path: "/secret", status: http.StatusOK}
	engine, url := openAPIServer(t, "/api/v1", hello, silent)
	doc := synctest.LoadOpenAPI(t, url, "/api/v1")

	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	for _, want := range []string{"/api/v1/", "/api/v1/push", "/api/v1/pull", "/api/v1/openapi.json", "/api/v1/hello"} {
		if doc.Paths.Value(want) == nil {
			t.Errorf("no path %s in %v", want, paths)
		}
	}
	// The protocol's JSON Schemas are in it, as the handlers check them.
	for name, req := range map[string][]string{"ProtocolChange": {"model", "uid", "modify_at"}, "ProtocolPush": {"changes"}} {
		s := doc.Components.Schemas[name]
		if s == nil || !reflect.DeepEqual(s.Value.Required, req) {
			t.Errorf("component %s = %+v, want the protocol schema requiring %v", name, s, req)
		}
	}
	if doc.Components.Schemas["Hello"] == nil {
		t.Error("the plugin's component is missing")
	}
	got := synctest.UndescribedRoutes(doc, engine.Routes(), "/api/v1")
	if want := []string{"GET /api/v1/secret"}; !reflect.DeepEqual(got, want) {
		t.Errorf("undescribed routes = %v, want %v", got, want)
	}

	// The checker passes what fits and fails what does not: the
	// described 201, and a 200 the description does not list.
	ok := &recorder{TB: t}
	c := synctest.NewOpenAPIChecker(ok, doc, nil)
	get := func(path string) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer user:ann")
		resp, err := c.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/api/v1/hello")
	get("/api/v1/pull?limit=3")
	if len(ok.errs) > 0 {
		t.Errorf("described answers failed the check: %v", ok.errs)
	}
	hello.status = http.StatusOK
	get("/api/v1/hello")
	get("/api/v1/secret")
	if len(ok.errs) != 2 || !strings.Contains(ok.errs[0], "status") || !strings.Contains(ok.errs[1], "not described") {
		t.Errorf("checker errors = %q, want an undescribed status and an undescribed route", ok.errs)
	}
	if n := c.Seen()["GET /api/v1/pull 200"]; n != 1 {
		t.Errorf("seen pull 200 %d times, want 1: %v", n, c.Seen())
	}
}

// recorder keeps a checker's test failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(strings.SplitN(fmt.Sprintf(format, args...), "\n", 2)[0]))
}

func TestOpenAPIRefusesBadFragments(t *testing.T) {
	t.Parallel()
	for name, frag := range map[string]string{
		"component clash": `{"components": {"schemas": {"Record": {"type": "string"}}}}`,
		"path clash":      `{"paths": {"/push": {"get": {"responses": {"200": {"description": "x"}}}}}}`,
		"dangling ref":    `{"paths": {"/hello": {"get": {"responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}}`,
		"not openapi":     `{"paths": {"/hello": {"get": {"responses": {"200": {"description": "x"}}, "parameters": [{"name": "q", "in": "nowhere"}]}}}}`,
		"not json":        `{"paths": `,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bad := &describedPlugin{routePlugin{name: "bad", path: "/hello", status: 200, fragment: frag}}
			_, url := openAPIServer(t, "/sync", bad)
			resp, err := http.Get(url + "/sync/openapi.json")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 500 || body.Error.Code != "internal" || body.Error.Message != "internal error" {
				t.Errorf("status %d, %+v (%v); want 500 internal, nothing told", resp.StatusCode, body, err)
			}
		})
	}
}

// TestCompressionKeepsBodylessStatus: a handler behind Compression that
// sets a status and writes no body (tus answers 201 and 204 so) is
// answered that status, also to a client that accepts gzip.
func TestCompressionKeepsBodylessStatus(t *testing.T) {
	t.Parallel()
	hello := &routePlugin{name: "hello", path: "/hello", status: http.StatusCreated}
	_, url := openAPIServer(t, "/sync", hello)
	for _, enc := range []string{"", "gzip", "zstd"} {
		status, _, _ := rawDo(t, "GET", url+"/sync/hello", nil, map[string]string{"Accept-Encoding": enc})
		if status != http.StatusCreated {
			t.Errorf("Accept-Encoding %q: status %d, want 201", enc, status)
		}
	}
}

// TestParseOpenAPIFragmentRebases: a plugin configured at another path
// is described there; a path that only starts with the same letters is not
// moved.
func TestParseOpenAPIFragmentRebases(t *testing.T) {
	t.Parallel()
	op := `{"get": {"responses": {"200": {"description": "x"}}}}`
	frag := `{"paths": {"/melon": ` + op + `, "/melon/{id}": ` + op + `, "/melonade": ` + op + `}}`
	doc, err := framework.ParseOpenAPIFragment([]byte(frag), "/melon", "/api/wm")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := range doc.Paths.Map() {
		got = append(got, p)
	}
	sort.Strings(got)
	if want := []string{"/api/wm", "/api/wm/{id}", "/melonade"}; !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
}
