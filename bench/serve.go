package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
)

// serveMain is the child process: the example app, exactly as
// example-app/server builds it, served with net/http on a loopback port
// chosen by the kernel. It prints "ADDR host:port" on stdout once it
// accepts connections, and shuts down when its stdin closes (the parent
// exited or is done) or on SIGTERM/SIGINT, writing the CPU and heap
// profiles it was asked for.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dbURL := fs.String("database-url", "", "PostgreSQL URL (empty: SQLite)")
	sqlitePath := fs.String("sqlite", "", "SQLite file")
	dataDir := fs.String("data-dir", "", "data directory")
	secret := fs.String("secret", "", "JWT secret")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server here")
	memProfile := fs.String("memprofile", "", "write a heap profile of the server here at exit")
	quota := fs.Bool("quota", false, "keep the example app's default quota (usage accounting on)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()

	var db *bun.DB
	var err error
	if *dbURL != "" {
		db, err = models.OpenPostgres(ctx, *dbURL)
	} else {
		db, err = models.OpenSQLite(ctx, *sqlitePath)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	// On PostgreSQL the server publishes live hints through the
	// database's LISTEN/NOTIFY, as the example app does there
	// (FERRY_REALTIME_BUS=local measures without).
	// Without -quota the server has no quota, as the baseline has none,
	// so it keeps no usage counters (framework.UsageAuto).
	quotaCfg := framework.Quota{MaxRecords: -1, MaxBytes: -1} // the example's "no limit"
	if *quota {
		quotaCfg = framework.Quota{}
	}
	srv, err := server.New(ctx, server.Config{DataDir: *dataDir, JWTSecret: *secret, Logger: log,
		DatabaseURL: *dbURL, Realtime: os.Getenv("FERRY_REALTIME_BUS"), ConflictLogOff: os.Getenv("FERRY_CONFLICT_LOG") == "off", Quota: quotaCfg, MaxSpaces: 1000, // the spaces workload's widest member
		// The benchmarks sign users up by the dozen from one address and
		// measure sync, not password hashing.
		Auth: server.AuthConfig{PasswordCost: bcrypt.MinCost, PerIP: server.RateLimit{Requests: -1}, PerAccount: server.RateLimit{Requests: -1}}}, db)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("ADDR %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if *memProfile != "" {
		runtime.GC()
		f, err := os.Create(filepath.Clean(*memProfile))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return nil
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
