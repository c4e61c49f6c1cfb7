package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/framework/wire"
	"github.com/gin-gonic/gin"
)

// Mount seals the registry and registers the protocol's routes on r,
// usually router.Group("/sync"): POST / (one record), POST /push, and
// GET /pull with POST /pull (its parameters in a body), then the routes of plugins that serve some. Every route
// authenticates with the App's Authenticator, except GET /openapi.json,
// the public description of them all ([App.OpenAPI]).
func (a *App) Mount(r gin.IRouter) {
	a.seal()
	r.GET("/openapi.json", a.openAPIHandler(mountPath(r)))
	g := r.Group("", a.authenticate)
	g.POST("/", a.handle(a.handleSingle))
	g.POST("/push", a.handle(a.handlePush))
	g.GET("/pull", a.handle(a.handlePull))
	g.POST("/pull", a.handle(a.handlePullBody))
	for _, p := range a.Plugins() {
		if rm, ok := p.(RouteMounter); ok {
			rm.MountRoutes(g)
		}
	}
}

// MountRoot seals the registry and registers, on r (usually the engine),
// the routes of the plugins that serve outside the sync mount point
// ([RootRouteMounter]), in Use order. Call it beside [App.Mount].
func (a *App) MountRoot(r gin.IRouter) {
	a.seal()
	for _, p := range a.Plugins() {
		if rm, ok := p.(RootRouteMounter); ok {
			rm.MountRootRoutes(r)
		}
	}
}

// UseProtocolErrors makes the engine's own 404 and 405 answers use the
// protocol's error shape. It is the only thing Ferry changes on an engine,
// and only when asked.
func UseProtocolErrors(e *gin.Engine) {
	e.HandleMethodNotAllowed = true
	e.NoRoute(func(c *gin.Context) {
		WriteError(c, NewError(CodeNotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		WriteError(c, NewError(CodeMethodNotAllowed, "method %s is not allowed here", c.Request.Method))
	})
}

// WriteError answers with the protocol's error shape. Errors that are not
// an *Error are internal: they are logged by the handler wrapper and the
// client learns nothing about them.
func WriteError(c *gin.Context, err error) {
	pe := asProtocolError(err)
	if pe.RetryAfter > 0 {
		secs := (pe.RetryAfter + time.Second - 1) / time.Second
		c.Header("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	c.AbortWithStatusJSON(pe.Status(), pe.Body())
}

// HandlerFunc adapts a handler that returns an error to gin: a returned
// error is answered in the protocol's error shape (internal ones are
// logged to log and told to the client as "internal error" only), and a
// panic becomes a 500 in the same shape instead of a dropped connection.
// Plugins and applications serve their own routes with it so that every
// answer of a Ferry server looks alike.
func HandlerFunc(log *slog.Logger, fn func(c *gin.Context) error) gin.HandlerFunc {
	if log == nil {
		log = slog.Default()
	}
	return func(c *gin.Context) {
		defer recoverInto(c, log)
		if err := fn(c); err != nil {
			pe := asProtocolError(err)
			if pe.Code == CodeInternal {
				log.ErrorContext(c.Request.Context(), "request failed", "err", err, "path", c.Request.URL.Path)
			}
			WriteError(c, pe)
		}
	}
}

// Recovery is gin middleware that turns a panic anywhere after it into a
// 500 answer in the protocol's error shape (gin's own Recovery answers an
// empty 500). The panic is logged; http.ErrAbortHandler is passed on, as
// net/http expects.
func Recovery(log *slog.Logger) gin.HandlerFunc {
	if log == nil {
		log = slog.Default()
	}
	return func(c *gin.Context) {
		defer recoverInto(c, log)
		c.Next()
	}
}

func recoverInto(c *gin.Context, log *slog.Logger) {
	rec := recover()
	if rec == nil {
		return
	}
	if rec == http.ErrAbortHandler {
		panic(rec)
	}
	log.ErrorContext(c.Request.Context(), "panic in handler", "panic", rec, "path", c.Request.URL.Path, "stack", string(debug.Stack()))
	if c.Writer.Written() {
		// Half an answer is out: all that is left is to cut the connection.
		panic(http.ErrAbortHandler)
	}
	WriteError(c, NewError(CodeInternal, "internal error"))
}

// handle adapts a sync handler: see [HandlerFunc].
func (a *App) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return HandlerFunc(a.log, fn)
}

// Handler is [HandlerFunc] with the App's logger, for plugins' routes.
func (a *App) Handler(fn func(c *gin.Context) error) gin.HandlerFunc {
	return HandlerFunc(a.log, fn)
}

// Authenticate runs the App's authenticator on r: the principal the sync
// routes would see. Long-lived answers (live streams) call it again from
// time to time, so that a revoked token ends them too. Without an
// authenticator it fails with [ErrUnauthenticated].
func (a *App) Authenticate(r *http.Request) (Principal, error) {
	auth := a.authenticator()
	if auth == nil {
		return Principal{}, NewError(CodeUnauthenticated, "this server has no authenticator configured")
	}
	return auth.Authenticate(r)
}

func (a *App) authenticate(c *gin.Context) {
	auth := a.authenticator()
	if auth == nil {
		WriteError(c, NewError(CodeUnauthenticated, "this server has no authenticator configured"))
		return
	}
	p, err := auth.Authenticate(c.Request)
	if err == nil && p.UserID != "" {
		err = checkPrincipal(p) // the shape of the id
	}
	if err != nil || p.UserID == "" {
		var pe *Error
		if errors.As(err, &pe) && pe.Code != CodeUnauthenticated {
			a.log.ErrorContext(c.Request.Context(), "authenticator failed", "err", err)
			WriteError(c, NewError(CodeInternal, "internal error"))
			return
		}
		msg := "a valid bearer token is required"
		if pe != nil && pe.Message != "" {
			msg = pe.Message
		}
		c.Header("WWW-Authenticate", `Bearer realm="ferry"`)
		WriteError(c, NewError(CodeUnauthenticated, "%s", msg))
		return
	}
	if a.limits != nil {
		if ok, wait := a.limits.Reserve(p.UserID); !ok {
			WriteError(c, &Error{Code: CodeRateLimited, Message: "too many requests; retry later", RetryAfter: wait})
			return
		}
	}
	c.Request = c.Request.WithContext(WithPrincipal(c.Request.Context(), p))
	c.Next()
}

func principal(c *gin.Context) Principal {
	p, _ := PrincipalFrom(c.Request.Context())
	return p
}

func (a *App) handleSingle(c *gin.Context) error {
	var body any
	if err := ReadJSONBodyWithin(c.Request, a.BodyLimits(), &body); err != nil {
		return err
	}
	ch, errs := a.decodeChange(body)
	if len(errs) > 0 {
		if _, ok := body.(map[string]any); !ok {
			return &Error{Code: CodeInvalid, Message: "the body must be a JSON object", Details: errs}
		}
		return &Error{Code: CodeInvalid, Message: "invalid request", Details: errs}
	}
	results, err := a.Push(c.Request.Context(), principal(c), []*Change{ch})
	if err != nil {
		return err
	}
	res := results[0]
	switch res.Status {
	case StatusApplied, StatusStale:
		resp := wire.SingleResponse{Status: res.Status, Record: res.Record, MissingBlobs: res.MissingBlobs}
		c.Data(http.StatusOK, "application/json; charset=utf-8", appendSingleResponse(make([]byte, 0, 512), &resp))
		return nil
	case StatusForbidden:
		if ch.Space != "" {
			// A reason only when the caller may know the space (a
			// reader's); to anyone else, as a space that does not exist.
			msg := "you may not write to this space"
			if len(res.Errors) > 0 {
				msg = res.Errors[0].Message
			}
			return &Error{Code: CodeForbidden, Message: msg, Details: res.Errors}
		}
		return NewError(CodeForbidden, "this record belongs to another user")
	default:
		code := res.Code
		if code == "" {
			code = CodeInvalid
		}
		msg := "invalid record"
		switch {
		case code == CodeUnknownModel:
			msg = "unknown model " + strconv.Quote(ch.Model)
		case code != CodeInvalid && len(res.Errors) > 0:
			msg = res.Errors[0].Message // quota_exceeded, conflict: the reason itself
		}
		return &Error{Code: code, Message: msg, Details: res.Errors}
	}
}

func (a *App) handlePush(c *gin.Context) error {
	var body any
	if err := ReadJSONBodyWithin(c.Request, a.BodyLimits(), &body); err != nil {
		return err
	}
	if errs := a.protocol.push.errors(body, ""); len(errs) > 0 {
		return &Error{Code: CodeInvalid, Message: "invalid push request", Details: errs}
	}
	items, _ := body.(map[string]any)["changes"].([]any)
	if len(items) > a.cfg.MaxChanges {
		return NewError(CodeTooLarge, "a push carries at most %d changes; split it", a.cfg.MaxChanges)
	}
	changes := make([]*Change, len(items))
	bad := map[int][]FieldError{}
	for i, item := range items {
		ch, errs := a.decodeChange(item)
		changes[i] = ch
		if len(errs) > 0 {
			bad[i] = errs
		}
	}
	// Changes with a bad envelope are answered rejected in place; the
	// others go through Push together.
	a.stats.malformed.Add(int64(len(bad)))
	good := make([]*Change, 0, len(changes))
	for i, ch := range changes {
		if _, isBad := bad[i]; !isBad {
			good = append(good, ch)
		}
	}
	var cur *cursor
	if s, _ := body.(map[string]any)["cursor"].(string); s != "" {
		// Of any filter (models, spaces, subscriptions): the push moves
		// only the caller's own scope, and the answer keeps the filter.
		var err error
		if cur, err = parseCursor(s, ""); err != nil {
			return err
		}
	}
	p := principal(c)
	device, _ := body.(map[string]any)["device_id"].(string)
	applied, outcomes, err := a.push(c.Request.Context(), p, good, PushOptions{DeviceID: device})
	if err != nil {
		return err
	}
	resp := wire.PushResponse{Results: make([]Result, len(changes))}
	if cur != nil {
		// The changes refused for their envelope wrote nothing: the
		// cursor moves past the others' writes alone.
		resp.Cursor = advanceCursor(cur, p.UserID, outcomes).encode()
	}
	results := resp.Results
	for i, ch := range changes {
		if errs, isBad := bad[i]; isBad {
			results[i] = Result{OpID: ch.OpID, Model: ch.Model, UID: ch.UID}
			rejectResult(&results[i], CodeInvalid, errs...)
			continue
		}
		results[i], applied = applied[0], applied[1:]
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", appendPushResponse(make([]byte, 0, pushResponseSize(&resp)), &resp))
	return nil
}

// advanceCursor moves a device's cursor past the device's own writes when
// that skips nothing else: a push reserves one version per valid change
// (its slots), consecutive, right after the version the scope had, in one
// transaction holding the scope; so if the cursor stood exactly there,
// the versions up to the last slot are all the push's own (those of
// changes not written hold nothing). Otherwise the cursor is returned
// unchanged and the device pulls its writes back (harmlessly, same
// versions).
func advanceCursor(cur *cursor, scope string, results []outcome) *cursor {
	var first, last int64
	for _, r := range results {
		if r.slot == 0 {
			continue
		}
		if first == 0 || r.slot < first {
			first = r.slot
		}
		last = max(last, r.slot)
	}
	if first == 0 || cur.Upper != nil || cur.Pos[scope] != first-1 {
		return cur
	}
	next := &cursor{Pos: map[string]int64{}, Filter: cur.Filter}
	for s, p := range cur.Pos {
		next.Pos[s] = p
	}
	next.Pos[scope] = last
	return next
}

func (a *App) handlePull(c *gin.Context) error {
	q := c.Request.URL.Query()
	req := PullRequest{Cursor: q.Get("cursor"), DeviceID: q.Get(wire.QueryDeviceID),
		Models: splitList(q.Get("models")), Spaces: splitList(q.Get("spaces")), Subscriptions: q["subscription"]}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil && len(s[0]) > 0 && isDigits(s[0]) {
			n, err = a.cfg.MaxPullLimit, nil // a huge number: capped, not refused
		}
		if err != nil || n <= 0 {
			return &Error{Code: CodeInvalid, Message: "limit must be a positive integer",
				Details: []FieldError{{Path: "limit", Message: "must be a positive integer"}}}
		}
		req.Limit = n
	}
	return a.servePull(c, req)
}

// pullBodyLimits bound POST /sync/pull's body: the longest cursor and
// room for the filters.
func (a *App) pullBodyLimits() BodyLimits {
	lim := a.BodyLimits()
	lim.MaxBytes = 2 * maxCursorBytes
	return lim
}

// handlePullBody serves POST /sync/pull: GET's parameters in a JSON body
// (pull.json), for a cursor of many spaces that no proxy would take in a
// URL. The answer is GET's.
func (a *App) handlePullBody(c *gin.Context) error {
	if c.Request.URL.RawQuery != "" {
		return NewError(CodeInvalid, "a POST pull takes its parameters in the body, not in the URL")
	}
	var body any
	if err := ReadJSONBodyWithin(c.Request, a.pullBodyLimits(), &body); err != nil {
		return err
	}
	if errs := a.protocol.pull.errors(body, ""); len(errs) > 0 {
		return &Error{Code: CodeInvalid, Message: "invalid pull request", Details: errs}
	}
	var fields struct {
		Cursor        string      `json:"cursor"`
		Limit         json.Number `json:"limit"`
		Models        []string    `json:"models"`
		Spaces        []string    `json:"spaces"`
		Subscriptions []string    `json:"subscriptions"`
		DeviceID      string      `json:"device_id"`
	}
	// The schema checked every type; re-marshalling the small body is the
	// simplest way into the struct.
	b, err := json.Marshal(body)
	if err == nil {
		err = json.Unmarshal(b, &fields)
	}
	if err != nil {
		return fmt.Errorf("framework: pull body: %w", err)
	}
	req := PullRequest{Cursor: fields.Cursor, DeviceID: fields.DeviceID, Models: fields.Models,
		Spaces: fields.Spaces, Subscriptions: fields.Subscriptions}
	if fields.Limit != "" {
		// The schema took an integer of at least 1; one past int64 (1e400)
		// is capped as a huge ?limit= is.
		n, err := strconv.ParseFloat(string(fields.Limit), 64)
		if err != nil || n > float64(a.cfg.MaxPullLimit) {
			n = float64(a.cfg.MaxPullLimit)
		}
		req.Limit = int(n)
	}
	return a.servePull(c, req)
}

// servePull answers a pull request read from either form.
func (a *App) servePull(c *gin.Context, req PullRequest) error {
	if utf8.RuneCountInString(req.DeviceID) > maxDeviceID {
		// The push body's device_id has the same bound (push.json).
		return &Error{Code: CodeInvalid, Message: "device_id is at most 256 characters",
			Details: []FieldError{{Path: "device_id", Message: "at most 256 characters"}}}
	}
	resp, err := a.Pull(c.Request.Context(), principal(c), req)
	if err != nil {
		return err
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", appendPullResponse(make([]byte, 0, pullResponseSize(resp)), resp))
	return nil
}

// splitList reads a comma-separated parameter, blanks dropped.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// maxDeviceID bounds a pull's device_id, as push.json bounds a push's.
const maxDeviceID = 256

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// writeJSON encodes v once into a buffer, so an encoding failure becomes an
// error answer rather than half a body.
func writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(c, &Error{Code: CodeInternal, Message: "internal error", Err: err})
		return
	}
	c.Data(status, "application/json; charset=utf-8", b)
}
