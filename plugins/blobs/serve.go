package blobs

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ferrysync/ferry/framework"
	"github.com/gin-gonic/gin"
)

// serve answers HEAD and GET /blobs/{sha256} ("sha256:<hex>" or the hex
// alone): the bytes, with Range, to a caller who holds the blob or reads a
// shared space that does; 404 not_found to everyone else, as for a blob
// that does not exist.
func (p *Plugin) serve(c *gin.Context) error {
	h := strings.TrimPrefix(c.Param("hash"), HashPrefix)
	if !validHex(h) {
		return framework.Invalid("hash", "a blob is named sha256:<64 lowercase hex digits>")
	}
	pr, _ := framework.PrincipalFrom(c.Request.Context())
	// Held by the caller, or by a shared space the caller reads.
	scopes, err := p.app.ReadableScopes(c.Request.Context(), pr)
	if err != nil {
		return err
	}
	hd, err := heldIn(c.Request.Context(), p.db, scopes, h)
	if err != nil {
		return err
	}
	if hd == nil {
		return framework.NewError(framework.CodeNotFound, "no such blob")
	}
	b, err := p.store.Open(c.Request.Context(), h)
	if errors.Is(err, ErrNotFound) {
		p.log.Error("blobs: a held blob is not in the store", "hash", h)
		return framework.NewError(framework.CodeNotFound, "no such blob")
	}
	if err != nil {
		return err
	}
	defer b.Close()
	hd2 := c.Writer.Header()
	ctype := hd.Type
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hd2.Set("Content-Type", ctype)
	hd2.Set("ETag", `"`+HashPrefix+h+`"`)
	// The bytes under a hash never change; private, as the answer
	// depends on who asks.
	hd2.Set("Cache-Control", "private, max-age=31536000, immutable")
	// The type is the uploader's word: never sniffed, never run as a
	// page of this origin.
	hd2.Set("X-Content-Type-Options", "nosniff")
	hd2.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	http.ServeContent(c.Writer, c.Request, "", b.ModTime(), b)
	return nil
}
