// Package framework is Ferry's core: the model registry on an [App], the
// sync service (push, pull, single-record sync), conflict policies with
// last-writer-wins as default, validation, owner permissions, hooks,
// plugins and the gin handlers of wire protocol v1.
//
// An application builds one App from a *bun.DB, registers its models and
// plugins, runs [App.Migrate], and mounts the routes on a gin router group:
//
//	app, err := framework.New(framework.Config{DB: db, Schemas: schemas.FS})
//	framework.MustRegister[Note](app, framework.ModelOptions{Schema: "data/note.json"})
//	app.MustUse(jwtauth.New(jwtauth.Config{Secret: secret}))
//	app.Migrate(ctx)
//	app.Mount(router.Group("/sync"))
package framework

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/internal/keyrate"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/schemas"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/uptrace/bun"
)

// Config configures an [App]. The zero value of every field but DB (or
// Store) is useful.
type Config struct {
	// DB is the database: PostgreSQL (pgdialect) or SQLite
	// (sqlitedialect). The App keeps records in [models.NewStore] on it
	// unless Store is set.
	DB *bun.DB
	// Store, when set, is where the App keeps records instead: a store of
	// your own, or one wrapping models.NewStore (adding metrics, say),
	// that passes models/storetest. DB may then be nil; it defaults to
	// Store.DB().
	Store models.Store
	// Schemas holds the models' JSON Schema files; registrations name a
	// path in it.
	Schemas fs.FS
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes caps a request body (default 10 MiB); a larger one is
	// too_large before it is read whole.
	MaxBodyBytes int64
	// MaxDepth caps the nesting of arrays and objects in a request body
	// (default 64; a push's envelope takes 3 of them, so a record's data
	// may nest 61 levels). Over it, the body is too_large.
	MaxDepth int
	// MaxElements caps the elements of any one array and the members of
	// any one object in a request body (default 10,000; the changes
	// array of a push may always hold MaxChanges). Over it, the body is
	// too_large, with the JSON pointer of the array in the details.
	MaxElements int
	// MaxValues caps the JSON values in one request body (default
	// 500,000). Parsed, a value takes about 50 bytes against its 2 bytes
	// of text, so this bounds the memory one body can make, whatever its
	// shape, near 25 MB.
	MaxValues int
	// MaxDataBytes caps one change's data as canonical JSON text (default
	// 1 MiB); a larger change is rejected with the path /data.
	MaxDataBytes int
	// MaxPullBytes caps a pull page (default 4 MiB of records' data): the
	// page ends early with has_more, and always holds at least one record.
	MaxPullBytes int
	// MaxChanges caps the changes of one push (default 1000).
	MaxChanges int
	// DefaultPullLimit (default 500) and MaxPullLimit (default 5000) bound
	// a pull page.
	DefaultPullLimit int
	MaxPullLimit     int
	// MaxFutureSkew rejects a change whose modify_at is further in the
	// future than this (default 5 minutes), so a device with a wrong clock
	// cannot win forever. Negative disables the guard.
	MaxFutureSkew time.Duration
	// RateLimit, when positive, caps each user's requests to the sync
	// routes (plugins' included) per second, with bursts of RateBurst
	// (default twice the rate, at least 1); over it, the answer is 429
	// rate_limited with Retry-After. Zero, the default, is no limit.
	RateLimit float64
	RateBurst int
	// Now is the server clock (default time.Now); tests may fake it.
	Now func() time.Time

	// Quota bounds what each user stores (see [Quota]); the zero value is
	// unlimited. QuotaFor, when set, gives each user's quota instead (an
	// app with plans); it is called once per push, before the push's
	// transaction, and an error fails the push.
	Quota    Quota
	QuotaFor func(ctx context.Context, userID string) (Quota, error)
	// UsageAccounting says whether the store keeps exact usage counters
	// in every write (see [UsageAccounting]); the default, UsageAuto,
	// keeps them exactly when a quota is configured. UsageOff with a
	// quota is an error. Replicas sharing a database may differ: the
	// counters stay on while any replica that needs them runs (see
	// [models.UsageAccounter]).
	UsageAccounting UsageAccounting

	// DefaultPolicy decides the conflicts of models registered without a
	// policy of their own (ModelOptions.Policy wins over it, and
	// PushOptions.Policy over both); nil means [LastWriterWins]. Set it
	// before registering: a registration takes the default it finds.
	DefaultPolicy ConflictPolicy

	// Spaces turns on shared spaces: the built-in models ferry.Space and
	// ferry.Member are registered, a change may name the space it writes
	// to, and pulls cover every space the user reads (see the README's
	// protocol section). Off, the App syncs each user's own records only.
	Spaces bool
	// Authorizer decides what users may do in spaces beyond the built-in
	// rules; nil means [RoleAuthorizer].
	Authorizer Authorizer
	// MaxSpaces caps the spaces one user reads (default 100, at most
	// 1000): a pull's cursor holds a position per space, so this bounds
	// its size (about 57 bytes per UUID space; clients send long ones in
	// POST /sync/pull's body). Adding a member who is in as many spaces
	// already is refused with quota_exceeded.
	MaxSpaces int

	// TombstoneRetention, when positive, makes the App purge tombstones
	// older than this itself ([App.PurgeTombstones]) while it is started
	// ([App.Start] to [App.Close]): once at start, then every
	// PurgeInterval. A device whose cursor is older than a purged
	// tombstone resets (410), so keep it longer than devices stay
	// offline (weeks: 90 days, say). Zero, the default, purges nothing by
	// itself. Every replica may run it: purges of one owner take the lock
	// writers take, so they never race. Runs are counted in [App.Stats].
	TombstoneRetention time.Duration
	// PurgeInterval is the time between two purges (default a 24th of
	// TombstoneRetention, between a minute and an hour).
	PurgeInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.MaxChanges <= 0 {
		c.MaxChanges = 1000
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 64
	}
	if c.MaxElements <= 0 {
		c.MaxElements = 10_000
	}
	if c.MaxValues <= 0 {
		c.MaxValues = 500_000
	}
	if c.MaxDataBytes <= 0 {
		c.MaxDataBytes = 1 << 20
	}
	if c.MaxPullBytes <= 0 {
		c.MaxPullBytes = 4 << 20
	}
	if c.DefaultPullLimit <= 0 {
		c.DefaultPullLimit = 500
	}
	if c.MaxPullLimit <= 0 {
		c.MaxPullLimit = 5000
	}
	if c.DefaultPullLimit > c.MaxPullLimit {
		c.DefaultPullLimit = c.MaxPullLimit
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxSpaces <= 0 {
		c.MaxSpaces = 100
	}
	if c.Authorizer == nil {
		c.Authorizer = RoleAuthorizer{}
	}
}

// App holds a Ferry server's registry, hooks and configuration. Register
// models and plugins before [App.Mount]; after that the registry is sealed
// and the App is safe for concurrent use.
type App struct {
	cfg        Config
	db         *bun.DB
	store      models.Store
	log        *slog.Logger
	appSchemas *schemaSet
	// builtinSchemas are the framework's own models' (schemas.Builtin).
	builtinSchemas *schemaSet
	protocol       protocolSchemas
	authorizer     Authorizer

	mu     sync.RWMutex
	sealed bool
	models map[string]*model
	// subscriptions are the named pull filters ([App.Subscribe]).
	subscriptions map[string]*Subscription
	plugins       []Plugin
	auth          Authenticator
	// lifecycle is lifecycleNew, Started or Closed; started counts the
	// plugins Start got through (all of them once it succeeded).
	lifecycle int
	started   int

	onValidate hook.Hook[*ValidateEvent]
	onApply    hook.Hook[*ApplyEvent]
	onCommit   hook.Hook[*CommitEvent]
	onConflict hook.Hook[*ConflictEvent]
	onResults  hook.Hook[*ResultsEvent]
	onPulled   hook.Hook[*PulledEvent]

	// stats are the counters of [App.Stats].
	stats stats
	// purger is the running tombstone purge (Config.TombstoneRetention).
	purger *purger

	// limits is the per-user request rate (nil: none).
	limits *keyrate.Limiter

	// usageOn: the App keeps exact usage counters (Config.UsageAccounting
	// resolved); usageHold keeps other replicas from turning them off
	// while it serves (guarded by mu).
	usageOn   bool
	usageHold interface{ Close() error }

	// afterNewerWrite, when set (by tests), runs between a store-decided
	// push's write and its reading of what was not written: where another
	// writer could slip in.
	afterNewerWrite func()
	// fastestRoute, when set (by tests), is the fastest route pushes may take:
	// routeBulk never lets the store decide, routeCareful writes every
	// change on its own. Production leaves it at routeStore, the fastest.
	fastestRoute route
}

type protocolSchemas struct {
	push   checkedSchema
	pull   checkedSchema
	change *jsonschema.Schema // behind envelopeOK
}

// maxRateTracked bounds the users the request rate remembers (idle ones
// are forgotten first; see keyrate).
const maxRateTracked = 100_000

// New validates cfg and returns an App with no models.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil && cfg.DB == nil {
		return nil, errors.New("framework: Config.DB is nil; open a store with models.OpenSQLite or models.OpenPostgres")
	}
	if cfg.Store == nil {
		cfg.Store = models.NewStore(cfg.DB)
	}
	if cfg.DB == nil {
		cfg.DB = cfg.Store.DB()
	}
	cfg.setDefaults()
	if err := cfg.checkPurge(); err != nil {
		return nil, err
	}
	if cfg.MaxSpaces > maxSpacesLimit {
		return nil, fmt.Errorf("framework: Config.MaxSpaces %d is above %d: a cursor holds a position per space", cfg.MaxSpaces, maxSpacesLimit)
	}
	if cfg.Quota.MaxRecords < 0 || cfg.Quota.MaxBytes < 0 {
		return nil, fmt.Errorf("framework: Config.Quota: MaxRecords %d and MaxBytes %d must not be negative (0 is no limit)", cfg.Quota.MaxRecords, cfg.Quota.MaxBytes)
	}
	usageOn, err := cfg.checkUsage()
	if err != nil {
		return nil, err
	}
	appSchemas, err := newSchemaSet(cfg.Schemas)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	builtinSchemas, err := newSchemaSet(schemas.Builtin)
	if err != nil {
		return nil, fmt.Errorf("framework: built-in schemas: %w", err)
	}
	protoSet, err := newSchemaSet(schemas.Protocol)
	if err != nil {
		return nil, fmt.Errorf("framework: protocol schemas: %w", err)
	}
	var ps protocolSchemas
	var push, pull *jsonschema.Schema
	for path, dst := range map[string]**jsonschema.Schema{
		"push.json": &push, "pull.json": &pull, "change.json": &ps.change,
	} {
		if *dst, err = protoSet.compile(path); err != nil {
			return nil, fmt.Errorf("framework: protocol schemas: %w", err)
		}
	}
	ps.push, ps.pull = protoSet.checked(push), protoSet.checked(pull)
	a := &App{
		cfg: cfg, db: cfg.DB, store: cfg.Store, log: cfg.Logger, appSchemas: appSchemas, protocol: ps,
		builtinSchemas: builtinSchemas, authorizer: cfg.Authorizer, models: map[string]*model{}, usageOn: usageOn,
	}
	if cfg.Spaces {
		if err := a.registerSpaces(); err != nil {
			return nil, err
		}
	}
	if cfg.RateLimit > 0 {
		burst := cfg.RateBurst
		if burst <= 0 {
			burst = max(1, int(2*cfg.RateLimit))
		}
		a.limits = keyrate.New(cfg.RateLimit, burst, maxRateTracked, cfg.Now)
	}
	if cfg.MaxFutureSkew > 0 {
		a.onValidate.Bind(&hook.Handler[*ValidateEvent]{ID: "ferry.future-skew", Priority: -1000, Func: a.futureSkewGuard})
	}
	return a, nil
}

// Config returns the App's configuration with defaults filled in.
func (a *App) Config() Config { return a.cfg }

// DB returns the database under the store (nil for a store without one).
func (a *App) DB() *bun.DB { return a.db }

// Store returns where the App keeps records.
func (a *App) Store() models.Store { return a.store }

// Logger returns the App's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// OnValidate is the hook run before validation; see [ValidateEvent].
// Handlers may be limited to models with hook.Handler.Tags (model names).
func (a *App) OnValidate() *hook.Hook[*ValidateEvent] { return &a.onValidate }

// OnApply is the hook run inside the transaction around each write; see
// [ApplyEvent]. Tag handlers with the models they concern
// (hook.Handler.Tags): writes of models no handler concerns are batched
// into a few bulk statements or decided by the store, which is much
// faster; a model an apply hook concerns is written change by change, and
// an untagged handler concerns every model. [App.WriteRoute] says which
// route a model takes and why; Migrate and Start log it.
func (a *App) OnApply() *hook.Hook[*ApplyEvent] { return &a.onApply }

// OnCommit is the hook run after a push committed; see [CommitEvent].
func (a *App) OnCommit() *hook.Hook[*CommitEvent] { return &a.onCommit }

// SetAuthenticator sets how sync requests are authenticated (auth plugins
// call it). Without one, every sync request is answered 401.
func (a *App) SetAuthenticator(auth Authenticator) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.auth = auth
}

func (a *App) authenticator() Authenticator {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.auth
}

// Use sets up plugins in order. A plugin name used twice is an error.
func (a *App) Use(plugins ...Plugin) error {
	for _, p := range plugins {
		if err := a.checkOpen("use plugin " + p.Name()); err != nil {
			return err
		}
		a.mu.RLock()
		for _, have := range a.plugins {
			if have.Name() == p.Name() {
				a.mu.RUnlock()
				return fmt.Errorf("framework: plugin %q is already in use", p.Name())
			}
		}
		a.mu.RUnlock()
		// Only a plugin whose setup succeeded is in use, so a fixed one
		// can be tried again under the same name.
		if err := p.Setup(a); err != nil {
			return fmt.Errorf("framework: set up plugin %q: %w", p.Name(), err)
		}
		a.mu.Lock()
		a.plugins = append(a.plugins, p)
		a.mu.Unlock()
	}
	return nil
}

// MustUse is [App.Use] that panics; for main and tests.
func (a *App) MustUse(plugins ...Plugin) {
	if err := a.Use(plugins...); err != nil {
		panic(err)
	}
}

// Plugins returns the plugins in use, in setup order.
func (a *App) Plugins() []Plugin {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return append([]Plugin(nil), a.plugins...)
}

func (a *App) checkOpen(what string) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.sealed {
		return fmt.Errorf("framework: cannot %s: the App is already serving (register before Mount)", what)
	}
	return nil
}

func (a *App) seal() {
	a.mu.Lock()
	a.sealed = true
	a.mu.Unlock()
}

// Models returns the registered model names, sorted.
func (a *App) Models() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	names := make([]string, 0, len(a.models))
	for n := range a.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *App) model(name string) (*model, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	m, ok := a.models[name]
	return m, ok
}

// Migrate creates or upgrades Ferry's tables and creates the tables of
// typed models that do not exist yet, then brings the store's usage
// accounting to Config.UsageAccounting: turning it on recounts every
// user's usage (writes wait for that); on PostgreSQL an App that keeps
// the counters holds a connection until [App.Close], so that no replica
// turns them off meanwhile. Later changes to a typed model's table are
// the application's own migrations.
func (a *App) Migrate(ctx context.Context) error {
	if err := a.store.Migrate(ctx); err != nil {
		return fmt.Errorf("framework: %w", err)
	}
	if err := a.setUsageAccounting(ctx); err != nil {
		return err
	}
	a.logRoutes(ctx, "migrate")
	return nil
}

var modelNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$`)
