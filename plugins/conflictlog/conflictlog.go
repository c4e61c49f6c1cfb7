// Package conflictlog is a Ferry plugin that records every conflict a push
// meets — a change that lost (stale), was merged, or overwrote a newer
// record — with the model, uid, scope, both sides' modify_at, the outcome
// and the fields the sides disagree on. Entries are written in the push's
// transaction ([framework.App.OnConflict]), kept for Config.Retention, and
// readable through [Log.Since] and GET /sync/conflicts?since=<id>, which
// answers the caller's entries only (those of the scopes it reads: its own
// records and its shared spaces').
package conflictlog

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// Config configures the log.
type Config struct {
	// Models limits the log to these models; empty logs every model.
	Models []string
	// Retention is how long entries are kept (default 30 days); older
	// ones are removed every PurgeEvery (default 1 hour; negative: only
	// by [Log.Purge]).
	Retention  time.Duration
	PurgeEvery time.Duration
	// MaxPage caps the entries of one GET /sync/conflicts (default 500).
	MaxPage int
}

// Entry is one recorded conflict.
type Entry struct {
	// ID orders the entries; GET /sync/conflicts?since=<id> answers those
	// after it.
	ID int64 `json:"id"`
	// Model, UID and Space name the record ("" Space: a personal one).
	Model string `json:"model"`
	UID   string `json:"uid"`
	Space string `json:"space,omitempty"`
	Owner string `json:"owner"`
	// User is who pushed the change.
	User string `json:"user"`
	// Outcome is "stale", "merged" or "overwritten".
	Outcome string `json:"outcome"`
	// StoredModifyAt and IncomingModifyAt are the two sides' modify_at.
	StoredModifyAt   wire.Time `json:"stored_modify_at"`
	IncomingModifyAt wire.Time `json:"incoming_modify_at"`
	// Fields are the top-level data fields the sides disagreed on.
	Fields []string `json:"fields"`
	// At is when the server recorded it.
	At wire.Time `json:"at"`
}

// Log is the plugin.
type Log struct {
	cfg    Config
	app    *framework.App
	db     *bun.DB
	log    *slog.Logger
	stop   chan struct{}
	done   sync.WaitGroup
	closed sync.Once
}

// New returns the plugin for cfg.
func New(cfg Config) (*Log, error) {
	if cfg.Retention < 0 || cfg.MaxPage < 0 {
		return nil, errors.New("conflictlog: Retention and MaxPage must not be negative")
	}
	if cfg.Retention == 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.PurgeEvery == 0 {
		cfg.PurgeEvery = time.Hour
	}
	if cfg.MaxPage == 0 {
		cfg.MaxPage = 500
	}
	return &Log{cfg: cfg}, nil
}

// Name implements [framework.Plugin].
func (l *Log) Name() string { return "conflictlog" }

// Setup implements [framework.Plugin]: it binds the conflict hook
// "conflictlog.record".
func (l *Log) Setup(app *framework.App) error {
	registered := app.Models()
	for _, m := range l.cfg.Models {
		if !contains(registered, m) {
			return fmt.Errorf("conflictlog: model %s is not registered (register models before app.Use)", m)
		}
	}
	l.app, l.db, l.log = app, app.DB(), app.Logger()
	app.OnConflict().Bind(&hook.Handler[*framework.ConflictEvent]{ID: "conflictlog.record", Tags: l.cfg.Models, Func: l.record})
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

const ddl = `CREATE TABLE IF NOT EXISTS ferry_conflicts (
	id %s,
	scope varchar(255) NOT NULL,
	user_id varchar(255) NOT NULL,
	model varchar(128) NOT NULL,
	uid varchar(64) NOT NULL,
	outcome varchar(16) NOT NULL,
	stored_modify_at bigint NOT NULL,
	incoming_modify_at bigint NOT NULL,
	fields text NOT NULL,
	at bigint NOT NULL)`

// Start implements [framework.Starter]: it creates the table (plugins
// have no migration step of their own) and starts the retention purge.
func (l *Log) Start(ctx context.Context) error {
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if models.IsPostgres(l.db) {
		id = "bigserial PRIMARY KEY"
	}
	for _, q := range []string{fmt.Sprintf(ddl, id),
		`CREATE INDEX IF NOT EXISTS ferry_conflicts_scope ON ferry_conflicts (scope, id)`,
		`CREATE INDEX IF NOT EXISTS ferry_conflicts_at ON ferry_conflicts (at)`} {
		if _, err := l.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("conflictlog: create table: %w", err)
		}
	}
	l.stop = make(chan struct{})
	if l.cfg.PurgeEvery > 0 {
		l.done.Add(1)
		go l.purgeLoop()
	}
	return nil
}

// Close implements [framework.Closer]: it stops the purge.
func (l *Log) Close() error {
	l.closed.Do(func() {
		if l.stop != nil {
			close(l.stop)
		}
	})
	l.done.Wait()
	return nil
}

func (l *Log) purgeLoop() {
	defer l.done.Done()
	t := time.NewTicker(l.cfg.PurgeEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if _, err := l.Purge(context.Background()); err != nil {
				l.log.Error("conflictlog: purge failed", "err", err)
			}
		}
	}
}

// insertChunk is how many entries one INSERT writes at most (9 values
// each, well under SQLite's and PostgreSQL's limits on parameters).
const insertChunk = 500

// record writes the event's entries in the push's transaction, in one
// statement for up to insertChunk of them (a push's stale changes cost one
// round trip, not one each).
func (l *Log) record(e *framework.ConflictEvent) error {
	at := l.now().UnixMicro()
	for start := 0; start < len(e.Conflicts); start += insertChunk {
		part := e.Conflicts[start:min(start+insertChunk, len(e.Conflicts))]
		var q strings.Builder
		q.WriteString(`INSERT INTO ferry_conflicts
		(scope, user_id, model, uid, outcome, stored_modify_at, incoming_modify_at, fields, at) VALUES `)
		args := make([]any, 0, 9*len(part))
		for i, c := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
			fields, _ := json.Marshal(orEmpty(c.Fields))
			args = append(args, c.Stored.Owner, e.Principal.UserID, c.Stored.Model, c.Stored.UID, c.Outcome,
				c.Stored.ModifyAt.UnixMicro(), c.Incoming.ModifyAt.UnixMicro(), string(fields), at)
		}
		if _, err := e.Tx.ExecContext(e.Context, q.String(), args...); err != nil {
			return fmt.Errorf("conflictlog: record %d entries: %w", len(part), err)
		}
	}
	return e.Next()
}

func orEmpty(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func (l *Log) now() time.Time { return l.app.Config().Now() }

// Purge removes the entries older than the retention and returns how
// many.
func (l *Log) Purge(ctx context.Context) (int64, error) {
	res, err := l.db.ExecContext(ctx, `DELETE FROM ferry_conflicts WHERE at < ?`, l.now().Add(-l.cfg.Retention).UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("conflictlog: purge: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Since returns up to limit entries of the scopes (a user id, or a shared
// space's "s:<uid>") after the entry id since, in id order.
func (l *Log) Since(ctx context.Context, scopes []string, since int64, limit int) ([]Entry, error) {
	if limit <= 0 || limit > l.cfg.MaxPage {
		limit = l.cfg.MaxPage
	}
	return l.since(ctx, scopes, since, limit)
}

// Recent returns up to limit (at most Config.MaxPage) of the latest
// entries of the scopes, newest first: for operators' views (the
// inspector plugin).
func (l *Log) Recent(ctx context.Context, scopes []string, limit int) ([]Entry, error) {
	if limit <= 0 || limit > l.cfg.MaxPage {
		limit = l.cfg.MaxPage
	}
	return l.read(ctx, scopes, 0, limit, true)
}

func (l *Log) since(ctx context.Context, scopes []string, since int64, limit int) ([]Entry, error) {
	return l.read(ctx, scopes, since, limit, false)
}

func (l *Log) read(ctx context.Context, scopes []string, since int64, limit int, newestFirst bool) ([]Entry, error) {
	if len(scopes) == 0 {
		return []Entry{}, nil
	}
	var rows []struct {
		ID       int64  `bun:"id"`
		Scope    string `bun:"scope"`
		User     string `bun:"user_id"`
		Model    string `bun:"model"`
		UID      string `bun:"uid"`
		Outcome  string `bun:"outcome"`
		Stored   int64  `bun:"stored_modify_at"`
		Incoming int64  `bun:"incoming_modify_at"`
		Fields   string `bun:"fields"`
		At       int64  `bun:"at"`
	}
	order := "id"
	if newestFirst {
		order = "id DESC"
	}
	err := l.db.NewRaw(`SELECT id, scope, user_id, model, uid, outcome, stored_modify_at, incoming_modify_at, fields, at
		FROM ferry_conflicts WHERE scope IN (?) AND id > ? ORDER BY `+order+` LIMIT ?`, bun.In(scopes), since, limit).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("conflictlog: read: %w", err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = Entry{ID: r.ID, Model: r.Model, UID: r.UID, Space: wire.SpaceOf(r.Scope), Owner: r.Scope, User: r.User,
			Outcome: r.Outcome, StoredModifyAt: micros(r.Stored), IncomingModifyAt: micros(r.Incoming), At: micros(r.At)}
		if err := json.Unmarshal([]byte(r.Fields), &out[i].Fields); err != nil {
			return nil, fmt.Errorf("conflictlog: entry %d: %w", r.ID, err)
		}
	}
	return out, nil
}

func micros(us int64) wire.Time { return wire.Time{Time: time.UnixMicro(us).UTC()} }

// MountRoutes implements [framework.RouteMounter]: GET /conflicts.
func (l *Log) MountRoutes(r gin.IRouter) {
	r.GET("/conflicts", l.app.Handler(l.serve))
}

// openAPI describes GET /conflicts.
//
//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Log)(nil)

// OpenAPI implements [framework.OpenAPIDescriber].
func (l *Log) OpenAPI() (*openapi3.T, error) {
	return framework.ParseOpenAPIFragment(openAPI, "/conflicts", "/conflicts")
}

// Page is the answer of GET /sync/conflicts.
type Page struct {
	Conflicts []Entry `json:"conflicts"`
	// Next is the since of the next page (the last entry's id, or the
	// request's since when there is none).
	Next    int64 `json:"next"`
	HasMore bool  `json:"has_more"`
}

func (l *Log) serve(c *gin.Context) error {
	since := int64(0)
	if s := c.Query("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return framework.Invalid("since", "since is the id of an entry: a non-negative integer")
		}
		since = n
	}
	limit := l.cfg.MaxPage
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return framework.Invalid("limit", "limit must be a positive integer")
		}
		limit = min(n, l.cfg.MaxPage)
	}
	p, _ := framework.PrincipalFrom(c.Request.Context())
	scopes, err := l.app.ReadableScopes(c.Request.Context(), p)
	if err != nil {
		return err
	}
	entries, err := l.since(c.Request.Context(), scopes, since, limit+1)
	if err != nil {
		return err
	}
	page := Page{Conflicts: entries, Next: since}
	if len(entries) > limit {
		page.Conflicts, page.HasMore = entries[:limit], true
	}
	if n := len(page.Conflicts); n > 0 {
		page.Next = page.Conflicts[n-1].ID
	}
	c.JSON(http.StatusOK, page)
	return nil
}
