package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
)

// TestShutdownEndsStreams: an open RxDB event stream does not hold up a
// graceful shutdown.
func TestShutdownEndsStreams(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv, err := server.New(context.Background(), server.Config{
		Addr: addr, DataDir: t.TempDir(), JWTSecret: servertest.Secret, Auth: servertest.Auth(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, synctest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	token, err := srv.JWT.Issue("stream-user")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()
	var resp *http.Response
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/sync/rxdb/tasks/pull/stream", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("server never answered: %v", err)
		}
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if !strings.Contains(line, "RESYNC") {
		t.Fatalf("first line %q", line)
	}
	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown waited for the open stream")
	}
}
