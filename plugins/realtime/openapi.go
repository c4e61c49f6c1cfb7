package realtime

import (
	_ "embed"

	"github.com/ferrysync/ferry/framework"
	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the stream and its
// token, at [Config].Path (they are root routes, so the paths are
// absolute).
func (p *Plugin) OpenAPI() (*openapi3.T, error) {
	doc, err := framework.ParseOpenAPIFragment(openAPI)
	if err != nil {
		return nil, err
	}
	stream, token := doc.Paths.Value("/stream"), doc.Paths.Value("/stream/token")
	doc.Paths = openapi3.NewPaths(
		openapi3.WithPath(p.cfg.Path, stream),
		openapi3.WithPath(p.cfg.Path+"/token", token))
	return doc, nil
}
