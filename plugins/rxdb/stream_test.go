package rxdb_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/jwtauth"
	"github.com/ferrysync/ferry/plugins/realtime"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

// streamEnv is an app with the RxDB plugin and jwtauth over real HTTP.
type streamEnv struct {
	t   *testing.T
	app *framework.App
	rx  *rxdb.Plugin
	jwt *jwtauth.Plugin
	url string
}

type streamOptions struct {
	rx       rxdb.Config
	tokenTTL time.Duration
	// revocation, when set, is jwtauth's (asked on every request).
	revocation jwtauth.Revocation
	// server changes the test server before it starts.
	server func(*http.Server)
	// live, when set, is a realtime plugin used beside RxDB's (and as
	// its source of hints from other replicas); the App is started.
	live *realtime.Plugin
}

func newStreamEnv(t *testing.T, db *bun.DB, o streamOptions) *streamEnv {
	t.Helper()
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"task.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	jwt, err := jwtauth.New(jwtauth.Config{Secret: []byte("stream-test-secret-stream-test-secret"), TTL: o.tokenTTL,
		Revocation: o.revocation, RevocationCache: -1})
	if err != nil {
		t.Fatal(err)
	}
	o.rx.Collections = map[string]string{"tasks": "data.Task"}
	if o.live != nil {
		o.rx.Hints = o.live
	}
	rx, err := rxdb.New(o.rx)
	if err != nil {
		t.Fatal(err)
	}
	if o.live != nil {
		app.MustUse(jwt, o.live, rx)
	} else {
		app.MustUse(jwt, rx)
	}
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o.live != nil {
		if err := app.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Close() })
	}
	router := gin.New()
	app.Mount(router.Group("/sync"))
	hs := httptest.NewUnstartedServer(router)
	if o.server != nil {
		o.server(hs.Config)
	}
	hs.Start()
	t.Cleanup(func() { rx.Close(); hs.Close() })
	return &streamEnv{t: t, app: app, rx: rx, jwt: jwt, url: hs.URL}
}

func (e *streamEnv) token(user string) string {
	e.t.Helper()
	tok, err := e.jwt.Issue(user)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// stream is an open event stream read line by line.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// open opens a stream of user; it returns the answer when it is not 200,
// and otherwise reads the first event ("RESYNC").
func (e *streamEnv) open(token string) (*stream, *http.Response) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/sync/rxdb/tasks/pull/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	s := &stream{t: e.t, resp: resp, r: bufio.NewReader(resp.Body)}
	e.t.Cleanup(func() { resp.Body.Close() })
	if ev := s.next(); ev != `"RESYNC"` {
		e.t.Fatalf("first event %s", ev)
	}
	return s, resp
}

// next returns the data of the next event, skipping comments.
func (s *stream) next() string {
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

func (e *streamEnv) push(user string, docs ...map[string]any) {
	e.t.Helper()
	changes := make([]*framework.Change, len(docs))
	now := framework.Time{Time: time.Now().UTC()}
	for i, d := range docs {
		data, _ := json.Marshal(d)
		changes[i] = &framework.Change{Model: "data.Task", UID: d["id"].(string), ModifyAt: now, Data: data}
	}
	res, err := e.app.Push(context.Background(), framework.Principal{UserID: user}, changes)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != framework.StatusApplied {
			e.t.Fatalf("push: %+v", r)
		}
	}
}

// waitStreams waits (generously) until the plugin holds n streams.
func (e *streamEnv) waitStreams(n int) {
	e.t.Helper()
	for start := time.Now(); e.rx.Streams() != n; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			e.t.Fatalf("the plugin holds %d streams, want %d", e.rx.Streams(), n)
		}
	}
}

func wantRefusal(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("refusal is not in the error shape: %v", err)
	}
	if resp.StatusCode != status || body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("answer %d %+v, want %d %s", resp.StatusCode, body, status, code)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "30" {
		t.Fatalf("Retry-After %q", ra)
	}
}

// TestStreamCaps: streams beyond the per-user cap are answered 429, beyond
// the total cap 503, both with Retry-After; a closed stream frees its slot.
func TestStreamCaps(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, synctest.OpenSQLite(t), streamOptions{rx: rxdb.Config{MaxStreamsPerUser: 3, MaxStreams: 5}})
	ann, bob, cat := e.token("ann"), e.token("bob"), e.token("cat")
	var anns []*stream
	for range 3 {
		s, resp := e.open(ann)
		if s == nil {
			t.Fatalf("ann's stream: %d", resp.StatusCode)
		}
		anns = append(anns, s)
	}
	_, resp := e.open(ann)
	wantRefusal(t, resp, http.StatusTooManyRequests, framework.CodeRateLimited)
	for range 2 {
		if s, resp := e.open(bob); s == nil {
			t.Fatalf("bob's stream: %d", resp.StatusCode)
		}
	}
	_, resp = e.open(cat)
	wantRefusal(t, resp, http.StatusServiceUnavailable, framework.CodeUnavailable)
	anns[0].resp.Body.Close()
	e.waitStreams(4)
	if s, resp := e.open(cat); s == nil {
		t.Fatalf("after a stream closed: %d", resp.StatusCode)
	}
	// The streams still work.
	e.push("ann", map[string]any{"id": "t1", "title": "one"})
	if ev := anns[1].next(); !strings.Contains(ev, `"t1"`) {
		t.Fatalf("event %s", ev)
	}
}

// TestStreamLivesPastServerTimeouts: a stream served by an http.Server
// with short ReadTimeout and WriteTimeout keeps receiving heartbeats and
// events long after both.
func TestStreamLivesPastServerTimeouts(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, synctest.OpenSQLite(t), streamOptions{
		rx:     rxdb.Config{KeepAlive: 50 * time.Millisecond},
		server: func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond },
	})
	s, resp := e.open(e.token("ann"))
	if s == nil {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	// Heartbeats arrive past the server's timeouts.
	deadline := time.Now().Add(2500 * time.Millisecond)
	beats := 0
	for time.Now().Before(deadline) || beats < 3 {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended after %d heartbeats: %v", beats, err)
		}
		if line == ": keep-alive\n" {
			beats++
		}
	}
	e.push("ann", map[string]any{"id": "late", "title": "after the timeouts"})
	if ev := s.next(); !strings.Contains(ev, `"late"`) {
		t.Fatalf("event %s", ev)
	}
}

// TestStreamEndsAtTokenExpiry: the stream of a token that expires ends
// then (after a comment that says why); the client reconnects with a fresh
// token.
func TestStreamEndsAtTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, synctest.OpenSQLite(t), streamOptions{tokenTTL: 2 * time.Second})
	issued := time.Now()
	s, resp := e.open(e.token("ann"))
	if s == nil {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	ended := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(s.r)
		ended <- string(rest)
	}()
	select {
	case rest := <-ended:
		// jwt expiry has whole seconds: the token lived at least 1 s.
		if time.Since(issued) < time.Second {
			t.Fatalf("the stream ended after %s, before its token expired", time.Since(issued))
		}
		if !strings.Contains(rest, "token expired") {
			t.Fatalf("the stream ended with %q", rest)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream outlived its token")
	}
	e.waitStreams(0)
	if s, resp := e.open(e.token("ann")); s == nil {
		t.Fatalf("reconnecting with a fresh token: %d", resp.StatusCode)
	}
}

// TestStreamEndsWhenItsTokenIsRevoked: a stream does not outlive a
// revocation (a password change, a deleted account, a logout): at the
// next keep-alive it asks the authenticator again and ends.
func TestStreamEndsWhenItsTokenIsRevoked(t *testing.T) {
	t.Parallel()
	var generation atomic.Int64
	revocation := jwtauth.RevocationFunc(func(context.Context, string) (int64, error) { return generation.Load(), nil })
	e := newStreamEnv(t, synctest.OpenSQLite(t), streamOptions{revocation: revocation, rx: rxdb.Config{KeepAlive: 100 * time.Millisecond}})
	s, resp := e.open(e.token("ann"))
	if s == nil {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	ended := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(s.r)
		ended <- string(rest)
	}()
	select {
	case rest := <-ended:
		t.Fatalf("the stream ended before any revocation: %q", rest)
	case <-time.After(500 * time.Millisecond): // several keep-alives
	}
	generation.Store(1) // every token issued before is revoked
	select {
	case rest := <-ended:
		if !strings.Contains(rest, "no longer valid") {
			t.Fatalf("the stream ended with %q", rest)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream outlived its revoked token")
	}
	e.waitStreams(0)
}

// TestStreamEventBounds: changes larger than one event may carry (more
// documents, more bytes) are announced as "RESYNC", and the stream goes on
// from there with small events, on both stores.
func TestStreamEventBounds(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newStreamEnv(t, db, streamOptions{rx: rxdb.Config{MaxEventDocuments: 3, MaxEventBytes: 10_000}})
		s, resp := e.open(e.token("ann"))
		if s == nil {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		small := func(id string) map[string]any { return map[string]any{"id": id, "title": id} }
		event := func() rxdb.Batch {
			t.Helper()
			var b rxdb.Batch
			if ev := s.next(); json.Unmarshal([]byte(ev), &b) != nil || b.Documents == nil {
				t.Fatalf("want documents, got %s", ev)
			}
			return b
		}
		e.push("ann", small("a1"))
		if b := event(); len(b.Documents) != 1 || string(b.Documents[0]["id"]) != `"a1"` {
			t.Fatalf("event %+v", b)
		}
		e.push("ann", small("b1"), small("b2"), small("b3"), small("b4"))
		if ev := s.next(); ev != `"RESYNC"` {
			t.Fatalf("4 documents (cap 3): %s", ev)
		}
		e.push("ann", map[string]any{"id": "big", "title": strings.Repeat("x", 20_000)})
		if ev := s.next(); ev != `"RESYNC"` {
			t.Fatalf("20 KB (cap 10 KB): %.80s", ev)
		}
		e.push("ann", small("c1"), small("c2"))
		b := event()
		if len(b.Documents) != 2 || string(b.Documents[0]["id"]) != `"c1"` || string(b.Documents[1]["id"]) != `"c2"` {
			t.Fatalf("after RESYNC the stream sends only what is new: %+v", b)
		}
		// 1 + 4 + 1 + 2 writes: the checkpoint is the last one's version.
		if b.Checkpoint.Seq != 8 {
			t.Fatalf("checkpoint %d", b.Checkpoint.Seq)
		}
	})
}

// TestStreamDropsReaderThatDoesNotRead: a client that opens a stream and
// stops reading is dropped once a write waits longer than WriteTimeout,
// and what the stream held is freed. Not parallel: it measures the heap.
func TestStreamDropsReaderThatDoesNotRead(t *testing.T) {
	e := newStreamEnv(t, synctest.OpenSQLite(t), streamOptions{rx: rxdb.Config{
		WriteTimeout: 300 * time.Millisecond, MaxEventBytes: 64 << 20, MaxEventDocuments: 100,
	}})
	// A small receive window, so that the server's writes block soon.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := dialer.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /sync/rxdb/tasks/pull/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", e.token("ann"))
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, "RESYNC") {
			break
		}
	}
	e.waitStreams(1)
	before := heap()
	// 24 MB of documents: far more than the socket buffers hold, so the
	// event's write blocks.
	docs := make([]map[string]any, 24)
	for i := range docs {
		docs[i] = map[string]any{"id": fmt.Sprintf("d%d", i), "title": strings.Repeat("x", 1<<20-100)} // just under Config.MaxDataBytes
	}
	e.push("ann", docs...)
	docs = nil
	e.waitStreams(0)
	// The event (24 MB encoded, and its documents) is garbage now.
	after := heap()
	t.Logf("heap before %d KiB after %d KiB", before>>10, after>>10)
	if after > before+8<<20 {
		t.Fatalf("heap %d MiB after the stream was dropped, %d MiB before the push", after>>20, before>>20)
	}
	// The connection is closed: reading what the buffers held ends.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the dropped stream's connection: %v", err)
	}
}

func heap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
