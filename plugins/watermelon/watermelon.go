// Package watermelon serves WatermelonDB's sync protocol on Ferry's core,
// so a WatermelonDB app's synchronize() can use a Ferry server as its back
// end. Records written through it are the same records the native
// protocol (/sync/push, /sync/pull) and other adapters read and write:
// same storage, versions, owner permissions, validation and hooks.
//
// Routes, relative to the sync mount point (behind its authentication):
//
//	GET  /watermelon?last_pulled_at=<n|null>&schema_version=<n>&migration=<json|null>[&limit=<n>][&space=<uid>]
//	POST /watermelon?last_pulled_at=<n>[&space=<uid>]   body: the changes object
//
// Without space a database syncs the user's personal space; with it, the
// shared space uid (one WatermelonDB database per space; see space.go for
// what a removed member's pulls answer).
//
// # Pull
//
// The answer is {"changes": {table: {"created": [], "updated": [...],
// "deleted": [ids]}}, "timestamp": n, "has_more": bool}. Live records are
// always in "updated", never "created": configure the client with
// sendCreatedAsUpdated: true. (A device gets its own pushes back, and a
// record sent as "created" makes WatermelonDB recreate a record the device
// has deleted locally but not pushed yet.) Records travel flat: "id" (the
// record's uid) plus the model's data fields.
//
// The timestamp is the caller's scope version (see
// [framework.App.ReadSince]) plus one, so it is positive even for a user
// with no records; it is read in the same snapshot as the changes. With
// last_pulled_at=null (first sync) no deletions are sent. A page holds at
// most limit records (default and cap: [Config.PullLimit]); when the
// answer was cut, has_more is true and the timestamp covers only what was
// sent, so the client simply synchronizes again (the README's snippet
// loops). A last_pulled_at ahead of the server (its database was
// replaced) or older than the tombstone purge horizon is answered 410
// reset_required: the device must reset its local database.
//
// A migration sync (migration not null) receives, besides the changes, all
// live records of the tables the migration created or added columns to.
// schema_version must be an integer when given and is otherwise ignored:
// records always carry all of the model's fields.
//
// # Push
//
// The body is the changes object as synchronize() passes it to
// pushChanges. "_status" and "_changed" are stripped; created records that
// exist become updates, updated records that are missing are created, and
// deleted records that are missing become tombstones. The server stamps its
// receive time as modify_at. What decides a pushed record the server
// holds depends on the model's conflict policy ([framework.App.Policy]):
//
//   - A policy that merges field by field ([framework.UsesFieldTimes]:
//     policies.FieldLWW, policies.Automerge) decides, as for a native
//     change, with field times taken from the row's _changed (the columns
//     edited on the device since its last sync, comma-separated): the
//     edited columns at the change's modify_at, every other column at
//     [adapter.Unedited] (the epoch), so a column the device did not edit
//     never wins against the server's. A created row, and an updated row
//     without _changed, name no field times (every column counts as
//     edited); names in _changed that are not columns of the row are
//     ignored, and a _changed that is not a string refuses the record.
//     Such records never conflict: two devices that edited different
//     columns of a row from the same pull both keep their edits, and the
//     merged record comes with the next pull. A record that loses
//     altogether (every edited column lost to a later edit, or a delete
//     the policy lets win) is listed in "rejected" with code "conflict", and
//     the device's next pull brings the server's state (re-sent when the
//     device had pulled it already).
//   - Any other policy (last-writer-wins, FirstWriterWins, ServerWins,
//     ClientWins, a PolicyFunc) is not asked: the protocol's rule decides.
//     If any such pushed record changed on the server after
//     last_pulled_at, nothing of the push is applied and the answer is 409
//     conflict with one detail per conflicting record, path
//     "/<table>/<id>": the client pulls, merges column by column itself
//     (WatermelonDB keeps its _changed columns) and pushes again.
//     Otherwise the row is applied as sent, whatever the model's policy
//     would say.
//
// The records of the second kind are applied first, in one transaction
// (per [framework.Config.MaxChanges] records; a larger push is applied in
// several, and a conflict in a later one leaves the earlier ones applied,
// which is safe because the client pulls them back), then those of the
// first kind, in another.
//
// A record the server refuses (it fails the model's schema or validation,
// a hook vetoes it, its id is not a valid uid, or it belongs to another
// user) does not fail the push, so it cannot block a device forever: the
// valid records are applied, and the server writes its own state of each
// refused record again (a tombstone when it has none), so that the
// device's next pull replaces the refused change with the server's state.
// (Another user's record is neither written nor revealed; the device keeps
// its copy.)
// The answer, 200 {"ok": true, "rejected": [{"table", "id", "errors"}]},
// says which records were refused and why (an app may log it).
// Errors in the envelope (a body that is not an object of known tables,
// a bad last_pulled_at) are 400 invalid in the protocol's error shape.
package watermelon

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/adapter"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// Config configures the plugin. The zero value serves the protocol with
// no tables; add them with [Plugin.Expose] or Tables.
type Config struct {
	// Tables maps a WatermelonDB table name to the registered model that
	// backs it, e.g. {"tasks": "data.Task"}. A model backs at most one
	// table. The model's data fields are the table's columns; it must not
	// have fields named id, _status or _changed.
	Tables map[string]string
	// Path is where the routes are mounted, relative to the sync mount
	// point (default "/watermelon").
	Path string
	// PullLimit caps the records of one pull answer (default: the App's
	// MaxPullLimit, 5000 unless configured).
	PullLimit int
}

// Plugin serves WatermelonDB's sync protocol; attach it with app.Use.
type Plugin struct {
	cfg     Config
	app     *framework.App
	tables  map[string]string // table -> model
	byModel map[string]string // model -> table
	names   []string          // tables, sorted
	models  []string          // models, sorted
}

var (
	_ framework.Plugin       = (*Plugin)(nil)
	_ framework.RouteMounter = (*Plugin)(nil)
)

// New validates cfg and returns the plugin.
func New(cfg Config) (*Plugin, error) {
	if cfg.Path == "" {
		cfg.Path = "/watermelon"
	}
	if cfg.Path[0] != '/' {
		return nil, fmt.Errorf("watermelon: Config.Path %q must start with /", cfg.Path)
	}
	if cfg.PullLimit < 0 {
		return nil, fmt.Errorf("watermelon: Config.PullLimit %d must not be negative", cfg.PullLimit)
	}
	p := &Plugin{cfg: cfg, tables: map[string]string{}, byModel: map[string]string{}}
	tables := make([]string, 0, len(cfg.Tables))
	for t := range cfg.Tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		if err := p.Expose(t, cfg.Tables[t]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Expose makes model available as WatermelonDB table table. Call it before
// app.Use.
func (p *Plugin) Expose(table, model string) error {
	if !adapter.NameRE.MatchString(table) {
		return fmt.Errorf("watermelon: table name %q must be 1 to 64 letters, digits, _ or -, not starting with a digit or -", table)
	}
	if model == "" {
		return fmt.Errorf("watermelon: table %q: model name is empty", table)
	}
	if have, ok := p.tables[table]; ok && have != model {
		return fmt.Errorf("watermelon: table %q already exposes %s", table, have)
	}
	if have, ok := p.byModel[model]; ok && have != table {
		return fmt.Errorf("watermelon: model %s already backs table %q", model, have)
	}
	p.tables[table], p.byModel[model] = model, table
	return nil
}

// Name implements [framework.Plugin].
func (p *Plugin) Name() string { return "watermelon" }

// Setup checks that every exposed model is registered on app.
func (p *Plugin) Setup(app *framework.App) error {
	registered := app.Models()
	for t, m := range p.tables {
		if !slices.Contains(registered, m) {
			return fmt.Errorf("watermelon: table %q: model %s is not registered (register models before app.Use)", t, m)
		}
		p.names = append(p.names, t)
		p.models = append(p.models, m)
	}
	sort.Strings(p.names)
	sort.Strings(p.models)
	if p.cfg.PullLimit == 0 || p.cfg.PullLimit > app.Config().MaxPullLimit {
		p.cfg.PullLimit = app.Config().MaxPullLimit
	}
	p.app = app
	return nil
}

// MountRoutes implements [framework.RouteMounter].
func (p *Plugin) MountRoutes(r gin.IRouter) {
	r.GET(p.cfg.Path, p.handle(p.pull))
	r.POST(p.cfg.Path, p.handle(p.push))
}

//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the routes above, at
// [Config].Path.
func (p *Plugin) OpenAPI() (*openapi3.T, error) {
	return framework.ParseOpenAPIFragment(openAPI, "/watermelon", p.cfg.Path)
}

func (p *Plugin) handle(fn func(c *gin.Context, who framework.Principal) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		who, ok := framework.PrincipalFrom(c.Request.Context())
		if !ok || p.app == nil {
			framework.WriteError(c, framework.NewError(framework.CodeUnauthenticated, "a valid bearer token is required"))
			return
		}
		if err := fn(c, who); err != nil {
			var pe *framework.Error
			if !asError(err, &pe) {
				p.app.Logger().Error("watermelon request failed", "err", err, "path", c.Request.URL.Path)
			}
			framework.WriteError(c, err)
		}
	}
}

// tableChanges is one table's part of the changes object.
type tableChanges struct {
	Created []map[string]json.RawMessage `json:"created"`
	Updated []map[string]json.RawMessage `json:"updated"`
	Deleted []string                     `json:"deleted"`
}

// pullAnswer is the answer of a pull.
type pullAnswer struct {
	Changes   map[string]*tableChanges `json:"changes"`
	Timestamp int64                    `json:"timestamp"`
	HasMore   bool                     `json:"has_more"`
	// SpaceRemoved answers a former member's pull of a shared space.
	SpaceRemoved bool `json:"space_removed,omitempty"`
}

// emptyAnswer is a pull answer with every table and nothing in it.
func (p *Plugin) emptyAnswer() *pullAnswer {
	ans := &pullAnswer{Changes: make(map[string]*tableChanges, len(p.names))}
	for _, t := range p.names {
		ans.Changes[t] = &tableChanges{Created: []map[string]json.RawMessage{}, Updated: []map[string]json.RawMessage{}, Deleted: []string{}}
	}
	return ans
}

func invalidParam(name, msg string) error {
	return &framework.Error{Code: framework.CodeInvalid, Message: name + " " + msg,
		Details: []framework.FieldError{{Path: name, Message: msg}}}
}

// lastPulledAt reads the query parameter: 0 for null or absent (first sync).
func lastPulledAt(c *gin.Context) (int64, error) {
	s := c.Query("last_pulled_at")
	if s == "" || s == "null" || s == "undefined" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, invalidParam("last_pulled_at", "must be null or a timestamp this server returned")
	}
	return n, nil
}

// migrationTables reads the migration parameter and returns the tables it
// needs sent whole.
func (p *Plugin) migrationTables(c *gin.Context) ([]string, error) {
	s := c.Query("migration")
	if s == "" || s == "null" || s == "undefined" {
		return nil, nil
	}
	var m struct {
		Tables  []string `json:"tables"`
		Columns []struct {
			Table string `json:"table"`
		} `json:"columns"`
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, invalidParam("migration", "must be null or WatermelonDB's migration object")
	}
	var out []string
	for _, t := range m.Tables {
		out = append(out, t)
	}
	for _, col := range m.Columns {
		out = append(out, col.Table)
	}
	return out, nil
}

func (p *Plugin) pull(c *gin.Context, who framework.Principal) error {
	since, err := lastPulledAt(c)
	if err != nil {
		return err
	}
	if s := c.Query("schema_version"); s != "" && s != "null" && s != "undefined" {
		if _, err := strconv.Atoi(s); err != nil {
			return invalidParam("schema_version", "must be an integer")
		}
	}
	limit := p.cfg.PullLimit
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return invalidParam("limit", "must be a positive integer")
		}
		limit = min(n, p.cfg.PullLimit)
	}
	migrated, err := p.migrationTables(c)
	if err != nil {
		return err
	}
	space, err := p.spaceParam(c)
	if err != nil {
		return err
	}
	ans := p.emptyAnswer()
	ctx := c.Request.Context()
	// A migration sync first gets the migrated tables whole, then the
	// changes; a record in both is sent once, in its later state.
	var recs []*framework.Record
	var whole []string
	for _, t := range migrated {
		if m, ok := p.tables[t]; ok && !slices.Contains(whole, m) {
			whole = append(whole, m)
		}
	}
	if since > 0 && len(whole) > 0 {
		all, err := p.app.ReadSince(ctx, who, framework.SinceRequest{Models: whole, SkipDeleted: true, Space: space})
		if space != "" && errors.Is(err, framework.ErrForbidden) {
			return p.pullLost(c, who, space, since, limit, err)
		}
		if err != nil {
			return fmt.Errorf("watermelon: migration pull: %w", err)
		}
		recs = all.Records
	}
	resp, err := p.app.ReadSince(ctx, who, framework.SinceRequest{
		Models: p.models, After: since - 1, Limit: limit, SkipDeleted: since == 0, Checkpointed: since > 0,
		MaxBytes: p.app.Config().MaxPullBytes, Space: space,
	})
	if space != "" && errors.Is(err, framework.ErrForbidden) {
		return p.pullLost(c, who, space, since, limit, err)
	}
	if err != nil {
		return fmt.Errorf("watermelon: pull: %w", err)
	}
	if since-1 > resp.Version {
		return framework.NewError(framework.CodeResetRequired, "last_pulled_at is ahead of this server; reset the local database and sync from the start")
	}
	if err := p.fill(ans, append(recs, resp.Records...)); err != nil {
		return err
	}
	ans.Timestamp = resp.Version + 1
	if resp.HasMore {
		ans.HasMore = true
		ans.Timestamp = resp.Records[len(resp.Records)-1].Version + 1
	}
	c.JSON(http.StatusOK, ans)
	return nil
}

// fill files records into the answer: live ones in "updated", tombstones
// in "deleted". A record listed twice is sent once, in its last state.
func (p *Plugin) fill(ans *pullAnswer, recs []*framework.Record) error {
	type key struct{ model, uid string }
	last := make(map[key]int, len(recs))
	for i, rec := range recs {
		last[key{rec.Model, rec.UID}] = i
	}
	for i, rec := range recs {
		t, ok := p.byModel[rec.Model]
		if !ok || last[key{rec.Model, rec.UID}] != i {
			continue
		}
		tc := ans.Changes[t]
		if rec.IsDeleted {
			tc.Deleted = append(tc.Deleted, rec.UID)
			continue
		}
		doc, err := adapter.Flatten(rec)
		if err != nil {
			return err
		}
		tc.Updated = append(tc.Updated, doc)
	}
	return nil
}

// Rejection is one record a push refused, in the push answer.
type Rejection struct {
	Table string `json:"table"`
	ID    string `json:"id"`
	// Code is the reason, as in Ferry's own push results (invalid,
	// quota_exceeded, …; forbidden for another user's record).
	Code   string                 `json:"code,omitempty"`
	Errors []framework.FieldError `json:"errors"`
}

// pushAnswer is the answer of a successful push.
type pushAnswer struct {
	OK       bool        `json:"ok"`
	Rejected []Rejection `json:"rejected"`
}

// pushed is one record of a push with where it came from.
type pushed struct {
	table string
	id    string
	// fields: the record's model merges field by field, so its own policy
	// decides, with field times from _changed (see [Plugin.fieldTimes]).
	fields bool
}

func (p *Plugin) push(c *gin.Context, who framework.Principal) error {
	since, err := lastPulledAt(c)
	if err != nil {
		return err
	}
	var body any
	// WatermelonDB pushes everything at once, so its arrays may be as
	// long as the values cap allows; that cap still bounds the memory.
	lim := p.app.BodyLimits()
	lim.MaxElements = max(lim.MaxElements, lim.MaxValues)
	if err := framework.ReadJSONBodyWithin(c.Request, lim, &body); err != nil {
		return err
	}
	changes, from, rejected, err := p.decodePush(body)
	if err != nil {
		return err
	}
	space, err := p.spaceParam(c)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		ch.Space = space
	}
	// Records of models that merge field by field are decided by their
	// own policy and never conflict; the others by the protocol's rule,
	// all or nothing. Those go first, so that a conflict among them
	// applies nothing of the push.
	var byRule, byFields []int
	for i, src := range from {
		if src.fields {
			byFields = append(byFields, i)
		} else {
			byRule = append(byRule, i)
		}
	}
	ctx := c.Request.Context()
	var resend []adapter.Ref
	for _, r := range rejected {
		if r.ID != "" {
			// Refused before the push (a bad _changed): its server state
			// is sent again like any refused record's.
			resend = append(resend, adapter.Ref{Model: p.tables[r.Table], UID: r.ID, Space: space})
		}
	}
	var conflicts []framework.FieldError
	refuse := func(src pushed, res framework.Result) {
		errs, code := res.Errors, res.Code
		if res.Status == framework.StatusForbidden {
			code = framework.CodeForbidden
			switch {
			case space == "":
				errs = []framework.FieldError{{Path: "", Message: "this record belongs to another user"}}
			case len(errs) == 0:
				errs = []framework.FieldError{{Path: "/space", Message: "you may not write to this space"}}
			}
		}
		rejected = append(rejected, Rejection{Table: src.table, ID: src.id, Code: code, Errors: errs})
		resend = append(resend, adapter.Ref{Model: res.Model, UID: res.UID, Space: space})
	}
	err = p.pushEach(ctx, who, changes, byRule, framework.PushOptions{Policy: changedSince(since), AbortOnStale: true},
		func(i int, res framework.Result) {
			switch res.Status {
			case framework.StatusStale:
				conflicts = append(conflicts, framework.FieldError{Path: "/" + from[i].table + "/" + from[i].id,
					Message: "changed on the server after last_pulled_at"})
			case framework.StatusRejected, framework.StatusForbidden:
				refuse(from[i], res)
			}
		})
	if adapter.IsConflict(err) {
		return &framework.Error{Code: framework.CodeConflict,
			Message: "records changed on the server after last_pulled_at; pull, merge and push again", Details: conflicts}
	}
	if err != nil {
		return fmt.Errorf("watermelon: push: %w", err)
	}
	err = p.pushEach(ctx, who, changes, byFields, framework.PushOptions{}, func(i int, res framework.Result) {
		switch res.Status {
		case framework.StatusStale:
			rejected = append(rejected, Rejection{Table: from[i].table, ID: from[i].id, Code: framework.CodeConflict,
				Errors: []framework.FieldError{{Path: "", Message: "lost to the model's conflict policy: the server kept its state"}}})
			fallthrough
		case framework.StatusApplied:
			// The device marks the record synced. When the server's state
			// differs from what it sent and its next pull would not bring
			// it (the device had pulled that version), it is made news.
			if rec := res.Record; rec != nil && rec.Version < since && !samePushed(changes[i], rec) {
				resend = append(resend, adapter.Ref{Model: res.Model, UID: res.UID, Space: space})
			}
		case framework.StatusRejected, framework.StatusForbidden:
			refuse(from[i], res)
		}
	})
	if err != nil {
		return fmt.Errorf("watermelon: push: %w", err)
	}
	if len(resend) > 0 {
		if _, err := adapter.Resend(ctx, p.app, who, resend); err != nil {
			return fmt.Errorf("watermelon: correct refused records: %w", err)
		}
		p.app.Logger().Info("watermelon push refused records", "user", who.UserID, "count", len(resend))
	}
	if rejected == nil {
		rejected = []Rejection{}
	}
	c.JSON(http.StatusOK, pushAnswer{OK: true, Rejected: rejected})
	return nil
}

// pushEach pushes the changes at indices idx with opts, at most
// MaxChanges per push, and hands each result to seen with its change's
// index. It stops at the first error (a conflict of AbortOnStale
// included, after the results of that push were seen).
func (p *Plugin) pushEach(ctx context.Context, who framework.Principal, changes []*framework.Change, idx []int, opts framework.PushOptions, seen func(i int, res framework.Result)) error {
	step := p.app.Config().MaxChanges
	for lo := 0; lo < len(idx); lo += step {
		part := idx[lo:min(lo+step, len(idx))]
		batch := make([]*framework.Change, len(part))
		for j, i := range part {
			batch[j] = changes[i]
		}
		results, err := p.app.PushWith(ctx, who, batch, opts)
		if err != nil && !adapter.IsConflict(err) {
			return err
		}
		for j, res := range results {
			seen(part[j], res)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// samePushed reports whether rec is the state ch pushed.
func samePushed(ch *framework.Change, rec *framework.Record) bool {
	return ch.IsDeleted == rec.IsDeleted && (ch.IsDeleted || framework.JSONEqual(ch.Data, rec.Data))
}

// changedSince is the protocol's concurrency rule: a pushed record loses
// (and the push is refused) when the server's copy changed after the
// client's last pull, whatever the clocks say. Deleting a record the
// server already deleted is not a conflict.
func changedSince(lastPulledAt int64) framework.ConflictPolicy {
	return framework.PolicyFunc(func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
		if c.Stored.Version < lastPulledAt || c.Stored.IsDeleted && c.Incoming.IsDeleted {
			return framework.Resolution{Outcome: framework.TakeIncoming}, nil
		}
		return framework.Resolution{Outcome: framework.KeepStored}, nil
	})
}

// decodePush turns the changes object into changes. Records with an id
// that is not a string are refused in place; an envelope that is not the
// changes object is an error.
func (p *Plugin) decodePush(body any) ([]*framework.Change, []pushed, []Rejection, error) {
	obj, ok := body.(map[string]any)
	if !ok {
		return nil, nil, nil, &framework.Error{Code: framework.CodeInvalid, Message: "the body must be WatermelonDB's changes object"}
	}
	now := adapter.Now(p.app)
	fields := p.fieldModels()
	var changes []*framework.Change
	var from []pushed
	var rejected []Rejection
	tables := make([]string, 0, len(obj))
	for t := range obj {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		model, ok := p.tables[t]
		if !ok {
			return nil, nil, nil, &framework.Error{Code: framework.CodeInvalid, Message: "unknown table " + strconv.Quote(t),
				Details: []framework.FieldError{{Path: "/" + t, Message: "this server does not expose this table"}}}
		}
		tc, ok := obj[t].(map[string]any)
		if !ok {
			return nil, nil, nil, &framework.Error{Code: framework.CodeInvalid, Message: "invalid changes object",
				Details: []framework.FieldError{{Path: "/" + t, Message: "must be an object with created, updated and deleted"}}}
		}
		for _, kind := range []string{"created", "updated", "deleted"} {
			v, present := tc[kind]
			if !present || v == nil {
				continue
			}
			items, ok := v.([]any)
			if !ok {
				return nil, nil, nil, &framework.Error{Code: framework.CodeInvalid, Message: "invalid changes object",
					Details: []framework.FieldError{{Path: "/" + t + "/" + kind, Message: "must be an array"}}}
			}
			for i, item := range items {
				ch := &framework.Change{Model: model, ModifyAt: now}
				if kind == "deleted" {
					id, ok := item.(string)
					if !ok || id == "" {
						rejected = append(rejected, Rejection{Table: t, Code: framework.CodeInvalid, Errors: []framework.FieldError{
							{Path: fmt.Sprintf("/%s/deleted/%d", t, i), Message: "must be a record id"}}})
						continue
					}
					ch.UID, ch.IsDeleted = id, true
				} else {
					id, data, msg := adapter.Split(item, "_status", "_changed")
					if msg == "" && fields[model] && kind == "updated" {
						ch.FieldsModifyAt, msg = fieldTimes(item.(map[string]any)["_changed"], data, now)
					}
					if msg != "" {
						rejected = append(rejected, Rejection{Table: t, ID: id, Code: framework.CodeInvalid, Errors: []framework.FieldError{
							{Path: fmt.Sprintf("/%s/%s/%d", t, kind, i), Message: msg}}})
						continue
					}
					ch.UID, ch.Data = id, data
				}
				changes = append(changes, ch)
				from = append(from, pushed{table: t, id: ch.UID, fields: fields[model]})
			}
		}
	}
	return changes, from, rejected, nil
}

// fieldModels says, per exposed model, whether its policy merges field
// by field ([framework.UsesFieldTimes]).
func (p *Plugin) fieldModels() map[string]bool {
	out := make(map[string]bool, len(p.models))
	for _, m := range p.models {
		if policy, err := p.app.Policy(m); err == nil {
			out[m] = framework.UsesFieldTimes(policy)
		}
	}
	return out
}

// fieldTimes turns an updated row's _changed (the columns edited on the
// device since its last sync, comma-separated) into the change's field
// times: the edited columns at the change's modify_at, every other column
// of the row at [adapter.Unedited]. Names that are not columns of the row
// are ignored. A row without _changed (absent or null) names no times, so
// all its columns count as edited. msg is set when _changed is not a
// string.
func fieldTimes(changed any, data json.RawMessage, at framework.Time) (map[string]framework.Time, string) {
	if changed == nil {
		return nil, ""
	}
	list, ok := changed.(string)
	if !ok {
		return nil, "_changed must be a string: the comma-separated names of the columns edited since the last sync"
	}
	var row map[string]json.RawMessage
	if err := json.Unmarshal(data, &row); err != nil {
		return nil, ""
	}
	var edited []string
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			if _, ok := row[name]; ok {
				edited = append(edited, name)
			}
		}
	}
	return adapter.FieldTimes(data, edited, at), ""
}
