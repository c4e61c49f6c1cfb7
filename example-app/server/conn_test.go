package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// serveEnv serves the example app with cfg's limits through Server.Serve
// on a real loopback listener, until the test ends.
func serveEnv(t *testing.T, db *bun.DB, cfg server.Config) (*env, string) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = servertest.Secret
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := l.Addr().String()
	return &env{t: t, srv: srv, url: "http://" + addr}, addr
}

// within fails the test unless done is closed within a generous bound.
func within(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not within 20s", what)
	}
}

// TestSlowBodyIsCut: clients that send their body one byte at a time are
// disconnected once ReadTimeout has passed, while a normal client is
// served meanwhile.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	e, addr := serveEnv(t, synctest.OpenSQLite(t), server.Config{HTTP: server.HTTPConfig{ReadTimeout: timeout}})
	ann := e.signUp("slow-body")
	const slow = 20
	type cut struct {
		after  time.Duration
		answer string
		sent   int
	}
	cuts := make(chan cut, slow)
	for range slow {
		start := time.Now() // before the server's clock starts: at accept
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", ann.Token)
		stopped := make(chan struct{})
		sent := 0
		go func() { // one byte every 50 ms: 100,000 bytes would take 83 minutes
			defer close(stopped)
			for ; sent < 100_000; sent++ {
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-t.Context().Done():
					return
				}
			}
		}()
		go func() {
			answer, _ := io.ReadAll(conn) // until the server closes
			after := time.Since(start)
			conn.Close()
			<-stopped
			cuts <- cut{after, string(answer), sent}
		}()
	}
	// A normal client is served while the slow ones hold their connections.
	if got := ann.push(note("slow-body-1", nowStamp(), "fine")); got[0].Status != "applied" {
		t.Fatalf("normal push: %+v", got)
	}
	done := make(chan struct{})
	var all []cut
	go func() {
		for range slow {
			all = append(all, <-cuts)
		}
		close(done)
	}()
	within(t, "cutting the slow clients", done)
	for _, c := range all {
		if c.after < timeout {
			t.Errorf("cut after %s, before the %s timeout", c.after, timeout)
		}
		if c.sent >= 100_000 {
			t.Errorf("a slow client sent its whole body")
		}
		if c.answer != "" && !strings.HasPrefix(c.answer, "HTTP/1.1 400") {
			t.Errorf("the slow client was answered %.60q", c.answer)
		}
	}
	if st := e.do("GET", "/healthz", "", "", nil); st != 200 {
		t.Fatalf("healthz after: %d", st)
	}
}

// TestIdleConnectionClosed: a keep-alive connection that sends nothing
// more is closed after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	_, addr := serveEnv(t, synctest.OpenSQLite(t), server.Config{HTTP: server.HTTPConfig{IdleTimeout: idle}})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := time.Now() // before the server's idle clock starts
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, br) // ends when the server closes
		close(closed)
	}()
	within(t, "closing the idle connection", closed)
	if d := time.Since(sent); d < idle {
		t.Fatalf("closed after %s, before IdleTimeout %s", d, idle)
	}
}

// TestHeaderCap: a header block over MaxHeaderBytes is answered 431; one
// under it is served.
func TestHeaderCap(t *testing.T) {
	t.Parallel()
	e, _ := serveEnv(t, synctest.OpenSQLite(t), server.Config{HTTP: server.HTTPConfig{MaxHeaderBytes: 4096}})
	get := func(header int) int {
		req, _ := http.NewRequest("GET", e.url+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(3000); st != 200 {
		t.Fatalf("3 KB of headers: %d", st)
	}
	// net/http allows 4 KiB over the cap: 16 KB is well beyond, and far
	// under net/http's own default of 1 MB.
	if st := get(16_000); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("16 KB of headers: %d, want 431", st)
	}
	if st := get(10); st != 200 {
		t.Fatalf("after: %d", st)
	}
}

// TestConnectionCap: with MaxConns connections open, one more waits in
// the kernel's accept queue unanswered, and is served as soon as one
// closes.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	const maxConns = 3
	_, addr := serveEnv(t, synctest.OpenSQLite(t), server.Config{HTTP: server.HTTPConfig{MaxConns: maxConns, IdleTimeout: time.Minute}})
	// Each connection is served once, so it is surely accepted, and then
	// kept open.
	held := make([]net.Conn, maxConns)
	for i := range held {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		held[i] = conn
	}
	extra, err := net.Dial("tcp", addr) // the kernel completes the handshake
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	fmt.Fprint(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	answered := make(chan struct{})
	var status int
	go func() {
		if resp, err := http.ReadResponse(bufio.NewReader(extra), nil); err == nil {
			status = resp.StatusCode
		}
		close(answered)
	}()
	select {
	case <-answered:
		t.Fatalf("connection %d was served while %d were open (status %d)", maxConns+1, maxConns, status)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].Close()
	within(t, "serving the waiting connection", answered)
	if status != 200 {
		t.Fatalf("the waiting connection: %d", status)
	}
}

// TestStreamLivesPastTimeouts: a live stream outlives ReadTimeout and
// WriteTimeout several times over and still carries events. (The token is
// issued and the event pushed without HTTP: with such short timeouts a
// sign-up on a loaded machine could be cut.)
func TestStreamLivesPastTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	e, _ := serveEnv(t, synctest.OpenSQLite(t), server.Config{
		HTTP: server.HTTPConfig{ReadTimeout: timeout, WriteTimeout: timeout},
	})
	token, err := e.srv.JWT.Issue("long-stream")
	if err != nil {
		t.Fatal(err)
	}
	s := openStream(t, e, token)
	defer s.close()
	if ev := s.next(); ev != `"RESYNC"` {
		t.Fatalf("first event %s", ev)
	}
	time.Sleep(5 * timeout)
	data, _ := json.Marshal(map[string]any{"title": "late"})
	res, err := e.srv.App.Push(context.Background(), framework.Principal{UserID: "long-stream"}, []*framework.Change{
		{Model: "data.Task", UID: "late1", ModifyAt: framework.Time{Time: time.Now().UTC()}, Data: data},
	})
	if err != nil || res[0].Status != framework.StatusApplied {
		t.Fatalf("push: %v %+v", err, res)
	}
	if ev := s.next(); !strings.Contains(ev, `"late1"`) {
		t.Fatalf("event after the timeouts: %s", ev)
	}
}

// TestStreamsPerUser: one user's 101st stream is refused with 429 and
// Retry-After in the error shape, while another user can still open one
// and a closed stream frees its slot (rxdb's default cap of 100), on both
// stores.
func TestStreamsPerUser(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e, _ := serveEnv(t, db, server.Config{})
		ann, bob := e.signUp("streams-ann"), e.signUp("streams-bob")
		streams := make([]*rawStream, 100)
		for i := range streams {
			streams[i] = openStream(t, e, ann.Token)
			defer streams[i].close()
			if ev := streams[i].next(); ev != `"RESYNC"` {
				t.Fatalf("stream %d: %s", i, ev)
			}
		}
		req, _ := http.NewRequest("GET", e.url+"/sync/rxdb/tasks/pull/stream", nil)
		req.Header.Set("Authorization", "Bearer "+ann.Token)
		var ae apiError
		if st := e.send(req, &ae); st != http.StatusTooManyRequests || ae.Error.Code != "rate_limited" {
			t.Fatalf("the 101st stream: %d %+v", st, ae)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ra := resp.Header.Get("Retry-After"); ra == "" {
			t.Fatal("no Retry-After")
		}
		b := openStream(t, e, bob.Token)
		defer b.close()
		if ev := b.next(); ev != `"RESYNC"` {
			t.Fatalf("bob's stream: %s", ev)
		}
		streams[0].close()
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			s, status := tryStream(t, e, ann.Token)
			if s != nil {
				s.close()
				break
			}
			if status != http.StatusTooManyRequests || time.Since(start) > 20*time.Second {
				t.Fatalf("after closing one: %d", status)
			}
		}
		// The streams that stayed open still carry events.
		ann.rxPush(row(rxDoc("many1", "hello"), nil))
		if ev := streams[99].next(); !strings.Contains(ev, `"many1"`) {
			t.Fatalf("event %s", ev)
		}
	})
}

// rawStream is an RxDB event stream read line by line.
type rawStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func tryStream(t *testing.T, e *env, token string) (*rawStream, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/sync/rxdb/tasks/pull/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	return &rawStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}, resp.StatusCode
}

func openStream(t *testing.T, e *env, token string) *rawStream {
	t.Helper()
	s, status := tryStream(t, e, token)
	if s == nil {
		t.Fatalf("stream: %d", status)
	}
	return s
}

func (s *rawStream) close() { s.resp.Body.Close() }

// next returns the data of the next event, skipping comments.
func (s *rawStream) next() string {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream ended: %v", err)
		}
		if data, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
			return data
		}
	}
}

// TestConfigFromEnv: the limits are read from FERRY_ variables; a bad
// value is an error that names the variable, and streams may not take
// every connection.
func TestConfigFromEnv(t *testing.T) {
	t.Setenv("FERRY_READ_TIMEOUT", "7s")
	t.Setenv("FERRY_MAX_CONNS", "50")
	t.Setenv("FERRY_STREAMS_PER_USER", "4")
	t.Setenv("FERRY_STREAM_EVENT_BYTES", "2048")
	cfg := server.ConfigFromEnv()
	if cfg.HTTP.ReadTimeout != 7*time.Second || cfg.HTTP.MaxConns != 50 || cfg.RxDB.MaxStreamsPerUser != 4 || cfg.RxDB.MaxEventBytes != 2048 {
		t.Fatalf("config %+v %+v", cfg.HTTP, cfg.RxDB)
	}
	db := synctest.OpenSQLite(t)
	cfg.DataDir, cfg.JWTSecret = t.TempDir(), servertest.Secret
	srv, err := server.New(context.Background(), cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.RxDB.Config(); got.MaxStreams != 12 || got.MaxStreamsPerUser != 4 {
		t.Fatalf("rxdb config: streams %d per user %d; want a quarter of the connections and 4", got.MaxStreams, got.MaxStreamsPerUser)
	}
	if got := srv.Realtime.Config(); got.MaxStreams != 12 || got.MaxStreamsPerUser != 4 {
		t.Fatalf("realtime config: streams %d per user %d; want a quarter of the connections and 4", got.MaxStreams, got.MaxStreamsPerUser)
	}

	t.Setenv("FERRY_IDLE_TIMEOUT", "soon")
	if _, err := server.New(context.Background(), server.ConfigFromEnv(), db); err == nil || !strings.Contains(err.Error(), "FERRY_IDLE_TIMEOUT") {
		t.Fatalf("a bad duration: %v", err)
	}
	t.Setenv("FERRY_IDLE_TIMEOUT", "")
	t.Setenv("FERRY_MAX_STREAMS", "25") // twice that is every connection
	bad := server.ConfigFromEnv()
	bad.DataDir, bad.JWTSecret = t.TempDir(), servertest.Secret
	if _, err := server.New(context.Background(), bad, db); err == nil || !strings.Contains(err.Error(), "FERRY_MAX_STREAMS") {
		t.Fatalf("streams as many as connections: %v", err)
	}
	t.Setenv("FERRY_MAX_STREAMS", "")
	for v, want := range map[string]string{"1000": "", "many": "FERRY_MAX_SPACES", "5000": "MaxSpaces 5000 is above 1000"} {
		t.Setenv("FERRY_MAX_SPACES", v)
		cfg := server.ConfigFromEnv()
		cfg.DataDir, cfg.JWTSecret = t.TempDir(), servertest.Secret
		_, err := server.New(context.Background(), cfg, db)
		if want == "" && (err != nil || cfg.MaxSpaces != 1000) || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("FERRY_MAX_SPACES=%s: %d, %v", v, cfg.MaxSpaces, err)
		}
	}
}
