package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
)

// loopRecorder collects the results a Run loop reports.
type loopRecorder struct {
	mu    sync.Mutex
	syncs []client.SyncResult
	errs  []error
	ch    chan struct{}
}

func newLoopRecorder() *loopRecorder { return &loopRecorder{ch: make(chan struct{}, 100)} }

func (r *loopRecorder) onSync(res client.SyncResult, err error) {
	r.mu.Lock()
	r.syncs = append(r.syncs, res)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *loopRecorder) last() client.SyncResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.syncs[len(r.syncs)-1]
}

func (r *loopRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.syncs)
}

// wait waits for the next reported sync and returns its error.
func (r *loopRecorder) wait(t *testing.T, what string) error {
	t.Helper()
	select {
	case <-r.ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("no sync %s", what)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[len(r.errs)-1]
}

// startLoop runs d's loop until the test ends, or until the returned
// function stops it sooner, and checks that it stops with the context.
func startLoop(t *testing.T, d *device, opts client.RunOptions) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not stop when its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestRunLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Loop")
	a, b := e.device(u), e.device(u)
	rec := newLoopRecorder()
	// Without the live stream: this is the loop's own behaviour (A's pushes
	// would wake its stream too).
	startLoop(t, a, client.RunOptions{Interval: -1, Debounce: 150 * time.Millisecond, OnSync: rec.onSync,
		Stream: client.StreamOptions{Mode: client.StreamOff}})

	// At start.
	if err := rec.wait(t, "at start"); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background(), client.RunOptions{}); !errors.Is(err, client.ErrRunning) {
		t.Fatalf("a second Run: %v, want ErrRunning", err)
	}

	// After local changes, debounced: a burst of edits is one sync (two
	// if the machine stalls in the middle of the burst).
	for i := range 10 {
		a.put("n"+string(rune('0'+i)), note{"burst"})
	}
	pushed, syncs := 0, 0
	for pushed < 10 {
		if err := rec.wait(t, "after local changes"); err != nil {
			t.Fatal(err)
		}
		pushed += rec.last().Pushed
		syncs++
	}
	if pushed != 10 || syncs > 2 {
		t.Fatalf("the burst of 10 edits took %d syncs pushing %d changes", syncs, pushed)
	}
	if a.pending() != 0 {
		t.Fatalf("%d changes still queued", a.pending())
	}

	// On Trigger, as after a realtime notification.
	b.put("from-b", note{"B's note"})
	b.sync()
	a.Trigger()
	if err := rec.wait(t, "after Trigger"); err != nil {
		t.Fatal(err)
	}
	if a.title("from-b") != "B's note" {
		t.Fatal("the triggered sync did not pull B's note")
	}
	n := rec.count()
	time.Sleep(200 * time.Millisecond)
	if got := rec.count(); got != n {
		t.Fatalf("%d syncs without a reason (periodic syncs are off)", got-n)
	}
	e.assertConverged(u, a, b)
}

func TestRunLoopPeriodicAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Tick")
	a := e.device(u, func(c *client.Config) { c.Retry.MaxAttempts = 1 })
	b := e.device(u)
	// The network is down for A's first two requests.
	var mu sync.Mutex
	down := 2
	a.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if down > 0 {
			down--
			return nil, errors.New("network is down (injected)")
		}
		return nil, nil
	})
	rec := newLoopRecorder()
	// Periodic syncs are what this tests: no live stream.
	startLoop(t, a, client.RunOptions{Interval: 150 * time.Millisecond, Debounce: 10 * time.Millisecond, OnSync: rec.onSync,
		Stream: client.StreamOptions{Mode: client.StreamOff}})
	for i := range 2 {
		if err := rec.wait(t, "while offline"); err == nil {
			t.Fatalf("sync %d succeeded while the network was down", i)
		}
	}
	// Retried with backoff, well before the next periodic sync would
	// matter.
	if err := rec.wait(t, "after the network came back"); err != nil {
		t.Fatal(err)
	}
	// Periodic: B's note arrives without a trigger or a local change.
	b.put("tick", note{"periodic"})
	b.sync()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := rec.wait(t, "periodically"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(context.Background(), "data.Note", "tick"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B's note never arrived by periodic syncs")
		}
	}
	e.assertConverged(u, a, b)
}
