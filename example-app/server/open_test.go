package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/framework/synctest"
)

// TestOpenSQLiteKeepsSecretAndData starts the app the way `go run
// ./example-app` does, on a SQLite file with a generated secret, restarts
// it, and checks that the token and the data survived.
func TestOpenSQLiteKeepsSecretAndData(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	start := func() (*env, func()) {
		srv, err := server.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		return &env{t: t, srv: srv, url: hs.URL}, func() { hs.Close(); srv.Close() }
	}
	e, stop := start()
	ann := e.signUp("ann-restart")
	ann.push(note("kept", t1, "survives restarts"))
	stop()
	if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); err != nil {
		t.Fatalf("secret not kept: %v", err)
	}
	e, stop = start()
	defer stop()
	ann.e = e
	changes, _ := ann.pullAll("", 0)
	if got := latest(changes)["data.Note/kept"]; got.Data["title"] != "survives restarts" {
		t.Fatalf("after restart: %+v", latest(changes))
	}
	var health map[string]string
	if st := e.do("GET", "/healthz", "", "", &health); st != 200 || health["status"] != "ok" {
		t.Fatalf("healthz: %d %v", st, health)
	}
}

// TestOpenPostgresFromURL starts the app the way DATABASE_URL=postgres://…
// does.
func TestOpenPostgresFromURL(t *testing.T) {
	cfg := server.Config{DataDir: t.TempDir(), DatabaseURL: synctest.PostgresURL(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if name := srv.DB.Dialect().Name().String(); name != "pg" {
		t.Fatalf("dialect %s", name)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{t: t, srv: srv, url: hs.URL}
	ann := e.signUp("ann-pg")
	if res := ann.push(note("pg", t1, "on postgres")); res[0].Status != "applied" {
		t.Fatalf("%+v", res)
	}
}
