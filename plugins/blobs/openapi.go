package blobs

import (
	_ "embed"

	"github.com/ferrysync/ferry/framework"
	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the blob and tus
// routes, relative to the sync mount point.
func (p *Plugin) OpenAPI() (*openapi3.T, error) {
	doc, err := framework.ParseOpenAPIFragment(openAPI)
	if err != nil {
		return nil, err
	}
	// tus clients create uploads at the endpoint with or without its
	// trailing slash; both are routes, each its own operation.
	create := *doc.Paths.Value("/blobs/uploads").Post
	create.OperationID += "Slash"
	doc.Paths.Set("/blobs/uploads/", &openapi3.PathItem{Post: &create})
	return doc, nil
}
