package framework

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/ferrysync/ferry/schemas"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// coreOpenAPI describes the core routes (POST /, POST /push, GET /pull,
// GET /openapi.json), relative to the mount point.
//
//go:embed openapi.json
var coreOpenAPI []byte

// OpenAPIDescriber is an optional interface for plugins that serve
// routes: it returns the OpenAPI 3.1 description of them, a document
// whose paths and components [App.OpenAPI] merges into the App's. Paths
// of a [RouteMounter] are relative to the sync mount point ("/watermelon");
// those of a plugin that only mounts root routes are absolute. The
// fragment may refer to the core's components (#/components/schemas/Record,
// #/components/responses/Invalid, …); a component name the core or
// another plugin already uses is an error. It is called each time
// [App.OpenAPI] composes the description; GET {mount}/openapi.json does
// so once, at its first request.
type OpenAPIDescriber interface {
	OpenAPI() (*openapi3.T, error)
}

// openAPIProtocolSchemas are the files of [schemas.Protocol] the description
// embeds as components, so its request bodies are those the handlers
// check.
var openAPIProtocolSchemas = map[string]string{"ProtocolChange": "change.json", "ProtocolPush": "push.json", "ProtocolPull": "pull.json"}

// OpenAPI returns the description of the sync routes mounted at mount
// (such as "/sync"): the core's, with the protocol's JSON Schemas
// (schemas/protocol) as components, and those of every plugin that is an
// [OpenAPIDescriber], validated by kin-openapi. It is what GET
// {mount}/openapi.json serves.
func (a *App) OpenAPI(ctx context.Context, mount string) ([]byte, error) {
	mount = strings.TrimSuffix(mount, "/")
	doc, err := parseOpenAPI(coreOpenAPI)
	if err != nil {
		return nil, fmt.Errorf("framework: openapi: core: %w", err)
	}
	for name, file := range openAPIProtocolSchemas {
		s, err := protocolSchema(file)
		if err != nil {
			return nil, err
		}
		doc.Components.Schemas[name] = s
	}
	prefixPaths(doc, mount)
	for _, p := range a.Plugins() {
		d, ok := p.(OpenAPIDescriber)
		if !ok {
			continue
		}
		frag, err := d.OpenAPI()
		if err != nil {
			return nil, fmt.Errorf("framework: openapi: plugin %s: %w", p.Name(), err)
		}
		if _, ok := p.(RouteMounter); ok {
			prefixPaths(frag, mount)
		}
		if err := mergeOpenAPI(doc, frag); err != nil {
			return nil, fmt.Errorf("framework: openapi: plugin %s: %w", p.Name(), err)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("framework: openapi: %w", err)
	}
	// Load again from the bytes served, so that every $ref resolves
	// across fragments, and validate that.
	loaded, err := openapi3.NewLoader().LoadFromData(out)
	if err != nil {
		return nil, fmt.Errorf("framework: openapi: load: %w", err)
	}
	if err := loaded.Validate(ctx); err != nil {
		return nil, fmt.Errorf("framework: openapi: invalid: %w", err)
	}
	return out, nil
}

// parseOpenAPI decodes a description without resolving its references:
// a plugin's fragment refers to components only the whole document has.
func parseOpenAPI(b []byte) (*openapi3.T, error) {
	var doc openapi3.T
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// ParseOpenAPIFragment decodes a plugin's description (usually embedded
// JSON) for [OpenAPIDescriber.OpenAPI], leaving its references to the
// core's components unresolved. Paths at or under from (the plugin's
// default path, such as "/watermelon") are moved under to (the path it
// was configured with).
func ParseOpenAPIFragment(b []byte, from, to string) (*openapi3.T, error) {
	doc, err := parseOpenAPI(b)
	if err != nil {
		return nil, fmt.Errorf("framework: openapi fragment: %w", err)
	}
	if doc.Paths == nil || from == to {
		return doc, nil
	}
	old := doc.Paths.Map()
	doc.Paths = openapi3.NewPaths()
	for p, item := range old {
		if p == from || strings.HasPrefix(p, strings.TrimSuffix(from, "/")+"/") {
			p = to + p[len(from):]
		}
		doc.Paths.Set(p, item)
	}
	return doc, nil
}

func protocolSchema(file string) (*openapi3.SchemaRef, error) {
	b, err := fs.ReadFile(schemas.Protocol, file)
	if err != nil {
		return nil, fmt.Errorf("framework: openapi: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("framework: openapi: %s: %w", file, err)
	}
	// The document's dialect is 2020-12 already, and a $id would make
	// the schema a resource of its own with a mem:// base.
	delete(m, "$schema")
	delete(m, "$id")
	b, _ = json.Marshal(m)
	var s openapi3.Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("framework: openapi: %s: %w", file, err)
	}
	return openapi3.NewSchemaRef("", &s), nil
}

func prefixPaths(doc *openapi3.T, mount string) {
	if doc.Paths == nil || mount == "" {
		return
	}
	old := doc.Paths.Map()
	doc.Paths = openapi3.NewPaths()
	for p, item := range old {
		full := mount + p
		if p == "/" {
			full = mount + "/"
		}
		doc.Paths.Set(full, item)
	}
}

// mergeOpenAPI adds frag's paths and components to doc; a name both
// hold is an error that names it.
func mergeOpenAPI(doc, frag *openapi3.T) error {
	if frag.Paths != nil {
		for p, item := range frag.Paths.Map() {
			if doc.Paths.Value(p) != nil {
				return fmt.Errorf("path %s is described twice", p)
			}
			doc.Paths.Set(p, item)
		}
	}
	c := frag.Components
	if c == nil {
		return nil
	}
	for _, err := range []error{
		mergeMap("schema", &doc.Components.Schemas, c.Schemas),
		mergeMap("response", &doc.Components.Responses, c.Responses),
		mergeMap("parameter", &doc.Components.Parameters, c.Parameters),
		mergeMap("header", &doc.Components.Headers, c.Headers),
	} {
		if err != nil {
			return err
		}
	}
	if len(c.SecuritySchemes) > 0 {
		return fmt.Errorf("security schemes are the core's (bearer)")
	}
	return nil
}

func mergeMap[M ~map[string]V, V any](kind string, into *M, from M) error {
	if *into == nil {
		*into = M{}
	}
	keys := make([]string, 0, len(from))
	for k := range from {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := (*into)[k]; ok {
			return fmt.Errorf("component %s %q is described twice", kind, k)
		}
		(*into)[k] = from[k]
	}
	return nil
}

// openAPIHandler serves [App.OpenAPI] for mount, built at the first
// request (plugins are all set up by then) and kept.
func (a *App) openAPIHandler(mount string) gin.HandlerFunc {
	var once sync.Once
	var body []byte
	var err error
	return a.handle(func(c *gin.Context) error {
		once.Do(func() { body, err = a.OpenAPI(context.Background(), mount) })
		if err != nil {
			return err // internal: logged, and told as "internal error"
		}
		c.Data(http.StatusOK, "application/json", body)
		return nil
	})
}

// mountPath is the path r's routes are mounted under, "" for an engine
// or a router that does not say.
func mountPath(r gin.IRouter) string {
	if g, ok := r.(interface{ BasePath() string }); ok {
		if p := path.Clean(g.BasePath()); p != "/" {
			return p
		}
	}
	return ""
}
