package client_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/realtime"
)

// TestHintsAcrossReplicasConverge: devices of one user spread over two
// replicas (two Apps on one PostgreSQL, each with the PostgreSQL bus)
// sync only on local changes and live hints — no periodic poll — while
// their requests fail at random (before reaching the server, or with the
// answer lost after it acted) and every replica's listening connection is
// killed once. When the faults stop, every device holds exactly the
// server's state. FERRY_SIM_SEED replays a run; FERRY_SIM_DURATION makes
// the writing phase longer (default 2s).
func TestHintsAcrossReplicasConverge(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FERRY_SIM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_SIM_SEED=%q: %v", s, err)
		}
		seed = v
	}
	writing := 2 * time.Second
	if s := os.Getenv("FERRY_SIM_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FERRY_SIM_DURATION=%q: %v", s, err)
		}
		writing = d
	}
	dsn := synctest.PostgresURL(t)
	channel := fmt.Sprintf("ferry_sim_%d", seed)
	replica := func() *env {
		db, err := models.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		bus, err := realtime.NewPostgresBus(dsn, realtime.PostgresOptions{Channel: channel})
		if err != nil {
			t.Fatal(err)
		}
		live, err := realtime.New(realtime.Config{Bus: bus})
		if err != nil {
			t.Fatal(err)
		}
		return startBareApp(t, db, live)
	}
	replicas := []*env{replica(), replica()}
	acc := account{ID: "sim-ruth", Token: "sim-ruth"} // bareAuth: the token is the user

	faults := &faultTransport{rng: rand.New(rand.NewPCG(seed, 1))}
	faults.on.Store(true)
	var devs []*device
	for i := range 4 {
		d := replicas[i%2].device(acc, func(c *client.Config) {
			c.HTTPClient = &http.Client{Transport: faults, Timeout: time.Minute}
		})
		devs = append(devs, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.Run(ctx, hintsOnly(newStreamWatch()))
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()

	rng := rand.New(rand.NewPCG(seed, 2))
	writes, deletes := 0, 0
	killed := false
	for start := time.Now(); time.Since(start) < writing; {
		d := devs[rng.IntN(len(devs))]
		uid := fmt.Sprintf("n%02d", rng.IntN(30))
		if rng.IntN(6) == 0 {
			if err := d.Delete(ctx, "data.Note", uid); err != nil && !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("delete: %v", err)
			}
			deletes++
		} else {
			d.put(uid, map[string]any{"title": fmt.Sprintf("w%d", writes), "by": rng.IntN(1000)})
			writes++
		}
		if !killed && time.Since(start) > writing/2 {
			killed = true
			var n int
			if err := replicas[0].db.NewRaw(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = ? AND datname = current_database() AND query LIKE ?) k`,
				realtime.ListenerApplicationName, "LISTEN%"+channel+"%").Scan(ctx, &n); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("killed %d listening connections, want 2 (one per replica)", n)
			}
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
	}
	faults.on.Store(false)
	// The last writes' own syncs, retries and hints settle it; nothing
	// polls.
	eventually(t, "every device holds the server's state", func() bool {
		return replicas[0].converged(acc, devs...)
	})
	t.Logf("seed %d: %d writes and %d deletes on %d devices over 2 replicas; %d requests failed on purpose (%d after the server acted)",
		seed, writes, deletes, len(devs), faults.failed.Load(), faults.afterServer.Load())
}

// faultTransport fails a tenth of the sync requests while on: half
// before they reach the server, half by losing the answer after it acted.
// Live streams are left alone (their own reconnects are tested apart).
type faultTransport struct {
	on                  atomic.Bool
	mu                  sync.Mutex
	rng                 *rand.Rand
	failed, afterServer atomic.Int64
}

func (f *faultTransport) roll() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.IntN(20)
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !f.on.Load() || strings.HasSuffix(req.URL.Path, "/stream") {
		return http.DefaultTransport.RoundTrip(req)
	}
	switch f.roll() {
	case 0:
		f.failed.Add(1)
		return nil, errors.New("fault: the request never left")
	case 1:
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		f.failed.Add(1)
		f.afterServer.Add(1)
		return nil, errors.New("fault: the answer was lost")
	}
	return http.DefaultTransport.RoundTrip(req)
}
