package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
)

// TestE2E runs the end-to-end tests in e2e/ — the real WatermelonDB and
// RxDB libraries syncing through the protocol adapters — against the
// example app, built and started on a free loopback port with a temporary
// data dir, once on SQLite and once on a fresh PostgreSQL schema (skipped
// when PostgreSQL is unreachable, unless FERRY_REQUIRE_POSTGRES=1). It
// needs Node 20+ and npm, and network access for `npm ci`, so it runs
// only with FERRY_E2E=1 (as in CI, where a missing node is a failure):
//
//	FERRY_E2E=1 go test -count=1 -run '^TestE2E$' ./example-app/
func TestE2E(t *testing.T) {
	requireE2E(t, "the WatermelonDB and RxDB end-to-end tests (needs Node 20+ and npm)", "node", "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := buildE2EApp(ctx, t)
	// npm ci needs the registry; one retry rides out a network hiccup.
	if err := tryE2E(ctx, "", "npm", "ci", "--no-audit", "--no-fund"); err != nil {
		t.Logf("npm ci failed, retrying: %v", err)
		runE2E(ctx, t, "", "npm", "ci", "--no-audit", "--no-fund")
	}

	for _, store := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(store), func(t *testing.T) {
			databaseURL := ""
			if store == synctest.Postgres {
				databaseURL = synctest.PostgresURL(t)
			}
			url := startE2EApp(ctx, t, bin, databaseURL)
			runE2E(ctx, t, url, "node", "--test", "--test-concurrency=1", "--test-timeout=120000")
		})
	}
	// Live replication across two replicas on one PostgreSQL, on each bus
	// (it fails with FERRY_REALTIME_BUS=local: replica 2 never hears).
	for _, bus := range []string{"postgres", "nats"} {
		t.Run("replicas-"+bus, func(t *testing.T) {
			if bus == "nats" {
				requireNATS(t)
			}
			databaseURL := synctest.PostgresURL(t)
			shared := []string{"FERRY_REALTIME_BUS=" + bus,
				"FERRY_JWT_SECRET=6532652d7265706c696361732d7365637265742d6532652d7265706c69636173"}
			one := startE2EApp(ctx, t, bin, databaseURL, shared...)
			two := startE2EApp(ctx, t, bin, databaseURL, shared...)
			t.Setenv("FERRY_URL2", two)
			runE2E(ctx, t, one, "node", "--test", "--test-timeout=120000", "replicas.test.js")
		})
	}
}

// requireE2E skips the test unless FERRY_E2E=1 (what names what it
// runs), and fails it when one of tools is not installed.
func requireE2E(t *testing.T, what string, tools ...string) {
	t.Helper()
	if os.Getenv("FERRY_E2E") != "1" {
		t.Skip("set FERRY_E2E=1 to run " + what)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("FERRY_E2E=1 but %s is not installed: %v", tool, err)
		}
	}
}

// buildE2EApp builds the example app into the test's temporary folder.
func buildE2EApp(ctx context.Context, t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "example-app")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startE2EApp starts the built example app on a free loopback port with a
// temporary data dir and returns its URL once it is healthy.
// extra environment variables come last, so they win.
func startE2EApp(ctx context.Context, t *testing.T, bin, databaseURL string, extra ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	srv := exec.Command(bin)
	srv.Env = append(os.Environ(), "FERRY_ADDR="+addr, "FERRY_DATA_DIR="+filepath.Join(t.TempDir(), "data"),
		"DATABASE_URL="+databaseURL, "FERRY_JWT_SECRET=", "FERRY_BCRYPT_COST=4", "FERRY_AUTH_RATE_IP=off")
	srv.Env = append(srv.Env, extra...)
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the example app never became healthy")
		case err := <-exited:
			t.Fatalf("the example app exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runE2E runs a command in e2e/ with FERRY_URL set to url.
func runE2E(ctx context.Context, t *testing.T, url, name string, args ...string) {
	t.Helper()
	runIn(ctx, t, "e2e", []string{"FERRY_URL=" + url}, name, args...)
}

// tryE2E is runE2E that returns the failure, with the output.
func tryE2E(ctx context.Context, url, name string, args ...string) error {
	return tryIn(ctx, "e2e", []string{"FERRY_URL=" + url}, name, args...)
}

// runIn runs a command in dir with env added to the environment, and
// fails the test with its output when it fails.
func runIn(ctx context.Context, t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %v: %v\n%s", dir, name, args, err, out)
	}
	if testing.Verbose() {
		t.Logf("%s: %s %v:\n%s", dir, name, args, out)
	}
}

// tryIn is runIn that returns the failure, with the output.
func tryIn(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %s %v: %w\n%s", dir, name, args, err, out)
	}
	return nil
}
