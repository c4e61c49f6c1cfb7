// Package server is Ferry's example app: data.User (a proxy over the
// accounts table that owns itself), data.Note (owned by its user), the
// schema-only data.Setting and data.Task (exposed to WatermelonDB apps as
// table "tasks" and to RxDB apps as collection "tasks"), with sign-up and
// login, on an embedded SQLite file by default and on PostgreSQL when
// DATABASE_URL is set.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/jwtauth"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/ferrysync/ferry/plugins/watermelon"
	"github.com/ferrysync/ferry/schemas"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// Config is the example app's configuration; [ConfigFromEnv] reads it from
// the environment.
type Config struct {
	// Addr is the listen address (FERRY_ADDR, default 127.0.0.1:8080).
	Addr string
	// DataDir holds the SQLite file and a generated JWT secret
	// (FERRY_DATA_DIR, default ./data).
	DataDir string
	// DatabaseURL selects PostgreSQL when set (DATABASE_URL).
	DatabaseURL string
	// JWTSecret signs tokens (FERRY_JWT_SECRET); when empty a secret is
	// generated once and kept in DataDir.
	JWTSecret string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// HTTP bounds connections: timeouts, header size, connection cap (see
	// [HTTPConfig] for the FERRY_… variables and defaults).
	HTTP HTTPConfig
	// RxDB configures the RxDB plugin's live streams (its Collections are
	// the app's): FERRY_STREAMS_PER_USER, FERRY_MAX_STREAMS (default half
	// of HTTP.MaxConns), FERRY_STREAM_WRITE_TIMEOUT, FERRY_STREAM_KEEPALIVE,
	// FERRY_STREAM_EVENT_DOCUMENTS and FERRY_STREAM_EVENT_BYTES; zero
	// fields take rxdb's defaults.
	RxDB rxdb.Config
	// envErr is a variable ConfigFromEnv could not parse; New returns it.
	envErr error
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() Config {
	cfg := Config{
		Addr:        envOr("FERRY_ADDR", "127.0.0.1:8080"),
		DataDir:     envOr("FERRY_DATA_DIR", "./data"),
		DatabaseURL: os.Getenv("DATABASE_URL"),
		JWTSecret:   os.Getenv("FERRY_JWT_SECRET"),
	}
	cfg.envErr = connEnv(&cfg)
	return cfg
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Server is a built example app.
type Server struct {
	App *framework.App
	DB  *bun.DB
	JWT *jwtauth.Plugin
	// RxDB serves the RxDB replication of tasks; Run closes its streams on
	// shutdown.
	RxDB   *rxdb.Plugin
	engine *gin.Engine
	cfg    Config
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
	if cfg.DatabaseURL != "" {
		return models.OpenPostgres(ctx, cfg.DatabaseURL)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return models.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "ferry.db"))
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
	if err := connDefaults(&cfg); err != nil {
		return nil, err
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return nil, err
	}
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas.Examples, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if err := framework.Register[User](app, framework.ModelOptions{Schema: "data/user.json", SelfOwned: true}); err != nil {
		return nil, err
	}
	if err := framework.Register[Note](app, framework.ModelOptions{Schema: "data/note.json"}); err != nil {
		return nil, err
	}
	if err := app.RegisterSchema("data.Setting", framework.ModelOptions{Schema: "data/setting.json"}); err != nil {
		return nil, err
	}
	if err := app.RegisterSchema("data.Task", framework.ModelOptions{Schema: "data/task.json"}); err != nil {
		return nil, err
	}
	jwt, err := jwtauth.New(jwtauth.Config{Secret: secret})
	if err != nil {
		return nil, err
	}
	acc := &accounts{jwt: jwt}
	// WatermelonDB apps sync at /sync/watermelon, RxDB apps at /sync/rxdb/tasks/….
	wmelon, err := watermelon.New(watermelon.Config{Tables: map[string]string{"tasks": "data.Task"}})
	if err != nil {
		return nil, err
	}
	rxCfg := cfg.RxDB
	rxCfg.Collections = map[string]string{"tasks": "data.Task"}
	rx, err := rxdb.New(rxCfg)
	if err != nil {
		return nil, err
	}
	if err := app.Use(jwt, acc, wmelon, rx); err != nil {
		return nil, err
	}
	if err := app.Migrate(ctx); err != nil {
		return nil, err
	}
	engine := gin.New()
	engine.Use(requestLog(cfg.Logger))
	framework.UseProtocolErrors(engine)
	engine.GET("/healthz", func(c *gin.Context) {
		if err := db.PingContext(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	acc.mount(engine.Group("/auth"))
	app.Mount(engine.Group("/sync"))
	return &Server{App: app, DB: db, JWT: jwt, RxDB: rx, engine: engine, cfg: cfg}, nil
}

// jwtSecret returns the configured secret, or one generated once and kept
// beside the database file so tokens survive restarts.
func jwtSecret(cfg Config) ([]byte, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return []byte(secret), nil
}

func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "duration", time.Since(start))
	}
}

// Handler is the app's HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Close closes the store.
func (s *Server) Close() error { return s.DB.Close() }

// Run listens on Config.Addr and serves there: see [Server.Serve].
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}
