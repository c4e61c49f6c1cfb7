package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/requestid"
)

// series is the value of the sample line that starts with name{labels}
// in a Prometheus text scrape (0 when it is missing).
func series(t *testing.T, scrape, line string) float64 {
	t.Helper()
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, line+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			return f
		}
	}
	return 0
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestMetricsAfterPush: by default the example app serves /metrics on its
// own port; a push moves its counters, the push answer carries its
// request id, and no user's id is in the scrape.
func TestMetricsAfterPush(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ann := e.signUp("ann")
		code, before := getText(t, e.url+"/metrics")
		if code != 200 {
			t.Fatalf("GET /metrics: %d %s", code, before)
		}
		body := jsonBody(map[string]any{"device_id": "phone", "changes": []any{
			note("11111111-1111-4111-8111-111111111111", "2026-06-01T10:00:00Z", "hello"),
			map[string]any{"model": "data.Note", "uid": "22222222-2222-4222-8222-222222222222", "modify_at": "2026-06-01T10:00:00Z", "data": map[string]any{"title": 42}},
		}})
		req, _ := http.NewRequest("POST", e.url+"/sync/push", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ann.Token)
		req.Header.Set(requestid.Header, "scrape-test-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get(requestid.Header) != "scrape-test-1" {
			t.Fatalf("push: %d, request id %q", resp.StatusCode, resp.Header.Get(requestid.Header))
		}
		ann.pullAll("", 0)
		_, after := getText(t, e.url+"/metrics")
		for line, delta := range map[string]float64{
			`ferry_push_changes_total{model="data.Note",status="applied"}`:                             1,
			`ferry_push_changes_total{model="data.Note",status="rejected"}`:                            1,
			`ferry_push_rejections_total{code="invalid",model="data.Note"}`:                            1,
			`ferry_http_request_duration_seconds_count{method="POST",route="/sync/push",status="200"}`: 1,
			`ferry_pull_pages_total`:              1,
			`ferry_live_streams{kind="realtime"}`: 0,
		} {
			if got := series(t, after, line) - series(t, before, line); got != delta {
				t.Errorf("%s moved by %g, want %g", line, got, delta)
			}
		}
		for _, line := range []string{`ferry_live_streams{kind="rxdb"} `, `go_sql_open_connections{db_name="ferry"} `} {
			if !strings.Contains(after, line) {
				t.Errorf("no %s in the scrape", line)
			}
		}
		if strings.Contains(after, ann.ID) {
			t.Errorf("the scrape names user %s", ann.ID)
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestMetricsOnTheirOwnListener: FERRY_METRICS_ADDR moves /metrics off
// the app's port to a listener of its own, which ends with the server;
// "off" serves none.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Setenv("FERRY_METRICS_ADDR", freeAddr(t))
	cfg := servertest.Config(t)
	cfg.MetricsAddr = server.ConfigFromEnv().MetricsAddr
	cfg.Addr = freeAddr(t)
	srv, err := server.New(context.Background(), cfg, synctest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()
	var code int
	var scrape string
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, scrape = resp.StatusCode, string(b)
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the metrics listener never answered: %v", err)
		}
	}
	if code != 200 || !strings.Contains(scrape, "ferry_push_changes_total") && !strings.Contains(scrape, "# HELP ferry_pull_pages_total") {
		t.Fatalf("metrics listener: %d\n%s", code, scrape)
	}
	if code, body := getText(t, "http://"+cfg.MetricsAddr+"/sync/pull"); code != 404 {
		t.Fatalf("the metrics listener serves the app: %d %s", code, body)
	}
	code, body := getText(t, "http://"+cfg.Addr+"/metrics")
	var shape struct{ Error struct{ Code string } }
	if code != 404 || json.Unmarshal([]byte(body), &shape) != nil || shape.Error.Code != "not_found" {
		t.Fatalf("the app's port still serves /metrics: %d %s", code, body)
	}
	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end")
	}
	if _, err := http.Get("http://" + cfg.MetricsAddr + "/metrics"); err == nil {
		t.Fatal("the metrics listener outlived the server")
	}

	cfg = servertest.Config(t)
	cfg.MetricsAddr = server.MetricsOff
	off := servertest.StartWith(t, synctest.OpenSQLite(t), cfg)
	if off.Server.Metrics != nil {
		t.Fatal("metrics plugin built with metrics off")
	}
	if code, _ := getText(t, off.URL+"/metrics"); code != 404 {
		t.Fatalf("metrics off: GET /metrics is %d", code)
	}
}

// TestRequestIDInLogs: the example app's log lines of a request carry
// its id, generated when the client sent none.
func TestRequestIDInLogs(t *testing.T) {
	logs := &lockedBuffer{}
	cfg := servertest.Config(t)
	cfg.Logger = slog.New(requestid.NewHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	st := servertest.StartWith(t, synctest.OpenSQLite(t), cfg)
	resp, err := http.Get(st.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get(requestid.Header)
	if id == "" {
		t.Fatal("no request id echoed")
	}
	// The access log is written once the handler returns, which may be
	// a moment after the client has its answer.
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["path"] == "/healthz" {
				if m[requestid.LogKey] != id {
					t.Fatalf("access log %s, want request_id %s", l, id)
				}
				return
			}
		}
	}
	t.Fatalf("no access log line of the request:\n%s", logs.String())
}

// lockedBuffer is a log sink the server's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
