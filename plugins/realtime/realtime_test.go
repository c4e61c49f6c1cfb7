package realtime_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/realtime"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

// auth is the tests' authenticator: "Bearer <user>" is that user, unless
// revoked; expires gives a user's credentials an expiry.
type auth struct {
	mu      sync.Mutex
	revoked map[string]bool
	expires map[string]time.Time
}

func (a *auth) Authenticate(r *http.Request) (framework.Principal, error) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	defer a.mu.Unlock()
	if !ok || user == "" || a.revoked[user] {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "bad token")
	}
	return framework.Principal{UserID: user, ExpiresAt: a.expires[user]}, nil
}

func (a *auth) revoke(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[user] = true
}

// env is one replica: an App with the realtime plugin over real HTTP.
type env struct {
	t    *testing.T
	app  *framework.App
	rt   *realtime.Plugin
	auth *auth
	url  string
	now  *atomic.Int64 // the App's clock, Unix nanoseconds
	hc   *http.Client
}

func newEnv(t *testing.T, db *bun.DB, cfg realtime.Config) *env {
	t.Helper()
	return newEnvOn(t, db, cfg, serverOptions{})
}

type serverOptions struct {
	spaces bool               // Config.Spaces
	h2     bool               // serve over HTTP/2, with TLS
	server func(*http.Server) // changes the server before it starts
}

// newEnvOn is newEnv on a server of its own making.
func newEnvOn(t *testing.T, db *bun.DB, cfg realtime.Config, o serverOptions) *env {
	t.Helper()
	now := &atomic.Int64{}
	now.Store(time.Now().UnixNano())
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object"}`)}},
		Now:     func() time.Time { return time.Unix(0, now.Load()) }, Spaces: o.spaces})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"})
	a := &auth{revoked: map[string]bool{}, expires: map[string]time.Time{}}
	app.SetAuthenticator(a)
	rt, err := realtime.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(rt)
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	router := gin.New()
	app.Mount(router.Group("/sync"))
	app.MountRoot(router)
	hs := httptest.NewUnstartedServer(router)
	if o.server != nil {
		o.server(hs.Config)
	}
	hc := http.DefaultClient
	if o.h2 {
		hs.EnableHTTP2 = true
		hs.StartTLS()
		hc = hs.Client()
	} else {
		hs.Start()
	}
	t.Cleanup(func() {
		if err := app.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		hs.Close()
	})
	return &env{t: t, app: app, rt: rt, auth: a, url: hs.URL, now: now, hc: hc}
}

// push writes one note of user through POST /sync/.
func (e *env) push(t *testing.T, user, uid string) {
	t.Helper()
	e.sync(t, user, fmt.Sprintf(`{"model":"data.Note","uid":%q,"modify_at":%q,"data":{"n":1}}`, uid, time.Now().UTC().Format(time.RFC3339Nano)))
}

// sync sends one change through POST /sync/ as user; it must apply.
func (e *env) sync(t *testing.T, user, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/sync/", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"status":"applied"`) {
		t.Fatalf("push %s: %d %s", body, resp.StatusCode, b)
	}
}

// pullCursor pulls everything of user and returns the final cursor.
func (e *env) pullCursor(t *testing.T, user string) string {
	t.Helper()
	cursor := ""
	for {
		req, _ := http.NewRequest("GET", e.url+"/sync/pull?cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+user)
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("pull: %d %v", resp.StatusCode, err)
		}
		cursor = page.Cursor
		if !page.HasMore {
			return cursor
		}
	}
}

// event is one server-sent event, or a comment.
type event struct {
	id, kind, data, comment string
}

// sseStream reads a stream's events in the background.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan event
}

// open opens a stream; it returns the answer instead when it is not 200.
func (e *env) open(t *testing.T, user string, header http.Header, query string) (*sseStream, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/sync/stream"+query, nil)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	s := &sseStream{t: t, resp: resp, events: make(chan event, 64)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(s.events)
		r := bufio.NewReader(resp.Body)
		var ev event
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev != (event{}) {
					s.events <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, ": "):
				ev.comment = strings.TrimPrefix(line, ": ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, "retry: "):
			default:
				s.t.Errorf("unexpected stream line %q", line)
			}
		}
	}()
	return s, resp
}

// next returns the next event, skipping keep-alives; ok is false when the
// stream ended.
func (s *sseStream) next() (event, bool) {
	s.t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return event{}, false
			}
			if ev.comment == "keep-alive" {
				continue
			}
			return ev, true
		case <-time.After(20 * time.Second):
			s.t.Fatal("no event within 20s")
			return event{}, false
		}
	}
}

// hint reads the next event and checks it is of kind with a position of
// the user's scope alone.
func (s *sseStream) hint(kind, user string) map[string]int64 {
	s.t.Helper()
	ev, ok := s.next()
	if !ok {
		s.t.Fatalf("the stream ended; want %q", kind)
	}
	if ev.kind != kind {
		s.t.Fatalf("event %+v, want %q", ev, kind)
	}
	var data struct {
		Cursor string `json:"cursor"`
	}
	if err := json.Unmarshal([]byte(ev.data), &data); err != nil || data.Cursor != ev.id {
		s.t.Fatalf("data %q does not carry the id %q: %v", ev.data, ev.id, err)
	}
	pos := position(s.t, ev.id)
	for scope := range pos {
		if scope != user {
			s.t.Fatalf("%s's stream names scope %q: %v", user, scope, pos)
		}
	}
	return pos
}

func position(t *testing.T, id string) map[string]int64 {
	t.Helper()
	body, ok := strings.CutPrefix(id, "h1.")
	raw, err := base64.RawURLEncoding.DecodeString(body)
	var m map[string]int64
	if !ok || err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("position %q", id)
	}
	return m
}

func wantError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || json.Unmarshal(b, &e) != nil || e.Error.Code != code {
		t.Fatalf("answer %d %s, want %d %s", resp.StatusCode, b, status, code)
	}
}

func TestStreamHints(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, realtime.Config{})
		// A device the server knows nothing of is told to pull.
		s, _ := e.open(t, "alice", nil, "")
		s.hint("changes", "alice")
		e.push(t, "alice", "n1")
		pos := s.hint("changes", "alice")
		if pos["alice"] < 1 {
			t.Fatalf("position after a push: %v", pos)
		}
		// Another user's pushes wake nothing of alice's (and would name
		// bob's scope, which hint refuses); alice's next push does.
		e.push(t, "bob", "n1")
		e.push(t, "bob", "n2")
		e.push(t, "alice", "n2")
		if next := s.hint("changes", "alice"); next["alice"] <= pos["alice"] {
			t.Fatalf("position went from %v to %v", pos, next)
		}

		t.Run("a reconnect is told whether it missed something", func(t *testing.T) {
			s, _ := e.open(t, "carol", nil, "")
			first, _ := s.next()
			e.push(t, "carol", "n1")
			told, _ := s.next()
			// Up to date: ready.
			r, _ := e.open(t, "carol", http.Header{"Last-Event-Id": {told.id}}, "")
			r.hint("ready", "carol")
			// Behind (a push after the id it was told): changes.
			e.push(t, "carol", "n2")
			r2, _ := e.open(t, "carol", http.Header{"Last-Event-Id": {told.id}}, "")
			r2.hint("changes", "carol")
			// EventSource polyfills send the id as a query parameter.
			r3, _ := e.open(t, "carol", nil, "?last_event_id="+url.QueryEscape(first.id))
			r3.hint("changes", "carol")
			// A garbled id is no position: pull.
			r4, _ := e.open(t, "carol", http.Header{"Last-Event-Id": {"garbage"}}, "")
			r4.hint("changes", "carol")
		})
		t.Run("the device's pull cursor decides exactly", func(t *testing.T) {
			e.push(t, "dave", "n1")
			cursor := e.pullCursor(t, "dave")
			s, _ := e.open(t, "dave", nil, "?cursor="+url.QueryEscape(cursor))
			s.hint("ready", "dave")
			e.push(t, "dave", "n2")
			s.hint("changes", "dave")
			s2, _ := e.open(t, "dave", nil, "?cursor="+url.QueryEscape(cursor))
			s2.hint("changes", "dave")
			// A new device (empty cursor) of a user with data: changes.
			s3, _ := e.open(t, "dave", nil, "?cursor=")
			s3.hint("changes", "dave")
			// The stream position is not a pull cursor, and a bad cursor
			// is refused before the stream starts.
			_, resp := e.open(t, "dave", nil, "?cursor=h1.eyJkYXZlIjoxfQ")
			wantError(t, resp, http.StatusBadRequest, "invalid_cursor")
		})
	})
}

func TestStreamAuthentication(t *testing.T) {
	e := newEnv(t, synctest.OpenSQLite(t), realtime.Config{})
	_, resp := e.open(t, "", nil, "")
	wantError(t, resp, http.StatusUnauthorized, "unauthenticated")

	token := func(user string) realtime.TokenResponse {
		t.Helper()
		req, _ := http.NewRequest("POST", e.url+"/sync/stream/token", nil)
		if user != "" {
			req.Header.Set("Authorization", "Bearer "+user)
		}
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			wantError(t, resp, http.StatusUnauthorized, "unauthenticated")
			return realtime.TokenResponse{}
		}
		defer resp.Body.Close()
		var tr realtime.TokenResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	if tr := token(""); tr.Token != "" {
		t.Fatal("a token without credentials")
	}
	tr := token("erin")
	if !strings.HasPrefix(tr.URL, "/sync/stream?token=") || tr.ExpiresAt.Before(time.Now()) {
		t.Fatalf("token answer %+v", tr)
	}
	// EventSource sends no header: the token alone opens the stream.
	u, _ := url.Parse(tr.URL)
	s, _ := e.open(t, "", nil, "?"+u.RawQuery)
	s.hint("changes", "erin")
	e.push(t, "erin", "n1")
	s.hint("changes", "erin")

	// A tampered token, another user's name in it, is refused.
	body, sig, _ := strings.Cut(tr.Token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	forged := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), "erin", "mall", 1))) + "." + sig
	_, resp = e.open(t, "", nil, "?token="+url.QueryEscape(forged))
	wantError(t, resp, http.StatusUnauthorized, "unauthenticated")
	_, resp = e.open(t, "", nil, "?token=not-a-token")
	wantError(t, resp, http.StatusUnauthorized, "unauthenticated")
	// An expired one too (the App's clock moves past its minute).
	e.now.Add(int64(2 * time.Minute))
	_, resp = e.open(t, "", nil, "?"+u.RawQuery)
	wantError(t, resp, http.StatusUnauthorized, "unauthenticated")
}

func TestStreamLimits(t *testing.T) {
	e := newEnv(t, synctest.OpenSQLite(t), realtime.Config{MaxStreamsPerUser: 1, MaxStreams: 2})
	s, _ := e.open(t, "frank", nil, "")
	s.hint("changes", "frank")
	_, resp := e.open(t, "frank", nil, "")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	wantError(t, resp, http.StatusTooManyRequests, "rate_limited")
	s2, _ := e.open(t, "grace", nil, "")
	s2.hint("changes", "grace")
	_, resp = e.open(t, "heidi", nil, "")
	wantError(t, resp, http.StatusServiceUnavailable, "unavailable")
	if n := e.rt.Streams(); n != 2 {
		t.Fatalf("%d streams open", n)
	}
	for _, c := range []realtime.Config{{MaxStreams: -1}, {KeepAlive: -time.Second}, {TokenSecret: []byte("short")}, {Path: "sync"}} {
		if _, err := realtime.New(c); err == nil {
			t.Fatalf("New(%+v) accepted", c)
		}
	}
}

func TestStreamEnds(t *testing.T) {
	e := newEnv(t, synctest.OpenSQLite(t), realtime.Config{KeepAlive: 50 * time.Millisecond})
	ends := func(s *sseStream, why string) {
		t.Helper()
		for {
			ev, ok := s.next()
			if !ok {
				t.Fatalf("the stream ended without saying %q", why)
			}
			if strings.Contains(ev.comment, why) {
				if _, ok := s.next(); ok {
					t.Fatal("the stream went on")
				}
				return
			}
		}
	}
	t.Run("when the credentials expire", func(t *testing.T) {
		e.auth.mu.Lock()
		e.auth.expires["ivan"] = time.Now().Add(300 * time.Millisecond)
		e.auth.mu.Unlock()
		s, _ := e.open(t, "ivan", nil, "")
		ends(s, "expired")
	})
	t.Run("when the credentials are revoked", func(t *testing.T) {
		s, _ := e.open(t, "judy", nil, "")
		s.hint("changes", "judy")
		e.auth.revoke("judy")
		ends(s, "no longer valid")
	})
	t.Run("when the App closes", func(t *testing.T) {
		s, _ := e.open(t, "ken", nil, "")
		s.hint("changes", "ken")
		if err := e.app.Close(); err != nil {
			t.Fatal(err)
		}
		ends(s, "stopping")
		// A stream asked for after that is refused, with Retry-After.
		_, resp := e.open(t, "ken", nil, "")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		wantError(t, resp, http.StatusServiceUnavailable, "unavailable")
	})
}

// TestReplicasOnPostgres runs two replicas (two Apps in this process, one
// database, each with its own PostgreSQL bus): a push to one reaches a
// stream on the other, also after the other's listening connection was
// killed. The example app's test does the same with separate processes.
func openPostgres(dsn string) (*bun.DB, error) {
	return models.OpenPostgres(context.Background(), dsn)
}

func TestReplicasOnPostgres(t *testing.T) {
	dsn := synctest.PostgresURL(t)
	channel := fmt.Sprintf("ferry_hints_%d", time.Now().UnixNano())
	replica := func() (*env, *realtime.PostgresBus) {
		db, err := openPostgres(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		bus, err := realtime.NewPostgresBus(dsn, realtime.PostgresOptions{Channel: channel})
		if err != nil {
			t.Fatal(err)
		}
		return newEnv(t, db, realtime.Config{Bus: bus}), bus
	}
	one, _ := replica()
	two, bus2 := replica()
	s, _ := two.open(t, "lena", nil, "")
	s.hint("changes", "lena")
	one.push(t, "lena", "n1")
	pos := s.hint("changes", "lena")

	// Kill replica two's listener: it reconnects, every stream checks
	// again, and later pushes are heard.
	pid := bus2.ListenerPID()
	if _, err := one.app.DB().ExecContext(context.Background(), "SELECT pg_terminate_backend(?)", pid); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); bus2.ListenerPID() == pid; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect within 20s")
		}
	}
	one.push(t, "lena", "n2")
	if next := s.hint("changes", "lena"); next["lena"] <= pos["lena"] {
		t.Fatalf("position went from %v to %v", pos, next)
	}
}

// TestStreamOverHTTP2: where the connection cannot be taken over (HTTP/2
// multiplexes it), the stream is served through net/http, the same.
func TestStreamOverHTTP2(t *testing.T) {
	e := newEnvOn(t, synctest.OpenSQLite(t), realtime.Config{}, serverOptions{h2: true})
	s, resp := e.open(t, "olga", nil, "")
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s", resp.Proto)
	}
	s.hint("changes", "olga")
	e.push(t, "olga", "n1")
	s.hint("changes", "olga")
	resp.Body.Close()
	waitStreams(t, e, 0)
}

// TestStreamFreesItsSlot: a client that leaves frees its stream at once
// (its replica notices the connection close), so a user at the cap can
// reconnect.
func TestStreamFreesItsSlot(t *testing.T) {
	e := newEnv(t, synctest.OpenSQLite(t), realtime.Config{MaxStreamsPerUser: 1})
	for range 3 {
		s, resp := e.open(t, "pete", nil, "")
		if s == nil {
			wantError(t, resp, http.StatusOK, "")
		}
		s.hint("changes", "pete")
		resp.Body.Close()
		waitStreams(t, e, 0)
	}
}

func waitStreams(t *testing.T, e *env, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); e.rt.Streams() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open, want %d", e.rt.Streams(), n)
		}
	}
}

// TestStreamLivesPastServerTimeouts: a stream outlives the HTTP server's
// read and write timeouts (it sets its own deadlines), heartbeats and
// hints alike.
func TestStreamLivesPastServerTimeouts(t *testing.T) {
	e := newEnvOn(t, synctest.OpenSQLite(t), realtime.Config{KeepAlive: 50 * time.Millisecond}, serverOptions{
		server: func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond },
	})
	s, _ := e.open(t, "quinn", nil, "")
	s.hint("changes", "quinn")
	beats := 0
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline) || beats < 3; {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended after %d keep-alives", beats)
			}
			if ev.comment == "keep-alive" {
				beats++
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no keep-alive")
		}
	}
	e.push(t, "quinn", "late")
	s.hint("changes", "quinn")
}

func TestStreamFollowsSpaces(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnvOn(t, db, realtime.Config{}, serverOptions{spaces: true})
		at := time.Now().UTC().Add(-time.Minute)
		change := func(model, uid, data string, deleted bool) string {
			at = at.Add(time.Millisecond)
			return fmt.Sprintf(`{"space":"L","model":%q,"uid":%q,"modify_at":%q,"is_deleted":%v,"data":%s}`,
				model, uid, at.Format(time.RFC3339Nano), deleted, data)
		}
		// expect reads bob's next event: changes, at a position naming
		// exactly scopes.
		expect := func(s *sseStream, scopes ...string) {
			t.Helper()
			ev, ok := s.next()
			if !ok || ev.kind != "changes" {
				t.Fatalf("event %+v, want changes", ev)
			}
			pos := position(t, ev.id)
			if len(pos) != len(scopes) {
				t.Fatalf("position %v, want the scopes %v", pos, scopes)
			}
			for _, sc := range scopes {
				if _, ok := pos[sc]; !ok {
					t.Fatalf("position %v, want the scopes %v", pos, scopes)
				}
			}
		}
		s, _ := e.open(t, "bob", nil, "")
		s.hint("changes", "bob") // a device the server knows nothing of
		e.sync(t, "ann", change(framework.SpaceModel, "L", `{"name":"list"}`, false))
		e.sync(t, "ann", change("data.Note", "n1", `{"n":1}`, false))
		// Granted: bob's stream hears of the space at once, then of its
		// writes.
		e.sync(t, "ann", change(framework.MemberModel, "bob", `{"role":"reader"}`, false))
		expect(s, "bob", "s:L")
		e.sync(t, "ann", change("data.Note", "n2", `{"n":2}`, false))
		expect(s, "bob", "s:L")
		// Revoked: told to pull (the pull says removed), then nothing of
		// the space wakes it.
		e.sync(t, "ann", change(framework.MemberModel, "bob", `null`, true))
		expect(s, "bob")
		e.sync(t, "ann", change("data.Note", "n3", `{"n":3}`, false))
		e.push(t, "bob", "own")
		expect(s, "bob")
	})
}
