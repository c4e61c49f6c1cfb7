// Command example-app runs Ferry's example sync server. Configuration comes
// from the environment (FERRY_ADDR, FERRY_DATA_DIR, DATABASE_URL,
// FERRY_JWT_SECRET, FERRY_METRICS_ADDR, and the limits' FERRY_… variables listed in the
// README's configuration table); flags mirror the first three.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/plugins/requestid"
	"github.com/gin-gonic/gin"
)

func main() {
	cfg := server.ConfigFromEnv()
	flag.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (FERRY_ADDR)")
	flag.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the SQLite file and generated secret (FERRY_DATA_DIR)")
	flag.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "PostgreSQL URL; SQLite when empty (DATABASE_URL)")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
	// Log lines of a request carry its X-Request-Id (request_id=…).
	log := slog.New(requestid.NewHandler(slog.NewTextHandler(os.Stderr, nil)))
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		log.Error("start", "err", err)
		os.Exit(1)
	}
	defer srv.Close()
	if err := srv.Run(ctx); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
	log.Info("stopped")
}
