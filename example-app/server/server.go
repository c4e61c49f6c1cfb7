// Package server is Ferry's example app: data.User (a proxy over the
// accounts table that owns itself), data.Note (owned by its user), the
// schema-only data.Setting and data.Task (exposed to WatermelonDB apps as
// table "tasks" and to RxDB apps as collection "tasks"), with sign-up and
// login, on an embedded SQLite file by default and on PostgreSQL when
// DATABASE_URL is set.
package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/ferrysync/ferry/plugins/conflictlog"
	"github.com/ferrysync/ferry/plugins/inspector"
	"github.com/ferrysync/ferry/plugins/jwtauth"
	"github.com/ferrysync/ferry/plugins/metrics"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/ferrysync/ferry/plugins/realtime"
	"github.com/ferrysync/ferry/plugins/requestid"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/ferrysync/ferry/plugins/watermelon"
	"github.com/ferrysync/ferry/schemas"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
)

// Config is the example app's configuration; [ConfigFromEnv] reads it from
// the environment.
type Config struct {
	// Addr is the listen address (FERRY_ADDR, default 127.0.0.1:8080).
	Addr string
	// DataDir holds the SQLite file and a generated JWT secret
	// (FERRY_DATA_DIR, default ./data). It is created 0700, and the files
	// in it are kept 0600.
	DataDir string
	// DatabaseURL selects PostgreSQL when set (DATABASE_URL).
	DatabaseURL string
	// JWTSecret signs tokens (FERRY_JWT_SECRET): hex, base64 or base64url
	// text of at least 32 random bytes (`openssl rand -hex 32`); a
	// passphrase is refused. When empty a secret is generated once and
	// kept in DataDir.
	JWTSecret string
	// TrustedProxies are the addresses or CIDR ranges of reverse proxies
	// whose X-Forwarded-For / X-Real-IP headers name the client
	// (FERRY_TRUSTED_PROXIES, comma-separated). Default none: the client
	// is the connection's remote address, so a client cannot choose the
	// address its rate limits count against.
	TrustedProxies []string
	// Auth holds the limits of the /auth routes.
	Auth AuthConfig
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// HTTP bounds connections: timeouts, header size, connection cap (see
	// [HTTPConfig] for the FERRY_… variables and defaults).
	HTTP HTTPConfig
	// RxDB configures the RxDB plugin's live streams (its Collections are
	// the app's): FERRY_STREAMS_PER_USER, FERRY_MAX_STREAMS (default a quarter
	// of HTTP.MaxConns), FERRY_STREAM_WRITE_TIMEOUT, FERRY_STREAM_KEEPALIVE,
	// FERRY_STREAM_EVENT_DOCUMENTS and FERRY_STREAM_EVENT_BYTES; zero
	// fields take rxdb's defaults.
	RxDB rxdb.Config
	// Quota bounds what each user stores (FERRY_QUOTA_RECORDS, default
	// 100,000; FERRY_QUOTA_BYTES, default 1 GiB): a zero field takes the
	// default, a negative one (the variable set to 0) is no limit.
	Quota framework.Quota
	// UsageAccounting (FERRY_USAGE_ACCOUNTING: auto, on or off; default
	// auto) says whether exact usage counters are kept in every write:
	// auto keeps them exactly when a quota is set, which the example's
	// default quota is; off needs both quota variables at 0.
	UsageAccounting framework.UsageAccounting
	// SyncRate caps each user's requests to the sync routes per second
	// (FERRY_SYNC_RATE; default 0, no limit); bursts of twice as many.
	SyncRate float64
	// MaxSpaces caps the shared spaces one user is in (FERRY_MAX_SPACES;
	// default 100, at most 1000; see framework.Config.MaxSpaces).
	MaxSpaces int
	// Realtime chooses the bus of the live stream at /sync/stream
	// (FERRY_REALTIME_BUS): "postgres" (LISTEN/NOTIFY on DatabaseURL, the
	// default when DatabaseURL is set), "nats" (at NATSURL), or "local"
	// (one replica; the default on SQLite). Replicas behind one load
	// balancer need postgres or nats, and the same JWT secret (stream
	// tokens are signed with a key derived from it).
	Realtime string
	// NATSURL is the NATS server of the "nats" bus (FERRY_NATS_URL,
	// default nats://127.0.0.1:4222).
	NATSURL string
	// RealtimeChannel names the bus's channel (FERRY_REALTIME_CHANNEL):
	// the NOTIFY channel on PostgreSQL (default ferry_hints), the subject
	// on NATS (default ferry.hints). Deployments that share a database or
	// a NATS server keep apart with different names; every replica of one
	// deployment uses the same.
	RealtimeChannel string
	// CORSOrigins lists the origins (https://app.example.com) whose web
	// pages may call the sync and account routes from a browser
	// (FERRY_CORS_ORIGINS, comma-separated; "*" for any). Default none:
	// only pages of the server's own origin, such as the web app at /.
	CORSOrigins []string
	// ConflictLogOff turns off the log of the conflicts pushes meet (a
	// change that lost, merged or overwrote a newer record), readable at
	// GET /sync/conflicts (FERRY_CONFLICT_LOG=off; default on).
	ConflictLogOff bool
	// InspectorToken turns on the read-only inspector for reviewers at
	// /inspector/ (plugins/inspector) and is its admin credential: the
	// password of HTTP basic auth (any user name) or a bearer token
	// (FERRY_INSPECTOR_TOKEN, at least 16 bytes; default unset: the
	// inspector is off).
	InspectorToken string

	// MetricsAddr says where Prometheus scrapes GET /metrics
	// (FERRY_METRICS_ADDR): empty, the default, serves it on Addr beside
	// the app; an address (127.0.0.1:9090) moves it to a listener of its
	// own, for deployments that keep metrics off the public port; "off"
	// serves no metrics.
	MetricsAddr string
	// TombstoneRetention purges tombstones older than this while the
	// server runs (FERRY_TOMBSTONE_RETENTION, e.g. 2160h for 90 days;
	// default 0, off): framework.Config.TombstoneRetention.
	TombstoneRetention time.Duration

	// Blobs configures the media of notes (data.Attachment records refer
	// to them): FERRY_BLOB_MAX_BYTES caps one upload (default 1 GiB),
	// FERRY_BLOB_QUOTA a user's stored bytes (default 5 GiB; 0 is no
	// quota). They live in DataDir/blobs; Models and Dir are the app's.
	Blobs blobs.Config

	// Policies replaces the conflict policy of the named example models
	// (Go only, no variable), say policies.FieldLWW{} for "data.Note":
	// the convergence simulation runs the example app so. A name that is
	// not an example model is an error.
	Policies map[string]framework.ConflictPolicy

	// envErr is what ConfigFromEnv could not read; New reports it.
	envErr error
}

// AuthConfig holds the limits of the password-checked /auth routes
// (register, login, email, password, account). Zero fields take the
// defaults.
type AuthConfig struct {
	// PasswordCost is the bcrypt cost of new password hashes
	// (FERRY_BCRYPT_COST, default 12: about 250 ms of one core). Hashes of
	// a lower cost still verify and are rehashed at the next login. Test
	// suites that sign many users up use bcrypt.MinCost (4).
	PasswordCost int
	// PerIP limits those requests per client IP (IPv6: per /64)
	// (FERRY_AUTH_RATE_IP, default 30 per minute, "off" to turn off).
	PerIP RateLimit
	// PerAccount limits wrong passwords per account, that is per email
	// (FERRY_AUTH_RATE_ACCOUNT, default 10 per minute). A correct password
	// resets the account's count.
	PerAccount RateLimit
	// MaxTrackedKeys bounds the IPs and the accounts each limit
	// remembers (default 100,000 each; about 230 bytes a key, so 22 MB
	// each at most); the least recently seen is forgotten first, and a
	// key idle long enough to have refilled is forgotten at once.
	MaxTrackedKeys int
	// MaxConcurrentHashes caps the password hashes computed at once
	// (FERRY_AUTH_HASHES, default half of GOMAXPROCS, at least 1, so that
	// logins never take every core from sync); a request that finds them
	// all busy for HashWait (default 1 s) is answered 503 with
	// Retry-After: 1.
	MaxConcurrentHashes int
	HashWait            time.Duration
	// TokenTTL is how long a token is valid (FERRY_TOKEN_TTL, default 30
	// days: devices stay offline for weeks).
	TokenTTL time.Duration
	// RevocationDelay is how long a replica trusts what it knows of a
	// user's revoked tokens (default 5 s): a deleted account's or an old
	// password's tokens stop working within it everywhere, at once on
	// the replica that served the change. Negative asks the store on
	// every request.
	RevocationDelay time.Duration
}

func (c *AuthConfig) setDefaults() error {
	if c.PasswordCost == 0 {
		c.PasswordCost = 12
	}
	if c.PasswordCost < bcrypt.MinCost || c.PasswordCost > bcrypt.MaxCost {
		return fmt.Errorf("Auth.PasswordCost %d is not a bcrypt cost (%d to %d)", c.PasswordCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	c.PerIP = c.PerIP.withDefault(RateLimit{Requests: 30, Per: time.Minute})
	c.PerAccount = c.PerAccount.withDefault(RateLimit{Requests: 10, Per: time.Minute})
	if c.MaxTrackedKeys <= 0 {
		c.MaxTrackedKeys = 100_000
	}
	if c.MaxConcurrentHashes <= 0 {
		// Half the cores: a flood of logins leaves the other half to sync.
		c.MaxConcurrentHashes = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.HashWait <= 0 {
		c.HashWait = time.Second
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 30 * 24 * time.Hour
	}
	if c.RevocationDelay == 0 {
		c.RevocationDelay = 5 * time.Second
	}
	return nil
}

// ConfigFromEnv reads the configuration from the environment. A variable
// it cannot read is reported by [New] and [Open].
func ConfigFromEnv() Config {
	cfg := Config{
		Addr:        envOr("FERRY_ADDR", "127.0.0.1:8080"),
		DataDir:     envOr("FERRY_DATA_DIR", "./data"),
		DatabaseURL: os.Getenv("DATABASE_URL"),
		JWTSecret:   os.Getenv("FERRY_JWT_SECRET"),
		Realtime:    os.Getenv("FERRY_REALTIME_BUS"),
		NATSURL:     os.Getenv("FERRY_NATS_URL"),
		MetricsAddr: os.Getenv("FERRY_METRICS_ADDR"),
	}
	cfg.RealtimeChannel = os.Getenv("FERRY_REALTIME_CHANNEL")
	cfg.ConflictLogOff = os.Getenv("FERRY_CONFLICT_LOG") == "off"
	cfg.InspectorToken = os.Getenv("FERRY_INSPECTOR_TOKEN")
	corsEnv(&cfg)
	var errs []error
	for key, dst := range map[string]*int64{"FERRY_BLOB_MAX_BYTES": &cfg.Blobs.MaxUploadBytes, "FERRY_BLOB_QUOTA": &cfg.Blobs.MaxBytesPerUser} {
		if v := os.Getenv(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s=%q must be a number of bytes", key, v))
				continue
			}
			if key == "FERRY_BLOB_QUOTA" && n == 0 {
				n = -1 // no quota (the zero value is the default)
			}
			*dst = n
		}
	}
	if v := os.Getenv("FERRY_TRUSTED_PROXIES"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
		}
	}
	for key, dst := range map[string]*RateLimit{"FERRY_AUTH_RATE_IP": &cfg.Auth.PerIP, "FERRY_AUTH_RATE_ACCOUNT": &cfg.Auth.PerAccount} {
		if v := os.Getenv(key); v != "" {
			l, err := ParseRateLimit(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
			*dst = l
		}
	}
	for key, dst := range map[string]*int{"FERRY_BCRYPT_COST": &cfg.Auth.PasswordCost, "FERRY_AUTH_HASHES": &cfg.Auth.MaxConcurrentHashes} {
		if v := os.Getenv(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q must be a positive integer", key, v))
			}
			*dst = n
		}
	}
	if v := os.Getenv("FERRY_TOMBSTONE_RETENTION"); v != "" && v != "off" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("FERRY_TOMBSTONE_RETENTION=%q must be a duration such as 2160h, or off", v))
		}
		cfg.TombstoneRetention = d
	}
	if v := os.Getenv("FERRY_TOKEN_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("FERRY_TOKEN_TTL=%q must be a positive duration such as 720h", v))
		}
		cfg.Auth.TokenTTL = d
	}
	errs = append(errs, syncEnv(&cfg), connEnv(&cfg))
	cfg.envErr = errors.Join(errs...)
	return cfg
}

// exampleQuota fills the example's default quota: 100,000 records and
// 1 GiB per user; a negative field is no limit.
func exampleQuota(q framework.Quota) framework.Quota {
	for _, f := range []struct {
		v   *int64
		def int64
	}{{&q.MaxRecords, 100_000}, {&q.MaxBytes, 1 << 30}} {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v < 0:
			*f.v = 0
		}
	}
	return q
}

// syncEnv reads the sync limits: FERRY_QUOTA_RECORDS, FERRY_QUOTA_BYTES
// (0 turns the quota off), FERRY_USAGE_ACCOUNTING, FERRY_SYNC_RATE and FERRY_MAX_SPACES.
func syncEnv(cfg *Config) error {
	var errs []error
	for key, dst := range map[string]*int64{"FERRY_QUOTA_RECORDS": &cfg.Quota.MaxRecords, "FERRY_QUOTA_BYTES": &cfg.Quota.MaxBytes} {
		if v := os.Getenv(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s=%q must be a whole number (0: no quota)", key, v))
				continue
			}
			*dst = n
			if n == 0 {
				*dst = -1 // no limit
			}
		}
	}
	switch v := os.Getenv("FERRY_USAGE_ACCOUNTING"); v {
	case "", "auto":
	case "on":
		cfg.UsageAccounting = framework.UsageOn
	case "off":
		cfg.UsageAccounting = framework.UsageOff
	default:
		errs = append(errs, fmt.Errorf("FERRY_USAGE_ACCOUNTING=%q must be auto, on or off", v))
	}
	if v := os.Getenv("FERRY_SYNC_RATE"); v != "" && v != "off" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			errs = append(errs, fmt.Errorf("FERRY_SYNC_RATE=%q must be requests per second, or off", v))
		}
		cfg.SyncRate = r
	}
	if v := os.Getenv("FERRY_MAX_SPACES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("FERRY_MAX_SPACES=%q must be a positive number of spaces", v))
		}
		cfg.MaxSpaces = n
	}
	return errors.Join(errs...)
}

// Server is a built example app.
type Server struct {
	App *framework.App
	DB  *bun.DB
	JWT *jwtauth.Plugin
	// RxDB serves the RxDB replication of tasks.
	RxDB *rxdb.Plugin
	// Realtime serves the live stream at /sync/stream. Serve ends the
	// live streams (these and RxDB's) on shutdown, through App.Close.
	Realtime *realtime.Plugin
	// Metrics is the Prometheus metrics plugin (nil when MetricsAddr is
	// "off").
	Metrics *metrics.Plugin
	engine  *gin.Engine
	acc     *accounts
	cfg     Config
}

// Open opens the store, registers the models and plugins, migrates, and
// builds the HTTP handler.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, cfg, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func openDB(ctx context.Context, cfg Config) (*bun.DB, error) {
	if cfg.envErr != nil {
		return nil, cfg.envErr
	}
	if cfg.DatabaseURL != "" {
		return models.OpenPostgres(ctx, cfg.DatabaseURL)
	}
	if err := ensureDataDir(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, "ferry.db")
	if err := prepareSQLiteFiles(path, cfg.Logger); err != nil {
		return nil, err
	}
	db, err := models.OpenSQLite(ctx, path)
	if err != nil {
		return nil, err
	}
	// Opening may have made the -wal and -shm files.
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if err := tightenFile(p, cfg.Logger); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// New builds the app on an open store (tests pass their own). Close
// closes db.
func New(ctx context.Context, cfg Config, db *bun.DB) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.envErr != nil {
		return nil, cfg.envErr
	}
	if err := cfg.Auth.setDefaults(); err != nil {
		return nil, err
	}
	if err := connDefaults(&cfg); err != nil {
		return nil, err
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return nil, err
	}
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas.Examples, Logger: cfg.Logger,
		Quota: exampleQuota(cfg.Quota), UsageAccounting: cfg.UsageAccounting, RateLimit: cfg.SyncRate, Spaces: true, MaxSpaces: cfg.MaxSpaces, TombstoneRetention: cfg.TombstoneRetention})
	if err != nil {
		return nil, err
	}
	if err := registerModels(app, cfg.Policies); err != nil {
		return nil, err
	}
	// A device may pull one list's tasks alone: ?subscription=tasks_of_list(<list uid>).
	if err := app.Subscribe(framework.Subscription{Name: "tasks_of_list", Model: "data.Task", Params: []string{"list_id"},
		Match: framework.FieldEquals("list", "list_id")}); err != nil {
		return nil, err
	}
	jwt, err := jwtauth.New(jwtauth.Config{Secret: secret, TTL: cfg.Auth.TokenTTL,
		Revocation: tokenGenerationOf(db), RevocationCache: cfg.Auth.RevocationDelay})
	if err != nil {
		return nil, err
	}
	acc, err := newAccounts(db, jwt, cfg.Logger, cfg.Auth)
	if err != nil {
		return nil, err
	}
	// WatermelonDB apps sync at /sync/watermelon, RxDB apps at /sync/rxdb/tasks/… and /sync/rxdb/docs/….
	wmelon, err := watermelon.New(watermelon.Config{Tables: map[string]string{"tasks": "data.Task", "docs": "data.Doc"}})
	if err != nil {
		return nil, err
	}
	// Live hints at /sync/stream, across replicas; RxDB's streams hear
	// them too.
	live, err := newRealtime(cfg, secret)
	if err != nil {
		return nil, err
	}
	rxCfg := cfg.RxDB
	rxCfg.Collections = map[string]string{"tasks": "data.Task", "docs": "data.Doc"}
	rxCfg.Hints = live
	if rxCfg.CheckpointSecret == nil {
		// Shared spaces' checkpoints (?space=) must verify on every
		// replica, and a rotated JWT secret must not strand removed
		// devices for long: the key comes from the secret the replicas
		// share, like the stream tokens'.
		rxCfg.CheckpointSecret = derivedKey(secret, "ferry example app: rxdb space checkpoints")
	}
	rx, err := rxdb.New(rxCfg)
	if err != nil {
		return nil, err
	}
	blobCfg := cfg.Blobs
	blobCfg.Models, blobCfg.Dir = []string{"data.Attachment"}, filepath.Join(cfg.DataDir, "blobs")
	if blobCfg.MaxBytesPerUser == 0 {
		blobCfg.MaxBytesPerUser = 5 << 30
	} else if blobCfg.MaxBytesPerUser < 0 {
		blobCfg.MaxBytesPerUser = 0 // FERRY_BLOB_QUOTA=0: no quota
	}
	media, err := blobs.New(blobCfg)
	if err != nil {
		return nil, err
	}
	if err := app.Use(jwt, acc, wmelon, rx, live, media); err != nil {
		return nil, err
	}
	if !cfg.ConflictLogOff {
		clog, err := conflictlog.New(conflictlog.Config{})
		if err != nil {
			return nil, err
		}
		if err := app.Use(clog); err != nil {
			return nil, err
		}
	}
	if cfg.InspectorToken != "" {
		in, err := inspector.New(inspector.Config{Token: cfg.InspectorToken})
		if err != nil {
			return nil, fmt.Errorf("FERRY_INSPECTOR_TOKEN: %w", err)
		}
		if err := app.Use(in); err != nil {
			return nil, err
		}
	}
	var metered *metrics.Plugin
	if cfg.MetricsAddr != MetricsOff {
		if metered, err = metrics.New(metrics.Config{Streams: map[string]func() int{
			"realtime": live.Streams, "rxdb": rx.Streams}}); err != nil {
			return nil, err
		}
		if err := app.Use(metered); err != nil {
			return nil, err
		}
	}
	if err := app.Migrate(ctx); err != nil {
		return nil, err
	}
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	// The table of token generations, on a new store and on one made by
	// an earlier release alike.
	if _, err := db.NewCreateTable().Model((*tokenGeneration)(nil)).IfNotExists().Exec(ctx); err != nil {
		return nil, fmt.Errorf("create table token_generations: %w", err)
	}
	engine := gin.New()
	// gin trusts every proxy unless told otherwise; the rate limits need
	// the real client.
	if err := engine.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("TrustedProxies: %w", err)
	}
	// Request ids first, so that the metrics, the access log and every
	// log line of the request carry them.
	engine.Use(requestid.Middleware())
	if metered != nil {
		engine.Use(metered.Middleware())
		if cfg.MetricsAddr == "" {
			engine.GET("/metrics", gin.WrapH(metered.Handler()))
		}
	}
	engine.Use(requestLog(cfg.Logger), framework.Recovery(cfg.Logger))
	if len(cfg.CORSOrigins) > 0 {
		mw, err := corsMiddleware(cfg.CORSOrigins)
		if err != nil {
			return nil, err
		}
		engine.Use(mw)
	}
	framework.UseProtocolErrors(engine)
	mountWebApp(engine) // Ferry Notes, the offline-first web app, at /
	engine.GET("/healthz", func(c *gin.Context) {
		if err := db.PingContext(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	app.MountRoot(engine) // the accounts plugin's /auth routes, the inspector's /inspector/
	// Compressed answers and request bodies on the sync routes (not the
	// live streams).
	compress, err := framework.Compression(framework.CompressionOptions{})
	if err != nil {
		return nil, err
	}
	app.Mount(engine.Group("/sync", compress)) // the protocol, and plugins' routes under it
	return &Server{App: app, DB: db, JWT: jwt, RxDB: rx, Realtime: live, Metrics: metered, engine: engine, acc: acc, cfg: cfg}, nil
}

// newRealtime builds the realtime plugin on the bus cfg.Realtime names.
func newRealtime(cfg Config, jwtSecret []byte) (*realtime.Plugin, error) {
	kind := cfg.Realtime
	if kind == "" {
		kind = "local"
		if cfg.DatabaseURL != "" {
			kind = "postgres"
		}
	}
	var bus realtime.Bus
	switch kind {
	case "local":
		bus = realtime.NewLocalBus()
	case "postgres":
		if cfg.DatabaseURL == "" {
			return nil, errors.New("FERRY_REALTIME_BUS=postgres needs DATABASE_URL")
		}
		b, err := realtime.NewPostgresBus(cfg.DatabaseURL, realtime.PostgresOptions{Channel: cfg.RealtimeChannel, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		bus = b
	case "nats":
		url := cfg.NATSURL
		if url == "" {
			url = "nats://127.0.0.1:4222"
		}
		bus = realtime.NewNATSBus(url, realtime.NATSOptions{Subject: cfg.RealtimeChannel, Logger: cfg.Logger})
	default:
		return nil, fmt.Errorf("FERRY_REALTIME_BUS=%q: want postgres, nats or local", kind)
	}
	// Stream tokens must open a stream on every replica: their key comes
	// from the secret the replicas share. The stream limits are the RxDB streams' (FERRY_MAX_STREAMS,
	// FERRY_STREAMS_PER_USER, FERRY_STREAM_KEEPALIVE,
	// FERRY_STREAM_WRITE_TIMEOUT), for each kind.
	return realtime.New(realtime.Config{Bus: bus, TokenSecret: derivedKey(jwtSecret, "ferry example app: realtime stream tokens"),
		MaxStreams: cfg.RxDB.MaxStreams, MaxStreamsPerUser: cfg.RxDB.MaxStreamsPerUser,
		KeepAlive: cfg.RxDB.KeepAlive, WriteTimeout: cfg.RxDB.WriteTimeout})
}

// derivedKey is a key for one purpose, made from the JWT secret the
// replicas share: HMAC-SHA256 of the purpose.
func derivedKey(secret []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.DebugContext(c.Request.Context(), "request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "duration", time.Since(start))
	}
}

// Handler is the app's HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Close stops the plugins (live streams end, the realtime bus
// disconnects) and closes the store.
func (s *Server) Close() error {
	return errors.Join(s.App.Close(), s.DB.Close())
}

// Run listens on Config.Addr and serves there (see [Server.Serve]), and
// on Config.MetricsAddr when it is an address of its own (see
// [Server.ServeMetrics]), until ctx is cancelled.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	if s.Metrics == nil || s.cfg.MetricsAddr == "" {
		return s.Serve(ctx, l)
	}
	ml, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		l.Close()
		return fmt.Errorf("FERRY_METRICS_ADDR: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metricsDone := make(chan error, 1)
	go func() {
		err := s.ServeMetrics(ctx, ml)
		cancel() // the app does not run on without its metrics
		metricsDone <- err
	}()
	err = s.Serve(ctx, l)
	cancel()
	return errors.Join(err, <-metricsDone)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// registerModels registers the example models on app, each with its
// policy unless override names another.
func registerModels(app *framework.App, override map[string]framework.ConflictPolicy) error {
	used := 0
	opts := func(name string, o framework.ModelOptions) framework.ModelOptions {
		if p, ok := override[name]; ok {
			o.Policy = p
			used++
		}
		return o
	}
	if err := framework.Register[User](app, opts("data.User", framework.ModelOptions{Schema: "data/user.json", SelfOwned: true})); err != nil {
		return err
	}
	if err := framework.Register[Note](app, opts("data.Note", framework.ModelOptions{Schema: "data/note.json"})); err != nil {
		return err
	}
	for _, m := range []struct{ name, schema string }{
		{"data.Setting", "data/setting.json"},
		{"data.Task", "data/task.json"},
		{"data.List", "data/list.json"},
		// A note's photos, recordings and files: one attachment record
		// each, referring to its blob.
		{"data.Attachment", "data/attachment.json"},
	} {
		if err := app.RegisterSchema(m.name, opts(m.name, framework.ModelOptions{Schema: m.schema})); err != nil {
			return err
		}
	}
	// Docs merge field by field: a device's edit of the title and
	// another's of the body both stand.
	if err := app.RegisterSchema("data.Doc", opts("data.Doc", framework.ModelOptions{Schema: "data/doc.json", Policy: policies.FieldLWW{}})); err != nil {
		return err
	}
	if used != len(override) {
		for name := range override {
			if !slices.Contains(app.Models(), name) {
				return fmt.Errorf("server: Config.Policies names %q, which is not an example model", name)
			}
		}
	}
	return nil
}
