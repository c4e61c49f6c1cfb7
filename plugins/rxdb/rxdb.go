// Package rxdb serves RxDB's HTTP replication protocol on Ferry's core, so
// an RxDB app's replicateRxCollection can use a Ferry server as its back
// end. Documents written through it are the same records the native
// protocol (/sync/push, /sync/pull) and other adapters read and write:
// same storage, versions, owner permissions, validation and hooks.
//
// Routes per exposed collection, relative to the sync mount point (behind
// its authentication):
//
//	GET  /rxdb/{collection}/pull?seq=<n>&limit=<n>
//	POST /rxdb/{collection}/push
//	GET  /rxdb/{collection}/pull/stream   (Server-Sent Events)
//
// # Pull
//
// The answer is {"documents": [{"id", …fields, "_deleted": bool}],
// "checkpoint": {"seq": n}}: the caller's documents changed after seq, in
// ascending order, at most limit of them (default and cap: the App's
// DefaultPullLimit and MaxPullLimit). The checkpoint is that of the last
// document returned, or the request's own when nothing is newer; it is
// never null. seq is the record's version in the caller's scope (see
// [framework.App.ReadSince]); 0 or absent means from the start. A seq
// ahead of the caller's scope (the server's database was replaced) is
// answered as if it were 0, so the client pulls everything again; a seq
// older than the tombstone purge horizon is answered 410 reset_required.
// Keep one local database per user: checkpoints are per user.
//
// # Push
//
// The body is an array of rows {"assumedMasterState"?, "newDocumentState"}
// (at most [framework.Config.MaxChanges]). The answer — always 200 when
// the body is well formed — is the array of the server's current
// documents for the rows that were not stored as sent ([] when every row
// was). The server stamps its receive time as modify_at. What decides a
// row the server holds depends on the model's conflict policy
// ([framework.App.Policy]):
//
//   - A policy that merges field by field ([framework.UsesFieldTimes]:
//     policies.FieldLWW, policies.Automerge) decides, as for a native
//     change, with field times derived from assumedMasterState, the state
//     the device's document was based on: the fields in which
//     newDocumentState differs from it (changed, added or removed; see
//     [adapter.EditedFields]) were edited on the device, at the change's
//     modify_at; every other field is named at [adapter.Unedited] (the
//     epoch), so it never wins against the server's. A row without
//     assumedMasterState names no field times (every field counts as
//     edited). A row the policy merged or that lost is answered with the
//     server's document, like a conflict, and RxDB's conflict handler
//     takes it (RxDB's default handler keeps the server's state, which
//     holds the device's winning edits): two devices that edited
//     different fields of a document from the same state both keep their
//     edits.
//   - Any other policy (last-writer-wins, FirstWriterWins, ServerWins,
//     ClientWins, a PolicyFunc) is not asked: the protocol's rule decides.
//     A row is written when the server has no such document, or when the
//     server's document equals assumedMasterState (JSON equality, key
//     order ignored, "_deleted" included); otherwise it conflicts and is
//     answered with the server's document.
//
// A deleted document's fields are not written: the tombstone keeps the
// server's last data, so a deletion is never refused for its fields.
//
// A row the server refuses (schema or validation failure, a hook's veto,
// an id that is not a valid uid, another user's document) is answered like
// a conflict, with the server's state of the document, read with
// [framework.App.Read] (nothing is written) — a deleted document {"id",
// "_deleted": true} when the server holds none — so the client's conflict
// handler replaces the refused state and one bad document cannot block
// replication. A row that is not an object with a newDocumentState
// carrying a string id fails the whole request with 400 invalid, in the
// protocol's error shape.
//
// # Stream
//
// /pull/stream sends "data: <json>" events: first the JSON string
// "RESYNC" (so the client pulls whatever it missed while disconnected),
// then {"documents", "checkpoint"} whenever a push changed the caller's
// documents of the collection, whichever protocol it came through. Each
// event is read from the store after the stream's own position, in one
// snapshot, so a stream never skips a change even when two commits'
// after-commit hooks run out of order. A comment line is sent every
// [Config.KeepAlive]. The wake-ups are in-process: with several server
// replicas a client hears only of pushes its own replica served (until
// the realtime plugin brings fan-out through PostgreSQL), and catches up
// on its next pull. Call [Plugin.Close] when the HTTP server shuts down.
//
// A stream holds a connection and some memory for as long as it lives, so
// streams are bounded:
//
//   - One event carries at most [Config.MaxEventDocuments] documents and
//     [Config.MaxEventBytes] bytes. When more changed since the last event
//     (a large push), the event is "RESYNC" instead and the client pulls
//     the changes page by page, as RxDB does after every reconnection. The
//     commit tells the stream how much it wrote, so a stream reads nothing
//     from the store for a push that is too large, and otherwise no more
//     documents than were announced (and one, to learn if there are more).
//   - Each write (event or comment) has [Config.WriteTimeout]: a client
//     that stops reading is dropped, and what its stream held is freed.
//   - A user holds at most [Config.MaxStreamsPerUser] streams (more are
//     answered 429 rate_limited), the plugin at most [Config.MaxStreams]
//     (503 unavailable); both answers carry Retry-After.
//   - A stream ends when the credentials that opened it are revoked
//     (checked again with [framework.App.Authenticate] at every
//     keep-alive, after the comment ": the token is no longer valid;
//     reconnect with a fresh one") or expire
//     ([framework.Principal.ExpiresAt], on the App's clock), after the
//     comment ": the token expired; reconnect with a fresh one"; the
//     client reconnects with a fresh token.
//
// Streams set their own write deadlines and clear the connection's read
// deadline (with http.ResponseController), so the HTTP server's
// ReadTimeout and WriteTimeout do not cut them.
//
// # Shared spaces
//
// With [Config].CheckpointSecret set (and the App's Config.Spaces), every
// route takes ?space=<uid>: the collection of that shared space, one local
// RxDB collection per space. A member pulls the space's documents with
// checkpoints {"seq", "sig"}, sig an HMAC of (user, space, seq) under the
// secret; a push writes to the space with the member's role (a reader's
// rows are refused, answered with the server's state, and explained in
// the [RefusedHeader] header); the stream follows the space and ends
// when its user loses it. Anyone who does not read the space gets 403
// forbidden, the answer a space that does not exist gets, unless the pull
// carries a checkpoint signed for that user and space: then it lists,
// page by page, the ids of every document the device may hold
// ([framework.App.ReadLost]) as deleted documents, with checkpoints
// {"seq", "sig", "upto", "drop"}, and then nothing.
package rxdb

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/adapter"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// Config configures the plugin. The zero value serves the protocol with no
// collections; add them with [Plugin.Expose] or Collections.
type Config struct {
	// Collections maps an RxDB collection name to the registered model that
	// backs it, e.g. {"tasks": "data.Task"}. A model backs at most one
	// collection. The model's data fields are the documents' fields
	// (besides the primary key "id"); it must not have fields named id,
	// _deleted, _rev, _meta or _attachments.
	Collections map[string]string
	// Path is where the routes are mounted, relative to the sync mount
	// point (default "/rxdb").
	Path string
	// KeepAlive is the interval of comment lines on a stream (default
	// 25s): they keep proxies from closing an idle stream and find
	// connections that are gone.
	KeepAlive time.Duration
	// WriteTimeout bounds each write of a stream, an event or a comment
	// line (default 30s). A client that does not take one in that time
	// is dropped, so a reader that stopped reading cannot hold the
	// server's memory; it reconnects and gets "RESYNC". The deadline is
	// set with http.ResponseController, so the stream is not bound by
	// the server's own WriteTimeout.
	WriteTimeout time.Duration
	// MaxStreamsPerUser caps the open streams of one user, over all
	// collections (default 100). One more is answered 429 rate_limited
	// with Retry-After.
	MaxStreamsPerUser int
	// MaxStreams caps the open streams of the plugin (default 10,000).
	// One more is answered 503 unavailable with Retry-After. Keep it
	// below the HTTP server's connection cap, so that streams cannot take
	// every connection.
	MaxStreams int
	// MaxEventDocuments (default 100) and MaxEventBytes (default 128 KiB)
	// bound one stream event: when the changes since the stream's last
	// event are more documents, or more bytes of document data (each
	// document counts its stored data, its id and 32 bytes), the stream
	// sends "RESYNC" instead, and the client pulls them page by page. A
	// stream reads at most that many documents from the store per event.
	MaxEventDocuments int
	MaxEventBytes     int64
	// Hints, when set, wakes the streams from every replica: a push
	// served by another replica reaches this one's streams too. The
	// realtime plugin is one ([github.com/ferrysync/ferry/plugins/realtime.Plugin]).
	// Without it streams hear only of this replica's pushes.
	Hints HintSource
	// CheckpointSecret signs the checkpoints of shared spaces' collections
	// (?space=), at least [MinCheckpointSecret] bytes of randomness, the
	// same on every replica. A removed member's device proves with its
	// signed checkpoint that it read the space, and only then is told
	// which documents to delete. Without it the routes serve no ?space=
	// (400 invalid). Keep it secret: it lets its holder name the ids of
	// any space's documents to anyone.
	CheckpointSecret []byte
	// PreviousCheckpointSecrets are still accepted on checkpoints (not
	// used to sign), for rotating CheckpointSecret: a member's next pull
	// is signed with the new secret, but a device removed while it was
	// offline holds a checkpoint of the old one, and once that secret is
	// dropped its pull is answered 403 and the device keeps the space's
	// documents. Keep a previous secret for as long as devices may stay
	// offline.
	PreviousCheckpointSecrets [][]byte
}

// HintSource delivers hints of changes from every replica of a
// deployment: the scopes (owners) that changed, or resync when hints may
// have been lost. fn must return quickly.
type HintSource interface {
	OnHint(fn func(scopes []string, resync bool)) (cancel func())
}

// Defaults of [Config].
const (
	DefaultKeepAlive         = 25 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultMaxStreamsPerUser = 100
	DefaultMaxStreams        = 10_000
	DefaultMaxEventDocuments = 100
	DefaultMaxEventBytes     = 128 << 10
)

// Plugin serves RxDB's replication protocol; attach it with app.Use.
type Plugin struct {
	cfg         Config
	app         *framework.App
	collections map[string]string // collection -> model
	byModel     map[string]string // model -> collection
	cancelHints func()
	hub         *hub
}

var (
	_ framework.Plugin       = (*Plugin)(nil)
	_ framework.RouteMounter = (*Plugin)(nil)
	_ framework.Closer       = (*Plugin)(nil)
)

// New validates cfg and returns the plugin.
func New(cfg Config) (*Plugin, error) {
	if cfg.Path == "" {
		cfg.Path = "/rxdb"
	}
	if cfg.Path[0] != '/' {
		return nil, fmt.Errorf("rxdb: Config.Path %q must start with /", cfg.Path)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"KeepAlive", &cfg.KeepAlive, DefaultKeepAlive}, {"WriteTimeout", &cfg.WriteTimeout, DefaultWriteTimeout}} {
		if *d.v < 0 {
			return nil, fmt.Errorf("rxdb: Config.%s %s must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxStreamsPerUser", &cfg.MaxStreamsPerUser, DefaultMaxStreamsPerUser},
		{"MaxStreams", &cfg.MaxStreams, DefaultMaxStreams},
		{"MaxEventDocuments", &cfg.MaxEventDocuments, DefaultMaxEventDocuments},
	} {
		if *n.v < 0 {
			return nil, fmt.Errorf("rxdb: Config.%s %d must not be negative", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if cfg.MaxEventBytes < 0 {
		return nil, fmt.Errorf("rxdb: Config.MaxEventBytes %d must not be negative", cfg.MaxEventBytes)
	}
	if cfg.MaxEventBytes == 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if n := len(cfg.CheckpointSecret); n > 0 && n < MinCheckpointSecret {
		return nil, fmt.Errorf("rxdb: Config.CheckpointSecret has %d bytes; at least %d are needed", n, MinCheckpointSecret)
	}
	for i, k := range cfg.PreviousCheckpointSecrets {
		if len(k) < MinCheckpointSecret {
			return nil, fmt.Errorf("rxdb: Config.PreviousCheckpointSecrets[%d] has %d bytes; at least %d are needed", i, len(k), MinCheckpointSecret)
		}
	}
	if len(cfg.PreviousCheckpointSecrets) > 0 && len(cfg.CheckpointSecret) == 0 {
		return nil, errors.New("rxdb: Config.PreviousCheckpointSecrets is set without a CheckpointSecret")
	}
	p := &Plugin{cfg: cfg, collections: map[string]string{}, byModel: map[string]string{},
		hub: newHub(cfg.MaxStreamsPerUser, cfg.MaxStreams)}
	names := make([]string, 0, len(cfg.Collections))
	for n := range cfg.Collections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.Expose(n, cfg.Collections[n]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Expose makes model available as RxDB collection collection. Call it
// before app.Use.
func (p *Plugin) Expose(collection, model string) error {
	if !adapter.NameRE.MatchString(collection) {
		return fmt.Errorf("rxdb: collection name %q must be 1 to 64 letters, digits, _ or -, not starting with a digit or -", collection)
	}
	if model == "" {
		return fmt.Errorf("rxdb: collection %q: model name is empty", collection)
	}
	if have, ok := p.collections[collection]; ok && have != model {
		return fmt.Errorf("rxdb: collection %q already exposes %s", collection, have)
	}
	if have, ok := p.byModel[model]; ok && have != collection {
		return fmt.Errorf("rxdb: model %s already backs collection %q", model, have)
	}
	p.collections[collection], p.byModel[model] = model, collection
	return nil
}

// Name implements [framework.Plugin].
func (p *Plugin) Name() string { return "rxdb" }

// Setup checks that every exposed model is registered on app and binds the
// after-commit hook "rxdb.stream" that feeds the streams.
func (p *Plugin) Setup(app *framework.App) error {
	registered := app.Models()
	for c, m := range p.collections {
		if !slices.Contains(registered, m) {
			return fmt.Errorf("rxdb: collection %q: model %s is not registered (register models before app.Use)", c, m)
		}
	}
	p.app = app
	app.OnCommit().Bind(&hook.Handler[*framework.CommitEvent]{ID: "rxdb.stream", Func: p.onCommit})
	if p.cfg.Hints != nil {
		p.cancelHints = p.cfg.Hints.OnHint(p.onHint)
	}
	return nil
}

// onHint wakes the streams of the scopes another replica (or this one)
// changed. A hint does not say what changed, so a woken stream reads up
// to MaxEventDocuments and answers "RESYNC" when there is more.
func (p *Plugin) onHint(scopes []string, resync bool) {
	if resync {
		p.hub.wakeAll()
		return
	}
	for _, owner := range scopes {
		for _, coll := range p.byModel {
			p.hub.wakeUnknown(owner + "\x00" + coll)
		}
	}
}

// Close implements [framework.Closer]: it ends the open streams (clients
// reconnect, to another replica or after a restart, and get "RESYNC");
// streams opened afterwards end at once. [framework.App.Close] calls it;
// call that when the HTTP server shuts down (e.g. from
// http.Server.RegisterOnShutdown), since a graceful shutdown otherwise
// waits for streams that never end. It is safe to call more than once.
func (p *Plugin) Close() error {
	if p.cancelHints != nil {
		p.cancelHints()
	}
	p.hub.close()
	return nil
}

// Streams returns the number of open streams, for metrics and tests.
func (p *Plugin) Streams() int { return p.hub.open() }

// Config returns the plugin's configuration with its defaults filled in.
func (p *Plugin) Config() Config { return p.cfg }

// MountRoutes implements [framework.RouteMounter].
func (p *Plugin) MountRoutes(r gin.IRouter) {
	g := r.Group(p.cfg.Path)
	g.GET("/:collection/pull", p.handle(p.pull))
	g.POST("/:collection/push", p.handle(p.push))
	g.GET("/:collection/pull/stream", p.handle(p.stream))
}

// openAPI describes the routes, at the default Path.
//
//go:embed openapi.json
var openAPI []byte

var _ framework.OpenAPIDescriber = (*Plugin)(nil)

// OpenAPI implements [framework.OpenAPIDescriber]: the routes above, at
// [Config].Path.
func (p *Plugin) OpenAPI() (*openapi3.T, error) {
	return framework.ParseOpenAPIFragment(openAPI, "/rxdb", p.cfg.Path)
}

func (p *Plugin) handle(fn func(c *gin.Context, who framework.Principal, collection, model string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		who, ok := framework.PrincipalFrom(c.Request.Context())
		if !ok || p.app == nil {
			framework.WriteError(c, framework.NewError(framework.CodeUnauthenticated, "a valid bearer token is required"))
			return
		}
		name := c.Param("collection")
		model, ok := p.collections[name]
		if !ok {
			framework.WriteError(c, framework.NewError(framework.CodeNotFound, "no collection %q", name))
			return
		}
		if err := fn(c, who, name, model); err != nil {
			var pe *framework.Error
			if !errors.As(err, &pe) || pe.Code == framework.CodeInternal {
				p.app.Logger().Error("rxdb request failed", "err", err, "path", c.Request.URL.Path)
			}
			framework.WriteError(c, err)
		}
	}
}

// Checkpoint is the position of a pull. Sig, UpTo and Drop are set on
// shared spaces' collections only: Sig signs (user, space, seq), and for a
// removed member's device, which is listed what it must delete, UpTo too
// (the listing's fixed bound); Drop is its position in that listing.
type Checkpoint struct {
	Seq  int64  `json:"seq"`
	Sig  string `json:"sig,omitempty"`
	UpTo *int64 `json:"upto,omitempty"`
	Drop *int64 `json:"drop,omitempty"`
}

// Batch is a pull answer and a stream event.
type Batch struct {
	Documents  []map[string]json.RawMessage `json:"documents"`
	Checkpoint Checkpoint                   `json:"checkpoint"`
}

func invalidParam(name, msg string) error {
	return &framework.Error{Code: framework.CodeInvalid, Message: name + " " + msg,
		Details: []framework.FieldError{{Path: name, Message: msg}}}
}

// Document turns a record into an RxDB document: "id", the data fields and
// "_deleted".
func Document(rec *framework.Record) (map[string]json.RawMessage, error) {
	doc, err := adapter.Flatten(rec)
	if err != nil {
		return nil, err
	}
	doc["_deleted"] = json.RawMessage(strconv.FormatBool(rec.IsDeleted))
	return doc, nil
}

func (p *Plugin) pull(c *gin.Context, who framework.Principal, _, model string) error {
	var seq int64
	if s := c.Query("seq"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return invalidParam("seq", "must be a checkpoint seq this server returned, or 0")
		}
		seq = n
	}
	cfg := p.app.Config()
	limit := cfg.DefaultPullLimit
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return invalidParam("limit", "must be a positive integer")
		}
		limit = min(n, cfg.MaxPullLimit)
	}
	space, err := p.spaceParam(c)
	if err != nil {
		return err
	}
	if space != "" {
		return p.pullSpace(c, who, model, space, seq, limit)
	}
	req := framework.SinceRequest{Models: []string{model}, After: seq, Limit: limit}
	resp, err := p.app.ReadSince(c.Request.Context(), who, req)
	if err != nil {
		return fmt.Errorf("rxdb: pull: %w", err)
	}
	if seq > resp.Version {
		// A checkpoint from the future: the server's database was replaced
		// (or the local database changed users). Start over rather than
		// wait for versions the client believes it has seen.
		seq, req.After = 0, 0
		if resp, err = p.app.ReadSince(c.Request.Context(), who, req); err != nil {
			return fmt.Errorf("rxdb: pull: %w", err)
		}
	}
	b, err := batch(resp.Records, seq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, b)
	return nil
}

// batch builds a pull answer; seq is the checkpoint when recs is empty.
func batch(recs []*framework.Record, seq int64) (*Batch, error) {
	b := &Batch{Documents: make([]map[string]json.RawMessage, 0, len(recs)), Checkpoint: Checkpoint{Seq: seq}}
	for _, rec := range recs {
		doc, err := Document(rec)
		if err != nil {
			return nil, err
		}
		b.Documents = append(b.Documents, doc)
		b.Checkpoint.Seq = rec.Version
	}
	return b, nil
}

// stripped are the keys of an RxDB document that are not the record's data.
var stripped = []string{"_deleted", "_rev", "_meta", "_attachments"}

// docChange turns a decoded RxDB document into a change (without model and
// modify_at).
func docChange(v any) (*framework.Change, string) {
	id, data, msg := adapter.Split(v, stripped...)
	if msg != "" {
		return nil, msg
	}
	ch := &framework.Change{UID: id, Data: data}
	ch.IsDeleted, _ = v.(map[string]any)["_deleted"].(bool)
	return ch, ""
}

// deletion drops the data of a deleting change: the tombstone keeps the
// server's last data, and a deletion is never refused for its fields.
func deletion(ch *framework.Change) {
	if ch.IsDeleted {
		ch.Data = nil
	}
}

// asWritten reports whether rec, the stored result of ch, is ch's new
// state: same deletion and, for a live document, the same data.
func asWritten(ch *framework.Change, rec *framework.Record) bool {
	return ch.IsDeleted == rec.IsDeleted && (ch.IsDeleted || framework.JSONEqual(ch.Data, rec.Data))
}

// matchesAssumed is RxDB's concurrency rule: the incoming row wins only
// when the client knew the stored state exactly.
var matchesAssumed = framework.PolicyFunc(func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
	if c.Assumed != nil && c.Assumed.IsDeleted == c.Stored.IsDeleted && framework.JSONEqual(c.Assumed.Data, c.Stored.Data) {
		return framework.Resolution{Outcome: framework.TakeIncoming}, nil
	}
	return framework.Resolution{Outcome: framework.KeepStored}, nil
})

func (p *Plugin) push(c *gin.Context, who framework.Principal, _, model string) error {
	cfg := p.app.Config()
	var body any
	if err := framework.ReadJSONBody(c.Request, cfg.MaxBodyBytes, &body); err != nil {
		return err
	}
	rows, ok := body.([]any)
	if !ok {
		return framework.NewError(framework.CodeInvalid, "the body must be an array of {assumedMasterState?, newDocumentState}")
	}
	if len(rows) > cfg.MaxChanges {
		return framework.NewError(framework.CodeTooLarge, "a push carries at most %d rows; lower the push batchSize", cfg.MaxChanges)
	}
	space, err := p.spaceParam(c)
	if err != nil {
		return err
	}
	if space != "" {
		if err := p.readSpace(c.Request.Context(), who, model, space); err != nil {
			return err
		}
	}
	now := adapter.Now(p.app)
	fields := false
	if policy, err := p.app.Policy(model); err == nil {
		fields = framework.UsesFieldTimes(policy)
	}
	changes := make([]*framework.Change, len(rows))
	var bad []framework.FieldError
	for i, row := range rows {
		obj, ok := row.(map[string]any)
		if !ok {
			bad = append(bad, framework.FieldError{Path: fmt.Sprintf("/%d", i), Message: "must be an object"})
			continue
		}
		ch, msg := docChange(obj["newDocumentState"])
		if msg != "" {
			bad = append(bad, framework.FieldError{Path: fmt.Sprintf("/%d/newDocumentState", i), Message: msg})
			continue
		}
		deletion(ch)
		ch.Model, ch.ModifyAt, ch.Space = model, now, space
		if a, present := obj["assumedMasterState"]; present && a != nil {
			assumed, msg := docChange(a)
			if msg != "" {
				bad = append(bad, framework.FieldError{Path: fmt.Sprintf("/%d/assumedMasterState", i), Message: msg})
				continue
			}
			ch.Assumed = &framework.Record{Model: model, UID: assumed.UID, IsDeleted: assumed.IsDeleted, Data: assumed.Data}
			if fields && !ch.IsDeleted {
				// The fields that differ from the assumed state are the
				// device's edits; the others were the server's already.
				if edited, ok := adapter.EditedFields(assumed.Data, ch.Data); ok {
					ch.FieldsModifyAt = adapter.FieldTimes(ch.Data, edited, now)
				}
			}
		}
		changes[i] = ch
	}
	if len(bad) > 0 {
		return &framework.Error{Code: framework.CodeInvalid, Message: "invalid push rows", Details: bad}
	}
	ctx := c.Request.Context()
	// A model that merges field by field is decided by its own policy;
	// the others by the protocol's rule.
	opts := framework.PushOptions{Policy: matchesAssumed}
	if fields {
		opts.Policy = nil
	}
	results, err := p.app.PushWith(ctx, who, changes, opts)
	if err != nil {
		return fmt.Errorf("rxdb: push: %w", err)
	}
	conflicts := make([]map[string]json.RawMessage, 0)
	var refused []string
	var reasons []Refusal
	for i, res := range results {
		switch res.Status {
		case framework.StatusApplied:
			if !fields || res.Record == nil || asWritten(changes[i], res.Record) {
				break
			}
			// The policy merged: the server's document is not the row's
			// new state, so it is answered like a conflict and RxDB's
			// conflict handler takes it. (Left to the pull, it could be
			// missed: RxDB skips a document it pulls while its push is in
			// flight, and its checkpoint moves past it.)
			fallthrough
		case framework.StatusStale:
			doc, err := Document(res.Record)
			if err != nil {
				return err
			}
			conflicts = append(conflicts, doc)
		case framework.StatusRejected, framework.StatusForbidden:
			refused = append(refused, res.UID)
			reasons = append(reasons, Refusal{ID: res.UID, Status: res.Status, Code: res.Code, Errors: res.Errors})
		}
	}
	if len(refused) > 0 {
		state, err := p.serverState(ctx, who, space, model, refused)
		if err != nil {
			return fmt.Errorf("rxdb: refused rows: %w", err)
		}
		for _, uid := range refused {
			rec, ok := state[uid]
			if !ok {
				rec = &framework.Record{Model: model, UID: uid, IsDeleted: true}
			}
			doc, err := Document(rec)
			if err != nil {
				return err
			}
			conflicts = append(conflicts, doc)
		}
		p.app.Logger().Info("rxdb push refused rows", "user", who.UserID, "count", len(refused))
		c.Header(RefusedHeader, refusedHeader(reasons))
		c.Header(RefusedCountHeader, strconv.Itoa(len(reasons)))
	}
	c.JSON(http.StatusOK, conflicts)
	return nil
}

// onCommit wakes the streams of the owners and collections a push
// touched, telling them how much it wrote.
func (p *Plugin) onCommit(e *framework.CommitEvent) error {
	var sizes map[string]*pending
	for _, rec := range e.Records {
		if rec.Model == framework.MemberModel || rec.Model == framework.SpaceModel {
			// Membership changed: the space's streams check whether their
			// user still reads it (a removed member's stream ends).
			for coll := range p.collections {
				p.hub.wakeUnknown(rec.Owner + "\x00" + coll)
			}
			continue
		}
		if coll, ok := p.byModel[rec.Model]; ok {
			key := rec.Owner + "\x00" + coll
			if sizes == nil {
				sizes = map[string]*pending{}
			}
			if sizes[key] == nil {
				sizes[key] = &pending{}
			}
			sizes[key].add(1, docBytes(rec))
		}
	}
	for key, size := range sizes {
		p.hub.wake(key, size.docs, size.bytes)
	}
	return e.Next()
}

// docBytes is what a record counts against [Config.MaxEventBytes]: about
// the size of its document in an event.
func docBytes(rec *framework.Record) int64 {
	return int64(len(rec.Data) + len(rec.UID) + 32)
}

var (
	resyncEvent    = []byte("data: \"RESYNC\"\n\n")
	keepAliveEvent = []byte(": keep-alive\n\n")
	expiredEvent   = []byte(": the token expired; reconnect with a fresh one\n\n")
	revokedEvent   = []byte(": the token is no longer valid; reconnect with a fresh one\n\n")
)

func (p *Plugin) stream(c *gin.Context, who framework.Principal, collection, model string) error {
	var expired <-chan time.Time
	if !who.ExpiresAt.IsZero() {
		left := who.ExpiresAt.Sub(p.app.Config().Now())
		if left <= 0 {
			return framework.NewError(framework.CodeUnauthenticated, "the token has expired")
		}
		t := time.NewTimer(left)
		defer t.Stop()
		expired = t.C
	}
	space, err := p.spaceParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	if space != "" {
		// A non-member is refused before anything is sent.
		if err := p.readSpace(ctx, who, model, space); err != nil {
			return err
		}
	}
	sub, err := p.hub.subscribe(who.UserID, key(who, space, collection))
	switch {
	case errors.Is(err, errUserStreams):
		return framework.StreamRefused(true, p.cfg.MaxStreamsPerUser)
	case errors.Is(err, errTotalStreams):
		p.app.Logger().Warn("rxdb stream refused: the server holds its maximum of streams", "max", p.cfg.MaxStreams)
		return framework.StreamRefused(false, p.cfg.MaxStreams)
	case err != nil:
		return err
	}
	defer p.hub.unsubscribe(sub)
	// The stream's position: what is committed now is the business of the
	// client's pull after "RESYNC"; the stream sends what comes later.
	seq, err := p.position(ctx, who, model, space)
	if errors.Is(err, framework.ErrForbidden) {
		return err // lost between the check and now
	}
	if err != nil {
		return fmt.Errorf("rxdb: stream: %w", err)
	}
	w := newStreamWriter(c, p.cfg.WriteTimeout)
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	if w.send(resyncEvent) != nil {
		return nil
	}
	tick := time.NewTicker(p.cfg.KeepAlive)
	defer tick.Stop()
	for {
		var ev []byte
		select {
		case <-ctx.Done():
			return nil
		case <-sub.done:
			return nil
		case <-expired:
			_ = w.send(expiredEvent)
			return nil
		case <-tick.C:
			if !p.app.StillAuthenticated(c.Request, who) {
				_ = w.send(revokedEvent)
				return nil
			}
			ev = keepAliveEvent
		case <-sub.notify:
			ev, seq, err = p.event(ctx, who, model, space, seq, p.hub.take(sub))
			if errors.Is(err, framework.ErrForbidden) {
				// The user lost the space: nothing more of it is sent. The
				// client's pull after "RESYNC" gets what to delete.
				_ = w.send(resyncEvent)
				return nil
			}
			if err != nil {
				// The client reconnects and gets "RESYNC".
				if ctx.Err() == nil {
					p.app.Logger().Error("rxdb stream read failed", "err", err, "user", who.UserID)
				}
				return nil
			}
		}
		if ev == nil {
			continue
		}
		if err := w.send(ev); err != nil {
			p.app.Logger().Debug("rxdb stream dropped", "err", err, "user", who.UserID)
			return nil
		}
	}
}

// position is the caller's scope version: the stream sends what commits
// after it.
func (p *Plugin) position(ctx context.Context, who framework.Principal, model, space string) (int64, error) {
	now, err := p.app.ReadSince(ctx, who, framework.SinceRequest{Models: []string{model}, After: math.MaxInt64, Space: space})
	if err != nil {
		return 0, err
	}
	return now.Version, nil
}

// event reads what changed after seq, given what the commits since the
// last event wrote (pend), and returns the event to send (nil: nothing)
// and the stream's next position. Changes that one event may not carry —
// more documents or bytes than the caps, as the commits told or as the
// store holds them — are announced as "RESYNC" (the client pulls them page
// by page, from its own checkpoint) and the stream moves to the scope's
// current version. It reads at most as many documents as the commits
// announced (plus the one that tells whether there are more), never more
// than [Config.MaxEventDocuments], and nothing at all when the commits
// were already too large.
func (p *Plugin) event(ctx context.Context, who framework.Principal, model, space string, seq int64, pend pending) ([]byte, int64, error) {
	if !pend.unknown && (pend.docs > p.cfg.MaxEventDocuments || pend.bytes > p.cfg.MaxEventBytes) {
		now, err := p.position(ctx, who, model, space)
		if err != nil {
			return nil, seq, err
		}
		return resyncEvent, max(seq, now), nil
	}
	limit := min(max(pend.docs, 1), p.cfg.MaxEventDocuments)
	if pend.unknown {
		limit = p.cfg.MaxEventDocuments // a hint from the bus says only "something"
	}
	resp, err := p.app.ReadSince(ctx, who, framework.SinceRequest{Models: []string{model}, After: seq, Limit: limit, Space: space})
	if err != nil {
		return nil, seq, err
	}
	next := max(seq, resp.Version)
	if len(resp.Records) == 0 {
		return nil, next, nil
	}
	var size int64
	for _, rec := range resp.Records {
		size += docBytes(rec)
	}
	// More than the commits announced: a commit whose after-commit hook has
	// not run yet (it will wake the stream again), or a tombstone that
	// kept more data than its commit carried.
	if resp.HasMore || size > p.cfg.MaxEventBytes {
		return resyncEvent, next, nil
	}
	b, err := batch(resp.Records, seq)
	if err != nil {
		return nil, seq, err
	}
	b.Checkpoint = p.checkpoint(who, space, b.Checkpoint.Seq)
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, seq, err
	}
	ev := make([]byte, 0, len(raw)+8)
	ev = append(append(append(ev, "data: "...), raw...), "\n\n"...)
	return ev, next, nil
}

// streamWriter writes a stream's events, each under its own write
// deadline, and flushes them.
type streamWriter struct {
	w       gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func newStreamWriter(c *gin.Context, timeout time.Duration) *streamWriter {
	// Flush through the connection's own writer: gin's Flush drops the
	// error, which is how a dead connection shows.
	var under http.ResponseWriter = c.Writer
	if u, ok := under.(interface{ Unwrap() http.ResponseWriter }); ok {
		under = u.Unwrap()
	}
	rc := http.NewResponseController(under)
	// A stream has no body to wait for, so it needs no read deadline. A
	// read deadline left on the connection would cut the stream: net/http
	// reads in the background to notice a client that goes away, and that
	// read timing out cancels the request. net/http clears the deadline
	// when it starts that read, but middleware may set one afterwards
	// through http.ResponseController (golang/go#70834).
	_ = rc.SetReadDeadline(time.Time{})
	return &streamWriter{w: c.Writer, rc: rc, timeout: timeout}
}

// send writes b and flushes it before the write deadline.
func (s *streamWriter) send(b []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}
