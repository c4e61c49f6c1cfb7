package synctest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"
)

// LoadOpenAPI fetches the description a server serves at
// base+mount+"/openapi.json", loads it with kin-openapi and validates it
// as OpenAPI; any failure fails the test.
func LoadOpenAPI(t testing.TB, base, mount string) *openapi3.T {
	t.Helper()
	resp, err := http.Get(base + mount + "/openapi.json")
	if err != nil {
		t.Fatalf("get openapi.json: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get openapi.json: status %d, %v: %s", resp.StatusCode, err, b)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	return doc
}

// UndescribedRoutes returns the routes ("METHOD /path", sorted) among
// routes under mount that doc has no operation for: a route added
// without its description. gin's :param and *param are OpenAPI's
// {param}.
func UndescribedRoutes(doc *openapi3.T, routes gin.RoutesInfo, mount string) []string {
	var out []string
	for _, r := range routes {
		if r.Path != mount && !strings.HasPrefix(r.Path, strings.TrimSuffix(mount, "/")+"/") {
			continue
		}
		item := doc.Paths.Value(openAPIPath(r.Path))
		if item == nil || item.GetOperation(r.Method) == nil {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	sort.Strings(out)
	return out
}

// openAPIPath turns gin's /blobs/:hash into OpenAPI's /blobs/{hash}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// OpenAPIChecker is an [http.RoundTripper] that checks every request it
// sends and every answer it gets against an OpenAPI description with
// kin-openapi's openapi3filter: the route and method are described, the
// parameters and JSON body fit, the status is one the operation lists and
// a JSON answer fits its schema. Bodies of other media types (bytes, event
// streams) pass through unread. A mismatch fails the test.
type OpenAPIChecker struct {
	t    testing.TB
	base http.RoundTripper
	r    routers.Router
	mu   sync.Mutex
	seen map[string]int
}

// NewOpenAPIChecker returns a checker of doc sending through base
// (http.DefaultTransport when nil).
func NewOpenAPIChecker(t testing.TB, doc *openapi3.T, base http.RoundTripper) *OpenAPIChecker {
	t.Helper()
	if base == nil {
		base = http.DefaultTransport
	}
	r, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &OpenAPIChecker{t: t, base: base, r: r, seen: map[string]int{}}
}

// Client is an http.Client sending through the checker.
func (c *OpenAPIChecker) Client() *http.Client { return &http.Client{Transport: c} }

// Seen returns how many answers were checked per "METHOD /path {status}"
// (the described path), so a test can say which operations it covered.
func (c *OpenAPIChecker) Seen() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.seen)
}

// RoundTrip implements http.RoundTripper.
func (c *OpenAPIChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	c.t.Helper()
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	route, params, err := c.r.FindRoute(req)
	if err != nil {
		c.t.Errorf("openapi: %s %s is not described: %v", req.Method, req.URL.Path, err)
		return c.base.RoundTrip(req)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		ExcludeRequestBody:    !isJSON(req.Header.Get("Content-Type")),
		MultiError:            true,
	}
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
	// Tests send bad requests on purpose; the answer is what must fit.
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if reqErr != nil && resp.StatusCode < 400 {
		c.t.Errorf("openapi: %s %s: the request does not fit its description, yet was answered %d: %v", req.Method, req.URL, resp.StatusCode, reqErr)
	}
	var rbody []byte
	ropts := *opts
	ropts.ExcludeResponseBody = !isJSON(resp.Header.Get("Content-Type")) || req.Method == http.MethodHead
	if !ropts.ExcludeResponseBody {
		rbody, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(rbody))
	}
	in.Options = &ropts
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(rbody)), Options: &ropts}
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		c.t.Errorf("openapi: %s %s answered %d does not fit its description: %v\n%s", req.Method, req.URL, resp.StatusCode, err, rbody)
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %s %d", req.Method, route.Path, resp.StatusCode)]++
	c.mu.Unlock()
	return resp, nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
