package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

const testSecret = servertest.Secret

// env is the example server over real HTTP on one store.
type env struct {
	t   *testing.T
	db  *bun.DB
	srv *server.Server
	url string
}

func newEnv(t *testing.T, db *bun.DB) *env {
	t.Helper()
	st := servertest.Start(t, db)
	return &env{t: t, db: db, srv: st.Server, url: st.URL}
}

func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) { fn(t, newEnv(t, db)) })
}

// account is a signed-up user.
type account struct {
	ID    string
	Token string
}

func (e *env) signUp(name string) account {
	e.t.Helper()
	acc, err := register(e.url, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return acc
}

// register signs a user up through POST /auth/register.
func register(baseURL, name string) (account, error) {
	body := fmt.Sprintf(`{"email":%q,"password":"correct horse","name":%q}`, strings.ToLower(name)+"@example.com", name)
	resp, err := http.Post(baseURL+"/auth/register", "application/json", strings.NewReader(body))
	if err != nil {
		return account{}, fmt.Errorf("register %s: %w", name, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
		User  struct {
			UID string `json:"uid"`
		} `json:"user"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Token == "" {
		return account{}, fmt.Errorf("register %s: status %d, %v", name, resp.StatusCode, err)
	}
	return account{ID: out.User.UID, Token: out.Token}, nil
}

// device is a client with its own memory store, clock and counting
// transport.
type device struct {
	*client.Client
	t     *testing.T
	store client.Store
	clock *clock
	tr    *transport
}

func (e *env) device(acc account, edit ...func(*client.Config)) *device {
	e.t.Helper()
	d := &device{t: e.t, store: client.NewMemoryStore(), clock: newClock(), tr: &transport{}}
	cfg := client.Config{
		BaseURL:    e.url,
		HTTPClient: &http.Client{Transport: d.tr, Timeout: time.Minute},
		Token:      acc.Token,
		Owner:      acc.ID,
		Store:      d.store,
		DeviceID:   "device-" + client.NewUID(),
		Clock:      d.clock.Now,
		Retry:      client.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	}
	for _, fn := range edit {
		fn(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		e.t.Fatalf("new client: %v", err)
	}
	d.Client, d.store = c, cfg.Store
	return d
}

func (d *device) put(uid string, data any) {
	d.t.Helper()
	if _, err := d.Put(context.Background(), "data.Note", uid, data); err != nil {
		d.t.Fatalf("put %s: %v", uid, err)
	}
}

func (d *device) sync() client.SyncResult {
	d.t.Helper()
	res, err := d.Sync(context.Background())
	if err != nil {
		d.t.Fatalf("sync: %v", err)
	}
	return res
}

func (d *device) pending() int {
	d.t.Helper()
	n, err := d.PendingCount(context.Background())
	if err != nil {
		d.t.Fatal(err)
	}
	return n
}

// title returns the title of a local note, "" when it has none.
func (d *device) title(uid string) string {
	d.t.Helper()
	rec, err := d.Get(context.Background(), "data.Note", uid)
	if err != nil {
		d.t.Fatalf("get %s: %v", uid, err)
	}
	var n struct {
		Title string `json:"title"`
	}
	if err := rec.Decode(&n); err != nil {
		d.t.Fatal(err)
	}
	return n.Title
}

// clock is a device clock tests can set; it advances by a millisecond on
// every reading.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// transport passes requests to the default transport, records push bodies
// and counts requests, and lets a test intercept requests with before.
type transport struct {
	mu     sync.Mutex
	pushes []pushBody
	pulls  int
	calls  int
	// before, when set, runs before a request is sent; a non-nil answer
	// or error is returned instead of sending.
	before func(n int, req *http.Request) (*http.Response, error)
}

type pushBody struct {
	DeviceID string `json:"device_id"`
	Changes  []struct {
		OpID      string          `json:"op_id"`
		Model     string          `json:"model"`
		UID       string          `json:"uid"`
		ModifyAt  string          `json:"modify_at"`
		IsDeleted bool            `json:"is_deleted"`
		Data      json.RawMessage `json:"data"`
	} `json:"changes"`
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.calls++
	n := tr.calls
	before := tr.before
	tr.mu.Unlock()
	if before != nil {
		if resp, err := before(n, req); resp != nil || err != nil {
			return resp, err
		}
	}
	if req.Body != nil && strings.HasSuffix(req.URL.Path, "/push") {
		raw, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		if raw, err = plainRequest(req, raw); err != nil {
			return nil, err
		}
		var pb pushBody
		if err := json.Unmarshal(raw, &pb); err != nil {
			return nil, err
		}
		tr.mu.Lock()
		tr.pushes = append(tr.pushes, pb)
		tr.mu.Unlock()
	}
	if strings.HasSuffix(req.URL.Path, "/pull") {
		tr.mu.Lock()
		tr.pulls++
		tr.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (tr *transport) setBefore(fn func(n int, req *http.Request) (*http.Response, error)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.before = fn
}

func (tr *transport) pushBodies() []pushBody {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]pushBody(nil), tr.pushes...)
}

func (tr *transport) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.pushes, tr.pulls, tr.calls = nil, 0, 0
}

// errorResponse builds an answer with the protocol's error shape.
func errorResponse(req *http.Request, status int, code string) *http.Response {
	body := fmt.Sprintf(`{"error":{"code":%q,"message":"injected by the test"}}`, code)
	return &http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
		ProtoMajor: 1, ProtoMinor: 1,
	}
}

// serverState pulls everything acc can read from the server, straight over
// HTTP, and returns it keyed by model/uid (see simFullPull, which also
// checks that nothing comes twice or from another owner).
func (e *env) serverState(acc account) map[string]state {
	e.t.Helper()
	return simFullPull(e.t, e.url, acc)
}

// purgeTombstones purges every tombstone on the server (all are older
// than a millisecond after the pause) and checks how many there were.
func (e *env) purgeTombstones(want int) {
	e.t.Helper()
	time.Sleep(2 * time.Millisecond)
	if n, err := e.srv.App.PurgeTombstones(context.Background(), time.Millisecond); err != nil || n != want {
		e.t.Fatalf("purge: %d, %v; want %d", n, err, want)
	}
}

// state is what must converge: a record as the server or a device has it.
type state struct {
	ModifyAt  time.Time
	IsDeleted bool
	Version   int64
	Data      any
	Fields    string // fields_modify_at as formatFieldTimes writes them (the simulation's)
}

// localState returns a device's records keyed by model/uid, tombstones
// included, and fails if any is unsynced.
func (d *device) localState() map[string]state {
	d.t.Helper()
	got, unsynced := storeState(d.t, d.store)
	for _, k := range unsynced {
		d.t.Errorf("%s is not synced", k)
	}
	return got
}

func normJSON(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("bad JSON %s: %v", raw, err)
	}
	return v
}

// assertConverged checks that every device holds exactly the server's
// state, with nothing left to push.
func (e *env) assertConverged(acc account, devs ...*device) {
	e.t.Helper()
	want := e.serverState(acc)
	for i, d := range devs {
		if n := d.pending(); n != 0 {
			e.t.Errorf("device %d: %d changes still queued", i, n)
		}
		got := d.localState()
		if !reflect.DeepEqual(got, want) {
			e.t.Errorf("device %d differs from the server:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func openSQLite(t *testing.T) *bun.DB {
	t.Helper()
	return synctest.OpenSQLite(t)
}
