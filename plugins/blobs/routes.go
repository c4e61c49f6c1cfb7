package blobs

import (
	"bytes"
	_ "embed"
	"errors"
	"net/http"
	"path"
	"strings"

	"github.com/ferrysync/ferry/framework"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/tus/tusd/v2/pkg/handler"
)

// MountRoutes implements [framework.RouteMounter]: the tus upload routes
// at blobs/uploads/ and the blob routes at blobs/{sha256} under the
// sync group. It panics if tusd refuses the configuration (a setup
// mistake).
func (p *Plugin) MountRoutes(r gin.IRouter) {
	base := "/"
	if g, ok := r.(interface{ BasePath() string }); ok {
		base = g.BasePath()
	}
	uploads := strings.TrimSuffix(path.Join(base, "blobs/uploads"), "/") + "/"
	tus, err := p.tusHandler(uploads)
	if err != nil {
		panic("blobs: tusd handler: " + err.Error())
	}
	create := p.tusRoute(tus, func(w http.ResponseWriter, r *http.Request) {
		if !p.dedupeUpload(w, r, uploads) {
			tus.PostFile(w, r)
		}
	})
	r.POST("/blobs/uploads", create)
	r.POST("/blobs/uploads/", create)
	for method, fn := range map[string]http.HandlerFunc{
		http.MethodHead: tus.HeadFile, http.MethodPatch: tus.PatchFile, http.MethodDelete: tus.DelFile,
	} {
		r.Handle(method, "/blobs/uploads/:id", p.uploadRoute(tus, fn))
	}
	get := framework.HandlerFunc(p.log, p.serve)
	r.GET("/blobs/:hash", get)
	r.HEAD("/blobs/:hash", get)
}

// openAPI describes the routes; the tus creation route is described at
// /blobs/uploads only.
//
//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the blob and tus
// routes, relative to the sync mount point.
func (p *Plugin) OpenAPI() (*openapi3.T, error) {
	doc, err := framework.ParseOpenAPIFragment(openAPI, "/blobs", "/blobs")
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

// tusRoute runs fn through tusd's middleware (protocol version, method
// override, its headers) and rewrites tusd's plain-text error answers
// into the protocol's error shape.
func (p *Plugin) tusRoute(tus *handler.UnroutedHandler, fn http.HandlerFunc) gin.HandlerFunc {
	h := tus.Middleware(fn)
	return func(c *gin.Context) {
		ew := &errorWriter{ResponseWriter: c.Writer}
		h.ServeHTTP(ew, c.Request)
		if ew.status != 0 {
			// The status is tusd's (or ours): 460 and 413 quota_exceeded
			// are not the codes' usual statuses.
			c.AbortWithStatusJSON(ew.status, ew.protocolError(p).Body())
		}
	}
}

// uploadRoute serves one existing upload: only its owner sees it (others
// get 404, as for an upload that does not exist); a write marks it alive
// for the collector; a deletion removes its row.
func (p *Plugin) uploadRoute(tus *handler.UnroutedHandler, fn http.HandlerFunc) gin.HandlerFunc {
	return p.tusRoute(tus, func(w http.ResponseWriter, r *http.Request) {
		id := strings.Trim(r.PathValue("id"), "/")
		if id == "" {
			id = path.Base(r.URL.Path)
		}
		if strings.HasPrefix(id, dedupePrefix) {
			if err := p.dedupedUpload(w, r, id); err != nil {
				writeTusError(w, err)
			}
			return
		}
		pr, _ := framework.PrincipalFrom(r.Context())
		u, err := uploadOf(r.Context(), p.db, id, pr.UserID)
		if err != nil {
			writeTusError(w, err)
			return
		}
		if u == nil {
			writeTusError(w, framework.NewError(framework.CodeNotFound, "no such upload"))
			return
		}
		if r.Method == http.MethodPatch {
			if err := touchUpload(r.Context(), p.db, id, p.unixNow()); err != nil {
				writeTusError(w, err)
				return
			}
		}
		// tusd finds the upload id in the path: give it the id alone.
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + id
		fn(w, r2)
		if r.Method == http.MethodDelete {
			p.hashes.drop(id)
			if err := deleteUpload(r.Context(), p.db, id); err != nil {
				p.log.Warn("blobs: delete upload row", "id", id, "err", err)
			}
		}
	})
}

// writeTusError answers err through an errorWriter, which turns it into
// the protocol's shape.
func writeTusError(w http.ResponseWriter, err error) {
	var pe *framework.Error
	if !errors.As(err, &pe) {
		pe = &framework.Error{Code: framework.CodeInternal, Message: "internal error", Err: err}
	}
	if ew, ok := w.(*errorWriter); ok {
		ew.err = pe
	}
	w.WriteHeader(pe.Status())
}

// errorWriter passes successful answers through and keeps error answers
// (status >= 400) to be written again in the protocol's shape.
type errorWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	err    *framework.Error
}

func (w *errorWriter) WriteHeader(status int) {
	if status < 400 {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.status = status
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Type")
}

func (w *errorWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		if w.body.Len() < 4096 {
			w.body.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (tusd sets read deadlines) reach
// the connection.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// tusCodes maps tusd's error statuses to the protocol's codes.
var tusCodes = map[int]string{
	http.StatusBadRequest:            framework.CodeInvalid,
	http.StatusUnauthorized:          framework.CodeUnauthenticated,
	http.StatusForbidden:             framework.CodeForbidden,
	http.StatusNotFound:              framework.CodeNotFound,
	http.StatusGone:                  framework.CodeNotFound,
	http.StatusMethodNotAllowed:      framework.CodeMethodNotAllowed,
	http.StatusConflict:              framework.CodeConflict, // offset mismatch: HEAD and resume from there
	http.StatusPreconditionFailed:    framework.CodeInvalid,  // Tus-Resumable missing or unsupported
	http.StatusRequestEntityTooLarge: framework.CodeTooLarge,
	http.StatusUnsupportedMediaType:  framework.CodeUnsupportedMedia,
	http.StatusLocked:                framework.CodeConflict, // another request holds the upload
	statusHashMismatch:               "hash_mismatch",
}

// tusAnswers overrides tusd's answers where its status would stop a
// client that should go on: a PATCH interrupted by another request for
// the same upload (a resumed request while the cut one still ran) is a
// conflict to resume from, as the other tus clients read 409 and 423.
var tusAnswers = map[string]struct {
	status        int
	code, message string
}{
	"ERR_UPLOAD_INTERRUPTED": {http.StatusConflict, framework.CodeConflict, "another request for this upload took over; ask its offset (HEAD) and resume"},
	"ERR_LOCK_TIMEOUT":       {http.StatusLocked, framework.CodeConflict, "another request holds this upload; ask its offset (HEAD) and resume"},
	"ERR_SERVER_SHUTDOWN":    {http.StatusServiceUnavailable, framework.CodeUnavailable, "the server is shutting down; resume later"},
}

// protocolError is the answer's error in the protocol's shape, with the
// answer's status.
func (w *errorWriter) protocolError(p *Plugin) *framework.Error {
	if w.err != nil {
		return w.err
	}
	code, msg, _ := strings.Cut(strings.TrimSpace(w.body.String()), ": ")
	known := code == strings.ToLower(code) && code != "" // an answer of the plugin's own: the code is the protocol's
	if a, ok := tusAnswers[code]; ok {
		w.status, code, msg = a.status, a.code, a.message
	} else if !known {
		code = tusCodes[w.status]
	}
	if code == "" || w.status >= 500 {
		p.log.Error("blobs: upload failed", "status", w.status, "answer", w.body.String())
		w.status = http.StatusInternalServerError
		return &framework.Error{Code: framework.CodeInternal, Message: "internal error"}
	}
	if msg == "" {
		msg = http.StatusText(w.status)
	}
	return &framework.Error{Code: code, Message: msg}
}
