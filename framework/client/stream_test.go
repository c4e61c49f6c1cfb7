package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
)

// Two devices of one user, neither polling: a write on one reaches the
// other through the live stream's hint alone.
func TestRunStreamHints(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Hints")
		a, b := e.device(u), e.device(u)
		wa, wb := newStreamWatch(), newStreamWatch()
		startLoop(t, a, hintsOnly(wa))
		startLoop(t, b, hintsOnly(wb))
		wa.await(t, 0, client.StreamUp)
		wb.await(t, 0, client.StreamUp)

		a.put("hello", note{"from A"})
		eventually(t, "B has A's note", func() bool { return b.has("hello") })
		b.put("reply", note{"from B"})
		eventually(t, "A has B's reply", func() bool { return a.has("reply") })
		eventually(t, "A and B converge", func() bool { return e.converged(u, a, b) })
		e.assertConverged(u, a, b)
	})
}

// The stream drops (the connection is cut and stays down while the other
// device writes; later the server it is on stops and another replica on
// the same database takes over): the device reconnects, and the first
// event, decided from its pull cursor, makes it catch up. No polling.
func TestRunStreamReconnects(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("Reconnect")
		p := newCutProxy(t, e.url)
		a := e.device(u)
		b := e.device(u, func(c *client.Config) { c.BaseURL = p.url() })
		wa, wb := newStreamWatch(), newStreamWatch()
		stopA := startLoop(t, a, hintsOnly(wa))
		stopB := startLoop(t, b, hintsOnly(wb))
		wa.await(t, 0, client.StreamUp)
		wb.await(t, 0, client.StreamUp)
		a.put("before", note{"before the cut"})
		eventually(t, "B has the note written before the cut", func() bool { return b.has("before") })

		// Cut: B's stream drops and cannot come back while A writes.
		m := wb.mark()
		p.cut(true)
		wb.await(t, m, client.StreamDown)
		for i := range 5 {
			a.put(fmt.Sprint("during-", i), note{"while B was cut off"})
		}
		eventually(t, "A pushed its notes", func() bool { return a.pending() == 0 })
		m = wb.mark()
		p.setDown(false)
		wb.await(t, m, client.StreamUp)
		eventually(t, "B caught up after reconnecting", func() bool { return e.converged(u, a, b) })

		// The server B streams from stops; a new replica on the same
		// database takes its place behind the proxy.
		stopA()
		e2 := newEnv(t, e.db)
		t.Cleanup(stopB) // before e2's server closes: it waits for B's stream
		p.target(e2.url)
		m = wb.mark()
		if err := e.srv.App.Close(); err != nil {
			t.Fatal(err)
		}
		if err := wb.await(t, m, client.StreamDown); err == nil || !strings.Contains(err.Error(), "stopping") {
			t.Fatalf("the stream ended with %v, want the server's word that it stops", err)
		}
		p.cut(false) // B's other connections still go to the old server
		c := e2.device(u)
		for i := range 3 {
			c.put(fmt.Sprint("after-", i), note{"on the new replica"})
			c.sync()
		}
		eventually(t, "B caught up on the new replica", func() bool { return e2.converged(u, b, c) })
		e2.assertConverged(u, b, c)
	})
}

// A server without the realtime plugin answers 404: the client polls at
// Interval, still converges, and asks for the stream again later.
func TestRunStreamUnsupported(t *testing.T) {
	t.Parallel()
	e := startBareApp(t, openSQLite(t)) // no realtime plugin
	u := account{ID: "alice", Token: "alice"}
	a, b := e.device(u), e.device(u)
	wa, wb := newStreamWatch(), newStreamWatch()
	opts := func(w *streamWatch) client.RunOptions {
		o := hintsOnly(w)
		o.Interval = 50 * time.Millisecond
		return o
	}
	startLoop(t, a, opts(wa))
	startLoop(t, b, opts(wb))
	if err := wb.await(t, 0, client.StreamUnsupported); err == nil {
		t.Fatal("unsupported without a reason")
	}
	a.put("polled", note{"found by polling"})
	eventually(t, "B has A's note", func() bool { return e.converged(u, a, b) })
	wb.await(t, 1, client.StreamUnsupported) // asked again
	if n := wa.count(client.StreamUp) + wb.count(client.StreamUp); n != 0 {
		t.Fatalf("the stream was up %d times on a server without it", n)
	}
	e.assertConverged(u, a, b)
}

// A burst of remote writes wakes the stream many times, but the hints'
// debounce makes far fewer syncs: a sync waits for Debounce after the
// first hint it answers, so B makes at most one per Debounce of the
// burst's length (however slow a loaded machine makes the writes).
func TestRunStreamBurst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Burst")
	a, b := e.device(u), e.device(u)
	w := newStreamWatch()
	var syncs atomic.Int64
	opts := hintsOnly(w)
	const debounce = 200 * time.Millisecond
	opts.Stream.Debounce = debounce
	opts.OnSync = func(client.SyncResult, error) { syncs.Add(1) }
	startLoop(t, b, opts)
	w.await(t, 0, client.StreamUp)
	before := syncs.Load()
	start := time.Now()
	const writes = 200
	for i := range writes {
		a.put(fmt.Sprint("burst-", i), note{"one of many"})
		a.sync() // one push, one commit, one hint each
	}
	eventually(t, "B has the burst", func() bool { return e.converged(u, a, b) })
	elapsed := time.Since(start)
	n := syncs.Load() - before
	bound := int64(elapsed/debounce) + 2
	t.Logf("%d remote writes in %v, %d syncs of B (at most %d)", writes, elapsed.Round(time.Millisecond), n, bound)
	if n > bound {
		t.Fatalf("%d remote writes in %v made %d syncs, more than one per %v", writes, elapsed, n, debounce)
	}
}

// When the server refuses the credentials the stream stops (the sync
// path reports the error); it opens again after a sync succeeds.
func TestRunStreamUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Stopped")
	var token atomic.Value
	token.Store("not-a-valid-token")
	var streams atomic.Int64
	d := e.device(u, func(c *client.Config) {
		c.Token, c.TokenFunc = "", func(context.Context) (string, error) { return token.Load().(string), nil }
	})
	d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		if strings.HasSuffix(req.URL.Path, "/stream") {
			streams.Add(1)
		}
		return nil, nil
	})
	w := newStreamWatch()
	rec := newLoopRecorder()
	opts := hintsOnly(w)
	opts.Interval = 20 * time.Millisecond
	opts.OnSync = rec.onSync
	startLoop(t, d, opts)
	if err := w.await(t, 0, client.StreamStopped); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("stopped with %v, want ErrUnauthenticated", err)
	}
	for i := range 3 {
		if err := rec.wait(t, "with a bad token"); !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("sync %d: %v, want ErrUnauthenticated", i, err)
		}
	}
	if n := streams.Load(); n != 1 {
		t.Fatalf("%d stream requests while the credentials were refused, want 1", n)
	}
	token.Store(u.Token)
	w.await(t, 0, client.StreamUp)
}

// A 503 with Retry-After delays the reconnect at least that long, however
// short the backoff.
func TestRunStreamRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Later")
	d := e.device(u)
	var (
		mu       sync.Mutex
		attempts []time.Time
	)
	d.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(req.URL.Path, "/stream") {
			return nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) == 1 {
			resp := errorResponse(req, http.StatusServiceUnavailable, "unavailable")
			resp.Header.Set("Retry-After", "1")
			return resp, nil
		}
		return nil, nil
	})
	w := newStreamWatch()
	opts := hintsOnly(w)
	opts.Stream.ReconnectDelay, opts.Stream.MaxReconnectDelay = time.Millisecond, 2*time.Millisecond
	startLoop(t, d, opts)
	if err := w.await(t, 0, client.StreamDown); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("down with %v, want the 503", err)
	}
	w.await(t, 0, client.StreamUp)
	mu.Lock()
	defer mu.Unlock()
	if gap := attempts[1].Sub(attempts[0]); gap < time.Second {
		t.Fatalf("reconnected %s after a Retry-After of 1s", gap)
	}
}

// Edge cases of the stream protocol, against a fake server.
func TestRunStreamProtocol(t *testing.T) {
	t.Parallel()
	t.Run("an unknown cursor is left out of the next request", func(t *testing.T) {
		t.Parallel()
		f := newFakeSync(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":{"code":"invalid_cursor","message":"not a cursor of this server"}}`)
				return
			}
			holdStream(w, r, "event: changes\ndata: {}\n\n")
		})
		w := newStreamWatch()
		runFake(t, f, hintsOnly(w))
		w.await(t, 0, client.StreamUp)
		eventually(t, "the hint's sync", func() bool { return f.pullCount() >= 2 })
		if q := f.streamQueries(); q[0] != "cursor=c1" || q[1] != "" {
			t.Fatalf("stream queries %q, want the cursor, then none", q)
		}
	})
	t.Run("an answer that is no event stream is no stream", func(t *testing.T) {
		t.Parallel()
		f := newFakeSync(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>the app's index page</html>")
		})
		w := newStreamWatch()
		runFake(t, f, hintsOnly(w))
		w.await(t, 0, client.StreamUnsupported)
	})
	t.Run("a silent stream is reconnected", func(t *testing.T) {
		t.Parallel()
		f := newFakeSync(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			holdStream(w, r, "retry: 2000\n\nid: p1\nevent: ready\ndata: {}\n\n") // and no keep-alives
		})
		w := newStreamWatch()
		opts := hintsOnly(w)
		opts.Stream.IdleTimeout = 100 * time.Millisecond
		runFake(t, f, opts)
		if err := w.await(t, 0, client.StreamDown); err == nil || !strings.Contains(err.Error(), "nothing received") {
			t.Fatalf("down with %v, want the idle timeout", err)
		}
		w.await(t, 2, client.StreamUp)
	})
	t.Run("what the client does not read is skipped", func(t *testing.T) {
		t.Parallel()
		f := newFakeSync(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n > 1 {
				holdStream(w, r, "event: ready\ndata: {}\n\n")
				return
			}
			sendEvents(w, "event: ready\r\ndata: {}\r\n\r\n"+
				": "+strings.Repeat("x", 100_000)+"\n\n"+
				"id: "+strings.Repeat("y", 100_000)+"\nevent: something-new\ndata: {}\n\n"+
				"data: a message\n\n"+
				"event: changes\r\ndata: {\"cursor\":\"p2\"}\r\n\r\n"+
				": the server is stopping; reconnect\n\n")
		})
		w := newStreamWatch()
		runFake(t, f, hintsOnly(w))
		if err := w.await(t, 0, client.StreamDown); err == nil || !strings.Contains(err.Error(), "the server is stopping") {
			t.Fatalf("down with %v, want the server's word", err)
		}
		eventually(t, "the hint's sync", func() bool { return f.pullCount() >= 2 })
	})
}

// Cancelling Run's context ends every goroutine it started, whatever the
// stream is doing. Not parallel: it counts the process's goroutines.
func TestRunStreamGoroutinesEnd(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	// Streams end before the server closes, so that a leak fails the test
	// rather than hanging its cleanup.
	t.Cleanup(func() { e.srv.App.Close() })
	u := e.signUp("Leak")
	// A server that accepts connections and never answers.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	cases := []struct {
		name   string
		token  string
		stream func(req *http.Request) (*http.Request, error) // what becomes of a stream request
		await  client.StreamState
	}{
		{"up", u.Token, nil, client.StreamUp},
		{"stopped by a 401", "not-a-valid-token", nil, client.StreamStopped},
		{"down, waiting to reconnect", u.Token, func(*http.Request) (*http.Request, error) {
			return nil, errors.New("refused (injected)")
		}, client.StreamDown},
		{"connecting to a server that never answers", u.Token, func(req *http.Request) (*http.Request, error) {
			req = req.Clone(req.Context())
			req.URL.Host = hole.Addr().String()
			return req, nil
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{}
			var streams atomic.Int64
			rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if strings.HasSuffix(req.URL.Path, "/stream") {
					streams.Add(1)
					if tc.stream != nil {
						r, err := tc.stream(req)
						if err != nil {
							return nil, err
						}
						req = r
					}
				}
				return tr.RoundTrip(req)
			})
			before := runtime.NumGoroutine()
			d := e.device(u, func(c *client.Config) {
				c.Token = tc.token
				c.HTTPClient = &http.Client{Transport: rt}
				c.Retry = client.Retry{MaxAttempts: 1}
			})
			w := newStreamWatch()
			opts := hintsOnly(w)
			opts.Stream.ReconnectDelay = time.Hour // a reconnect waits
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx, opts) }()
			if tc.await != 0 {
				w.await(t, 0, tc.await)
			} else {
				eventually(t, "the stream request", func() bool { return streams.Load() > 0 })
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Run returned %v", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("Run did not return")
			}
			tr.CloseIdleConnections()
			// Goroutines end a little after the connections close (the
			// server's side too): wait until they did.
			deadline := time.Now().Add(waitLimit)
			for {
				stacks := clientGoroutines()
				n := runtime.NumGoroutine()
				if len(stacks) == 0 && n <= before+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines, %d before; still running in the client:\n%s", n, before, strings.Join(stacks, "\n\n"))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// clientGoroutines returns the stacks of the goroutines running code of
// package client (not of its tests).
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "ferry/framework/client.") {
			out = append(out, g)
		}
	}
	return out
}
