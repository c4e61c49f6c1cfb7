package watermelon

import (
	_ "embed"

	"github.com/ferrysync/ferry/framework"
	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the plugin's routes,
// relative to the sync mount point.
func (p *Plugin) OpenAPI() (*openapi3.T, error) { return framework.ParseOpenAPIFragment(openAPI) }
