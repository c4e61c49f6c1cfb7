package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// waitLimit bounds every wait of these tests: it only ends a broken run,
// it never measures speed.
const waitLimit = 60 * time.Second

// eventually waits until cond holds, failing the test after waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after %s", what, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// streamWatch records the stream states a Run loop reports.
type streamWatch struct {
	mu     sync.Mutex
	states []client.StreamState
	errs   []error
	moved  chan struct{} // closed and replaced at every report
}

func newStreamWatch() *streamWatch { return &streamWatch{moved: make(chan struct{})} }

func (w *streamWatch) onState(s client.StreamState, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.states = append(w.states, s)
	w.errs = append(w.errs, err)
	close(w.moved)
	w.moved = make(chan struct{})
}

// mark is the number of reports so far, for await.
func (w *streamWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.states)
}

// await waits for a report of state after the first from reports and
// returns its error.
func (w *streamWatch) await(t *testing.T, from int, state client.StreamState) error {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for i := from; i < len(w.states); i++ {
			if w.states[i] == state {
				err := w.errs[i]
				w.mu.Unlock()
				return err
			}
		}
		moved := w.moved
		w.mu.Unlock()
		select {
		case <-moved:
		case <-deadline.C:
			t.Fatalf("the stream was never %s; it was %v", state, w.seen())
		}
	}
}

// seen lists the states reported.
func (w *streamWatch) seen() []client.StreamState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]client.StreamState(nil), w.states...)
}

// count is how many times state was reported.
func (w *streamWatch) count(state client.StreamState) int {
	n := 0
	for _, s := range w.seen() {
		if s == state {
			n++
		}
	}
	return n
}

// hintsOnly are the options of a loop that syncs on hints and local
// changes only: no periodic syncs, short waits, fast reconnects.
func hintsOnly(w *streamWatch) client.RunOptions {
	return client.RunOptions{Interval: -1, Debounce: 10 * time.Millisecond, Stream: client.StreamOptions{
		Debounce: 5 * time.Millisecond, ReconnectDelay: 10 * time.Millisecond, MaxReconnectDelay: 200 * time.Millisecond,
		OnState: w.onState,
	}}
}

// has reports whether d holds the note uid.
func (d *device) has(uid string) bool {
	_, err := d.Get(context.Background(), "data.Note", uid)
	return err == nil
}

// converged reports, without failing, whether every device holds exactly
// the server's state with nothing queued; assertConverged says how not.
func (e *env) converged(acc account, devs ...*device) bool {
	e.t.Helper()
	want := e.serverState(acc)
	ctx := context.Background()
	for _, d := range devs {
		if n, err := d.PendingCount(ctx); err != nil || n != 0 {
			return false
		}
		recs, err := d.store.List(ctx, client.ListParams{IncludeDeleted: true})
		if err != nil || len(recs) != len(want) {
			return false
		}
		for _, r := range recs {
			w, ok := want[r.Model+"/"+r.UID]
			if !ok || !r.Synced || w.Version != r.Version || !w.ModifyAt.Equal(r.ModifyAt) || w.IsDeleted != r.IsDeleted {
				return false
			}
		}
	}
	return true
}

// bareAuth authenticates the bare Apps' requests: "Bearer <user>" is
// that user.
type bareAuth struct{}

func (bareAuth) Authenticate(r *http.Request) (framework.Principal, error) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || user == "" {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "a bearer token is required")
	}
	return framework.Principal{UserID: user}, nil
}

// newBareApp builds and starts a framework App on db, with data.Note
// registered by a schema that takes any object, [bareAuth] and plugins.
// Its handler serves the protocol at /sync and the plugins' routes beside
// it. The caller closes the App.
func newBareApp(db *bun.DB, plugins ...framework.Plugin) (*framework.App, http.Handler, error) {
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		return nil, nil, err
	}
	if err := app.RegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"}); err != nil {
		return nil, nil, err
	}
	app.SetAuthenticator(bareAuth{})
	if err := app.Use(plugins...); err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		return nil, nil, err
	}
	if err := app.Start(ctx); err != nil {
		return nil, nil, err
	}
	engine := gin.New()
	framework.UseProtocolErrors(engine)
	app.Mount(engine.Group("/sync"))
	app.MountRoot(engine)
	return app, engine, nil
}

// startBareApp serves [newBareApp] over HTTP until the test ends.
func startBareApp(t *testing.T, db *bun.DB, plugins ...framework.Plugin) *env {
	t.Helper()
	app, h, err := newBareApp(db, plugins...)
	if err != nil {
		t.Fatalf("build the app: %v", err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		if err := app.Close(); err != nil {
			t.Errorf("close the app: %v", err)
		}
		hs.Close()
	})
	return &env{t: t, db: db, url: hs.URL}
}

// cutProxy is a TCP proxy in front of a server that a test can cut: it
// closes every connection through it, and refuses new ones while down.
type cutProxy struct {
	l     net.Listener
	mu    sync.Mutex
	to    string // host:port of the server
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, serverURL string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, conns: map[net.Conn]struct{}{}}
	p.target(serverURL)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		l.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) url() string { return "http://" + p.l.Addr().String() }

// target points the proxy's new connections at serverURL.
func (p *cutProxy) target(serverURL string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.to = strings.TrimPrefix(serverURL, "http://")
}

// cut closes every open connection; down says whether new ones are
// refused from now on.
func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, to := p.down, p.to
		p.mu.Unlock()
		if down {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", to)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// track registers a connection's two halves, unless the proxy went down
// meanwhile.
func (p *cutProxy) track(in, out net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		in.Close()
		out.Close()
		return false
	}
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	return true
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// fakeSync is a server of the sync routes with nothing to sync (pulls
// answer an empty page at cursor "c1") and a stream handled by the test:
// for edge cases of the stream protocol a real server does not make.
type fakeSync struct {
	mu      sync.Mutex
	pulls   int
	queries []string // the raw query of every stream request
	url     string
}

func newFakeSync(t *testing.T, stream func(n int, w http.ResponseWriter, r *http.Request)) *fakeSync {
	t.Helper()
	f := &fakeSync{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sync/pull", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.pulls++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"changes":[],"cursor":"c1","has_more":false}`)
	})
	mux.HandleFunc("GET /sync/stream", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		n := len(f.queries)
		f.mu.Unlock()
		stream(n, w, r)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

func (f *fakeSync) pullCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pulls
}

func (f *fakeSync) streamQueries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

// sendEvents starts an event stream and writes text to it.
func sendEvents(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, text)
	w.(http.Flusher).Flush()
}

// holdStream keeps a stream open until the client goes away.
func holdStream(w http.ResponseWriter, r *http.Request, text string) {
	sendEvents(w, text)
	<-r.Context().Done()
}

// runFake runs a client of f's server until the test ends.
func runFake(t *testing.T, f *fakeSync, opts client.RunOptions) {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: f.url, Token: "t", Owner: "u",
		Retry: client.Retry{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	startLoop(t, &device{Client: c, t: t}, opts)
}
