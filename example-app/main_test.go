package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryServesAndStopsGracefully builds the example app, starts it the
// way the README says (SQLite, no other service), waits for /healthz, and
// checks that SIGTERM stops it cleanly.
func TestBinaryServesAndStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "example-app")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FERRY_ADDR="+addr, "FERRY_DATA_DIR="+filepath.Join(dir, "data"), "DATABASE_URL=")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never became healthy:\n%s", logs.String())
		case err := <-done:
			t.Fatalf("exited early: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "ferry.db")); err != nil {
		t.Fatalf("no SQLite file in the data dir: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not stop after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Fatalf("no shutdown log:\n%s", logs.String())
	}
}
