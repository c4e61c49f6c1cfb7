// Package inspector is a Ferry plugin that serves a read-only inspector
// for reviewers and operators: server-rendered HTML pages, usable in a
// browser without reading JSON, behind an admin credential.
//
// Pages (under Config.Path, default /inspector):
//
//   - GET /inspector/ — the scopes ever written (users and shared spaces)
//     with their version, purge horizon, record count and bytes, a page at
//     a time; the users recently active on this replica; the models; the
//     tombstone purge (retention, interval, last run, purged counts).
//   - GET /inspector/user?id=… — one user: the personal scope's version and
//     purge horizon, usage, the spaces the user is a member of, the scope's
//     records (newest first, paged, filterable by model: uid, version,
//     modify_at, deleted, a data preview), the user's recent pushes with
//     every change's status, recent conflicts (from plugins/conflictlog when
//     it is on), and the devices by device_id with their last push and pull
//     and how far behind their cursor is.
//   - GET /inspector/space?id=… — one shared space: its scope, members,
//     records and conflicts.
//   - GET /inspector/record?scope=…&model=…&uid=… — one record with its
//     whole data.
//
// What the pages read from the store (records, versions, horizons, usage,
// memberships, conflicts) is authoritative. What the inspector keeps in
// memory — recent pushes and devices' last push and pull, from the
// [framework.App.OnResults] and [framework.App.OnPulled] hooks — is
// bounded (Config.MaxUsers users, the least recently active forgotten
// first; per user MaxPushesPerUser pushes of at most MaxChangesPerPush
// changes each, and MaxDevicesPerUser devices), starts empty when the
// server starts, and is per replica: behind a load balancer each replica
// shows the pushes and pulls it served. The pages say so.
//
// A device is known by the device_id of its pushes (the push body's) and
// of its pulls (GET /sync/pull?device_id=…, optional; the Go and
// JavaScript clients send theirs). Pushes and pulls without one are shown
// as the device "(none)"; the WatermelonDB and RxDB adapters' protocols
// carry none. A device's lag is, per scope it pulled, the scope's version
// now minus the position its last cursor stands at: the versions it has
// yet to pull, its own later writes included until it pulls again.
//
// Access: every route needs Config.Token, sent as the password of HTTP
// basic auth (any user name; browsers ask for it) or as
// "Authorization: Bearer <token>", compared in constant time. Without it
// the answer is 401 in the protocol's error shape, with a
// WWW-Authenticate challenge, and no data. A user's sync token is not the
// admin credential. The routes are GET only; nothing writes. Every value
// shown is escaped by html/template (record data is user input), and the
// pages are served with a Content-Security-Policy that allows no script
// at all.
package inspector

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"strings"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/plugins/conflictlog"
	"github.com/gin-gonic/gin"
)

// Config configures the inspector. Only Token is required.
type Config struct {
	// Token is the admin credential, at least 16 bytes (use a random one:
	// `openssl rand -hex 32`).
	Token string
	// Path is where the pages are served (default "/inspector"), outside
	// the sync mount point ([framework.App.MountRoot]).
	Path string
	// PageSize is the records shown per page (default 50); ?limit= asks
	// for up to MaxPageSize (default 500).
	PageSize, MaxPageSize int
	// MaxUsers bounds the users whose pushes and devices are remembered
	// (default 500); MaxPushesPerUser (default 10), MaxChangesPerPush
	// (default 20) and MaxDevicesPerUser (default 16) bound each. A change
	// kept is at most about 600 bytes (its texts are clipped), so the
	// defaults hold at most about 60 MB of changes, and in practice what
	// the users active lately pushed.
	MaxUsers, MaxPushesPerUser, MaxChangesPerPush, MaxDevicesPerUser int
	// MaxConflicts is the recent conflicts shown (default 20).
	MaxConflicts int
	// MaxPreview is the characters of a record's data shown in lists
	// (default 160); the record's own page shows up to 64 KiB.
	MaxPreview int
	// Conflicts is the conflict log to read recent conflicts from; nil
	// finds the App's conflictlog plugin when it has one.
	Conflicts *conflictlog.Log
}

// Inspector is the plugin.
type Inspector struct {
	cfg   Config
	app   *framework.App
	act   *activity
	pages *template.Template
	token [sha256.Size]byte
}

var _ framework.RootRouteMounter = (*Inspector)(nil)

//go:embed templates/*.html
var templates embed.FS

// New returns the plugin for cfg, or an error naming the bad field.
func New(cfg Config) (*Inspector, error) {
	if len(cfg.Token) < 16 {
		return nil, errors.New("inspector: Config.Token must be at least 16 bytes")
	}
	if cfg.Path == "" {
		cfg.Path = "/inspector"
	}
	if !strings.HasPrefix(cfg.Path, "/") || strings.HasSuffix(cfg.Path, "/") && cfg.Path != "/" {
		return nil, fmt.Errorf("inspector: Config.Path %q must start with / and not end with one", cfg.Path)
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"PageSize", &cfg.PageSize, 50}, {"MaxPageSize", &cfg.MaxPageSize, 500}, {"MaxUsers", &cfg.MaxUsers, 500},
		{"MaxPushesPerUser", &cfg.MaxPushesPerUser, 10}, {"MaxChangesPerPush", &cfg.MaxChangesPerPush, 20},
		{"MaxDevicesPerUser", &cfg.MaxDevicesPerUser, 16}, {"MaxConflicts", &cfg.MaxConflicts, 20}, {"MaxPreview", &cfg.MaxPreview, 160}} {
		if *f.v < 0 {
			return nil, fmt.Errorf("inspector: Config.%s must not be negative", f.name)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if cfg.PageSize > cfg.MaxPageSize {
		return nil, fmt.Errorf("inspector: Config.PageSize %d is above MaxPageSize %d", cfg.PageSize, cfg.MaxPageSize)
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("inspector: templates: %w", err) // a bug of this package
	}
	return &Inspector{cfg: cfg, pages: pages, token: sha256.Sum256([]byte(cfg.Token)),
		act: newActivity(cfg.MaxUsers, cfg.MaxDevicesPerUser, cfg.MaxPushesPerUser, cfg.MaxChangesPerPush)}, nil
}

// Name implements [framework.Plugin].
func (in *Inspector) Name() string { return "inspector" }

// Setup implements [framework.Plugin]: it binds "inspector.pushes" on
// [framework.App.OnResults] and "inspector.pulls" on
// [framework.App.OnPulled], which only copy what they see into bounded
// memory.
func (in *Inspector) Setup(app *framework.App) error {
	in.app = app
	app.OnResults().Bind(&hook.Handler[*framework.ResultsEvent]{ID: "inspector.pushes", Func: func(e *framework.ResultsEvent) error {
		in.act.pushed(e, in.now())
		return e.Next()
	}})
	app.OnPulled().Bind(&hook.Handler[*framework.PulledEvent]{ID: "inspector.pulls", Func: func(e *framework.PulledEvent) error {
		in.act.pulled(e, in.now())
		return e.Next()
	}})
	return nil
}

// MountRootRoutes implements [framework.RootRouteMounter]: the pages, GET
// only, behind the admin credential.
func (in *Inspector) MountRootRoutes(r gin.IRouter) {
	g := r.Group(in.cfg.Path, in.admin)
	g.GET("/", in.app.Handler(in.index))
	g.GET("/user", in.app.Handler(in.user))
	g.GET("/space", in.app.Handler(in.space))
	g.GET("/record", in.app.Handler(in.record))
}

// admin lets the request through only with the admin credential.
func (in *Inspector) admin(c *gin.Context) {
	h := c.Writer.Header()
	// No script may run on these pages, whatever a record holds; nothing
	// is cached or framed.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	var given string
	if tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer "); ok {
		given = tok
	} else if _, pw, ok := c.Request.BasicAuth(); ok {
		given = pw
	}
	// Hashes of equal length, so the comparison says nothing about the
	// token's length either.
	sum := sha256.Sum256([]byte(given))
	if given == "" || subtle.ConstantTimeCompare(sum[:], in.token[:]) != 1 {
		h.Set("WWW-Authenticate", `Basic realm="Ferry inspector", charset="UTF-8"`)
		framework.WriteError(c, framework.NewError(framework.CodeUnauthenticated,
			"the inspector needs its admin credential: HTTP basic auth with the token as the password, or Authorization: Bearer <token>"))
		return
	}
	c.Next()
}

func (in *Inspector) conflictLog() *conflictlog.Log {
	if in.cfg.Conflicts != nil {
		return in.cfg.Conflicts
	}
	for _, p := range in.app.Plugins() {
		if l, ok := p.(*conflictlog.Log); ok {
			return l
		}
	}
	return nil
}
