// Package realtime tells devices within milliseconds that they have
// something to pull, on any number of server replicas: a live stream per
// device (Server-Sent Events) fed by a [Bus] that carries hints between
// replicas — PostgreSQL's LISTEN/NOTIFY ([PostgresBus]), NATS
// ([NATSBus]) or, for one replica, the process itself ([LocalBus]).
//
// # Wire
//
//	POST /sync/stream/token   (bearer) → {"token": "…", "expires_at": "…", "url": "/sync/stream?token=…"}
//	GET  /sync/stream         (bearer, or ?token=…)  → text/event-stream
//
// Events carry hints, never data. Each has an id, the stream position (an
// opaque token; it is not a pull cursor and is refused as one):
//
//	retry: 2000
//
//	id: h1.eyJ1c2VyLTEiOjQyfQ
//	event: changes
//	data: {"cursor":"h1.eyJ1c2VyLTEiOjQyfQ"}
//
// "changes" means: something was committed that the device may not have;
// pull (with the device's own cursor). The first event after connecting
// says where the device stands: "changes" when it is behind, "ready" when
// it is not. The server decides it from, in order: the cursor query
// parameter (the device's last pull cursor: exact), else the
// Last-Event-ID header or last_event_id query parameter (the last
// position the device was told), else nothing (a device the server knows
// nothing of is told to pull). So a device that reconnects never misses
// a change. Comment lines (": keep-alive") come every KeepAlive; a
// comment says why when the server ends the stream (the credentials
// expired or were revoked, the server stops).
//
// Browsers' EventSource cannot send headers: a page asks POST
// /sync/stream/token with its bearer token for a stream token (valid for
// TokenTTL, one minute by default) and opens the url it returns. A stream
// opened with a stream token is not checked again against revocation, so
// it ends after MaxTokenStream (an hour by default) or when the
// credentials that asked for the token expire, whichever comes first;
// the page then asks for a new token and reconnects (EventSource resends
// the last id). A stream opened with a bearer token asks the
// authenticator again at each keep-alive and ends when it is revoked.
//
// # Limits
//
// A user holds at most MaxStreamsPerUser streams (more: 429
// rate_limited), a replica at most MaxStreams (more: 503 unavailable),
// both with Retry-After. Each write has WriteTimeout: a reader that stops
// reading is dropped. An idle stream costs a goroutine, a connection and
// a few kilobytes of buffers.
//
// # Replicas
//
// Every replica publishes the scopes its pushes changed, after commit,
// and every replica wakes its streams of those scopes; a woken stream
// reads the scope counters ([framework.App.Heads]) and sends "changes"
// only when they moved past what it last told the device. When a bus may
// have lost hints (its connection dropped) every stream checks again, and
// every Recheck (five minutes by default) each stream checks anyway: a
// replica that died between a commit and its hint delays that hint by at
// most Recheck.
package realtime

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/sse"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// Config configures the plugin; zero fields take the defaults.
type Config struct {
	// Bus carries hints between replicas (default [NewLocalBus]: one
	// replica). The plugin starts and closes it.
	Bus Bus
	// Path is where the stream is served (default "/sync/stream"); the
	// token route is Path + "/token".
	Path string
	// KeepAlive is the interval of comment lines (default 25s).
	KeepAlive time.Duration
	// WriteTimeout bounds each write to a stream (default 10s).
	WriteTimeout time.Duration
	// Recheck is how often an idle stream checks its scopes without a
	// hint (default 5m; negative: never).
	Recheck time.Duration
	// MaxStreamsPerUser caps one user's open streams on a replica
	// (default 100); MaxStreams a replica's (default 10,000).
	MaxStreamsPerUser int
	MaxStreams        int
	// TokenSecret signs stream tokens. Replicas behind one load balancer
	// must share it (a token from one opens a stream on another); by
	// default it is random, which suits one replica. At least 32 bytes.
	TokenSecret []byte
	// TokenTTL is how long a stream token opens a stream (default 1m);
	// MaxTokenStream how long a stream opened with one lasts (default 1h).
	TokenTTL       time.Duration
	MaxTokenStream time.Duration
	// MaxConcurrentChecks caps the streams reading the scope counters at
	// once, so that a resync of thousands of streams does not take every
	// database connection (default 16).
	MaxConcurrentChecks int
}

// Defaults of [Config].
const (
	DefaultKeepAlive         = 25 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultRecheck           = 5 * time.Minute
	DefaultMaxStreamsPerUser = 100
	DefaultMaxStreams        = 10_000
	DefaultTokenTTL          = time.Minute
	DefaultMaxTokenStream    = time.Hour
)

// Plugin is the realtime plugin; see the package documentation.
type Plugin struct {
	cfg Config
	app *framework.App
	reg *registry
	// headsq feeds the counter workers, which run from Start until
	// Close (stopWorkers).
	headsq      chan headsRequest
	stopWorkers chan struct{}
	closeOnce   sync.Once
}

var (
	_ framework.Plugin           = (*Plugin)(nil)
	_ framework.Starter          = (*Plugin)(nil)
	_ framework.Closer           = (*Plugin)(nil)
	_ framework.RootRouteMounter = (*Plugin)(nil)
)

// New returns the plugin, or an error for a configuration it cannot use.
func New(cfg Config) (*Plugin, error) {
	if cfg.Bus == nil {
		cfg.Bus = NewLocalBus()
	}
	if cfg.Path == "" {
		cfg.Path = "/sync/stream"
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("realtime: Path %q must start with /", cfg.Path)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"KeepAlive", &cfg.KeepAlive, DefaultKeepAlive},
		{"WriteTimeout", &cfg.WriteTimeout, DefaultWriteTimeout},
		{"TokenTTL", &cfg.TokenTTL, DefaultTokenTTL},
		{"MaxTokenStream", &cfg.MaxTokenStream, DefaultMaxTokenStream},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return nil, fmt.Errorf("realtime: %s must be positive, not %s", d.name, *d.v)
		}
	}
	if cfg.Recheck == 0 {
		cfg.Recheck = DefaultRecheck
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxStreamsPerUser", &cfg.MaxStreamsPerUser, DefaultMaxStreamsPerUser},
		{"MaxStreams", &cfg.MaxStreams, DefaultMaxStreams},
		{"MaxConcurrentChecks", &cfg.MaxConcurrentChecks, 16},
	} {
		switch {
		case *n.v == 0:
			*n.v = n.def
		case *n.v < 0:
			return nil, fmt.Errorf("realtime: %s must be positive, not %d", n.name, *n.v)
		}
	}
	switch {
	case cfg.TokenSecret == nil:
		cfg.TokenSecret = make([]byte, 32)
		_, _ = rand.Read(cfg.TokenSecret) // never fails (crypto/rand)
	case len(cfg.TokenSecret) < 32:
		return nil, fmt.Errorf("realtime: TokenSecret must hold at least 32 bytes, not %d", len(cfg.TokenSecret))
	}
	return &Plugin{cfg: cfg, reg: newRegistry(cfg.MaxStreamsPerUser, cfg.MaxStreams),
		headsq: make(chan headsRequest)}, nil
}

// Name implements [framework.Plugin].
func (p *Plugin) Name() string { return "realtime" }

// Setup implements [framework.Plugin]: it binds the after-commit hook
// "realtime.publish", which publishes the scopes a push changed.
func (p *Plugin) Setup(app *framework.App) error {
	p.app = app
	app.OnCommit().Bind(&hook.Handler[*framework.CommitEvent]{ID: "realtime.publish", Func: func(e *framework.CommitEvent) error {
		var scopes []string
		add := func(scope string) {
			if !slices.Contains(scopes, scope) {
				scopes = append(scopes, scope)
			}
		}
		for _, r := range e.Records {
			add(r.Owner)
			if r.Model == framework.MemberModel {
				// A membership changed: the member's streams watch their
				// personal scope, and rescope at its hint (a space gained
				// or lost).
				add(r.UID)
			}
		}
		p.cfg.Bus.Publish(scopes)
		return e.Next()
	}})
	return nil
}

// Start implements [framework.Starter]: it starts the bus.
func (p *Plugin) Start(ctx context.Context) error {
	if err := p.cfg.Bus.Start(ctx, p.reg.deliver); err != nil {
		return err
	}
	p.stopWorkers = make(chan struct{})
	p.startWorkers(p.stopWorkers)
	return nil
}

// Close implements [framework.Closer]: it ends the open streams (clients
// reconnect, to another replica or after a restart) and closes the bus.
func (p *Plugin) Close() error {
	p.reg.close()
	p.closeOnce.Do(func() {
		if p.stopWorkers != nil {
			close(p.stopWorkers)
		}
	})
	return p.cfg.Bus.Close()
}

// OnHint calls fn with every hint this replica hears, from every replica,
// after the plugin's own streams were woken: scopes that changed, or
// resync when hints may have been lost and every listener should check
// everything it watches. Other plugins' live streams (the RxDB adapter's)
// use it to work across replicas. fn runs on the bus's goroutine and
// must return quickly. The returned function stops the calls.
func (p *Plugin) OnHint(fn func(scopes []string, resync bool)) (cancel func()) {
	return p.reg.listen(fn)
}

// Config returns the plugin's configuration with its defaults filled in
// (the token secret left out).
func (p *Plugin) Config() Config {
	c := p.cfg
	c.TokenSecret = nil
	return c
}

// Streams is the number of open streams on this replica.
func (p *Plugin) Streams() int { return p.reg.count() }

// MountRootRoutes implements [framework.RootRouteMounter]: the stream
// authenticates itself (a bearer token or a stream token), so it is
// mounted beside the sync routes rather than under them.
func (p *Plugin) MountRootRoutes(r gin.IRouter) {
	r.GET(p.cfg.Path, p.app.Handler(p.serveStream))
	r.POST(p.cfg.Path+"/token", p.app.Handler(p.issueToken))
}

// openAPI describes the stream and its token at /stream.
//
//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the stream and its
// token, at [Config].Path (root routes, so the paths are absolute).
func (p *Plugin) OpenAPI() (*openapi3.T, error) {
	return framework.ParseOpenAPIFragment(openAPI, "/stream", p.cfg.Path)
}

// TokenResponse is the answer of POST {Path}/token.
type TokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// URL opens the stream with the token (relative to the server).
	URL string `json:"url"`
}

func (p *Plugin) issueToken(c *gin.Context) error {
	who, err := p.authenticate(c.Request)
	if err != nil {
		return err
	}
	now := p.app.Config().Now()
	t := streamToken{User: who.UserID, Until: now.Add(p.cfg.TokenTTL).Unix()}
	if !who.ExpiresAt.IsZero() {
		t.Expires = who.ExpiresAt.Unix()
		if t.Expires < t.Until {
			t.Until = t.Expires
		}
	}
	tok := signToken(p.cfg.TokenSecret, t)
	c.JSON(http.StatusOK, TokenResponse{Token: tok, ExpiresAt: time.Unix(t.Until, 0).UTC(),
		URL: p.cfg.Path + "?token=" + url.QueryEscape(tok)})
	return nil
}

// authenticate is the App's authenticator, answered in the protocol's
// error shape.
func (p *Plugin) authenticate(r *http.Request) (framework.Principal, error) {
	who, err := p.app.Authenticate(r)
	if err != nil || who.UserID == "" {
		var pe *framework.Error
		if errors.As(err, &pe) && pe.Code != framework.CodeUnauthenticated {
			return who, fmt.Errorf("realtime: authenticate: %w", err) // a 500, logged
		}
		msg := "a valid bearer token is required"
		if pe != nil && pe.Message != "" {
			msg = pe.Message
		}
		return who, framework.NewError(framework.CodeUnauthenticated, "%s", msg)
	}
	return who, nil
}

// streamPrincipal is who opens a stream, and whether a stream token
// (rather than the authenticator) vouched for them.
func (p *Plugin) streamPrincipal(r *http.Request) (framework.Principal, bool, error) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		who, err := p.authenticate(r)
		return who, false, err
	}
	now := p.app.Config().Now()
	t, err := verifyToken(p.cfg.TokenSecret, tok, now)
	if err != nil {
		return framework.Principal{}, true, framework.NewError(framework.CodeUnauthenticated, "%s", err.Error())
	}
	who := framework.Principal{UserID: t.User, ExpiresAt: now.Add(p.cfg.MaxTokenStream)}
	if t.Expires != 0 && time.Unix(t.Expires, 0).Before(who.ExpiresAt) {
		who.ExpiresAt = time.Unix(t.Expires, 0)
	}
	return who, true, nil
}

// behind says whether the device that opens a stream has something to
// pull: from its pull cursor when it sends one, else from the last
// position it was told, else yes.
func (p *Plugin) behind(r *http.Request, heads map[string]int64) (bool, error) {
	q := r.URL.Query()
	if _, ok := q["cursor"]; ok {
		return p.app.CursorBehind(q.Get("cursor"), heads)
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("last_event_id")
	}
	told, ok := parsePosition(last)
	if !ok {
		return true, nil
	}
	return ahead(heads, told), nil
}

// ahead reports whether some scope in now is past where told has it.
func ahead(now, told map[string]int64) bool {
	for sc, v := range now {
		if v > told[sc] {
			return true
		}
	}
	for sc := range told {
		if _, readable := now[sc]; !readable {
			return true // a space the user lost: the next pull says removed
		}
	}
	return false
}

// changesEvent appends an event of type kind whose id and cursor are the
// position heads.
func changesEvent(b []byte, kind string, heads map[string]int64) []byte {
	pos := encodePosition(heads)
	data, _ := json.Marshal(struct {
		Cursor string `json:"cursor"`
	}{pos})
	return sse.Event(b, pos, kind, string(data))
}

// positionPrefix marks stream positions, which are not pull cursors.
const positionPrefix = "h1."

func encodePosition(heads map[string]int64) string {
	b, _ := json.Marshal(heads) // sorted keys; strings and ints always encode
	return positionPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func parsePosition(s string) (map[string]int64, bool) {
	body, ok := strings.CutPrefix(s, positionPrefix)
	if !ok || len(s) > 8192 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, false
	}
	var m map[string]int64
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}
