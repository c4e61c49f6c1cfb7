package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestCrashDuringLargePushes builds the example app and, again and again,
// SIGKILLs the real server process in the middle of 1000-change pushes and
// starts it again on the same data, on SQLite and on PostgreSQL. After
// every crash:
//   - every change the client got an "applied" answer for is in the
//     database (checked while the server is down) and in a full pull
//     after the restart;
//   - versions are sound: no two of the user's records share one, the
//     scope's counter is past all of them, and a full pull returns every
//     record once, at the record's version;
//   - the client's retries finish the push: nothing stays queued, there
//     are exactly as many notes as the client created, and the device
//     holds exactly the server's state.
//
// FERRY_CRASH_CYCLES sets the number of crashes per store (default 3).
func TestCrashDuringLargePushes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a binary")
	}
	t.Parallel()
	cycles := 3
	if s := os.Getenv("FERRY_CRASH_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FERRY_CRASH_CYCLES=%q must be a positive integer", s)
		}
		cycles = n
	}
	bin := buildApp(t)
	for _, kind := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"FERRY_DATA_DIR=" + filepath.Join(dir, "data"), "FERRY_JWT_SECRET=63726173682d746573742d7365637265742d63726173682d746573742d73656372", "DATABASE_URL=", "FERRY_BCRYPT_COST=4"}
			openDB := func() (*bun.DB, error) {
				return models.OpenSQLite(context.Background(), filepath.Join(dir, "data", "ferry.db"))
			}
			if kind == synctest.Postgres {
				dsn := synctest.PostgresURL(t)
				env[2] = "DATABASE_URL=" + dsn
				openDB = func() (*bun.DB, error) { return models.OpenPostgres(context.Background(), dsn) }
			}
			runCrashCycles(t, bin, env, openDB, cycles)
		})
	}
}

// buildApp builds the example app into a temporary directory.
func buildApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "example-app")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// appProcess is one run of the example app binary.
type appProcess struct {
	cmd  *exec.Cmd
	done chan error
	logs *bytes.Buffer
}

// startApp starts the binary on addr and waits until /healthz answers.
func startApp(t *testing.T, bin, addr string, env []string) *appProcess {
	t.Helper()
	p := &appProcess{logs: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(append(os.Environ(), "FERRY_ADDR="+addr), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("the app exited early: %v\n%s", err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app never became healthy:\n%s", p.logs.String())
		}
	}
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *appProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// ackTransport passes requests on and remembers, for every push answer
// the client received whole, the changes answered applied.
type ackTransport struct {
	mu      sync.Mutex
	applied map[string]ackedChange // uid -> latest applied
	onPush  func()                 // called as a push is sent
	// inFlight counts pushes sent and not yet answered; failed counts
	// pushes that got no answer.
	inFlight, failed int
	lastPush         time.Duration // how long the last answered push took
}

type ackedChange struct {
	ModifyAt time.Time
	Deleted  bool
}

func (tr *ackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	isPush := strings.HasSuffix(req.URL.Path, "/push")
	tr.mu.Lock()
	onPush := tr.onPush
	if isPush {
		tr.onPush = nil
	}
	tr.mu.Unlock()
	if !isPush {
		return http.DefaultTransport.RoundTrip(req)
	}
	tr.mu.Lock()
	tr.inFlight++
	tr.mu.Unlock()
	if onPush != nil {
		onPush()
	}
	sent := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	tr.mu.Lock()
	tr.inFlight--
	if err != nil {
		tr.failed++
	} else {
		tr.lastPush = time.Since(sent)
	}
	tr.mu.Unlock()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.StatusCode == http.StatusOK {
		var out struct {
			Results []struct {
				Status string `json:"status"`
				Record *struct {
					UID       string    `json:"uid"`
					ModifyAt  time.Time `json:"modify_at"`
					IsDeleted bool      `json:"is_deleted"`
				} `json:"record"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &out); err == nil {
			tr.mu.Lock()
			for _, r := range out.Results {
				if r.Status == client.StatusApplied && r.Record != nil {
					if old, ok := tr.applied[r.Record.UID]; !ok || !r.Record.ModifyAt.Before(old.ModifyAt) {
						tr.applied[r.Record.UID] = ackedChange{ModifyAt: r.Record.ModifyAt, Deleted: r.Record.IsDeleted}
					}
				}
			}
			tr.mu.Unlock()
		}
	}
	return resp, nil
}

func (tr *ackTransport) snapshot() map[string]ackedChange {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make(map[string]ackedChange, len(tr.applied))
	for k, v := range tr.applied {
		out[k] = v
	}
	return out
}

func runCrashCycles(t *testing.T, bin string, env []string, openDB func() (*bun.DB, error), cycles int) {
	ctx := context.Background()
	addr := crashFreeAddr(t)
	proc := startApp(t, bin, addr, env)
	acc := servertest.SignUpAt(t, "http://"+addr, "Crash")
	tr := &ackTransport{applied: map[string]ackedChange{}}
	c, err := client.New(client.Config{
		BaseURL:    "http://" + addr,
		HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute},
		Token:      acc.Token,
		Owner:      acc.ID,
		DeviceID:   "crash-test",
		MaxBatch:   client.MaxMaxBatch,
		// Retry long enough to outlast a restart.
		Retry: client.Retry{MaxAttempts: 200, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
		OnRejected: func(_ context.Context, r client.Rejection) {
			t.Errorf("%s/%s %s: %+v", r.Change.Model, r.Change.UID, r.Status, r.Errors)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	var uids []string
	midPush := 0
	work := func(creates int) {
		for range creates {
			uid := client.NewUID()
			uids = append(uids, uid)
			if _, err := c.Put(ctx, "data.Note", uid, map[string]any{"title": "note " + uid[:8], "body": strings.Repeat("x", rng.IntN(200))}); err != nil {
				t.Fatal(err)
			}
		}
		for range creates / 5 {
			uid := uids[rng.IntN(len(uids))]
			if rng.IntN(4) == 0 {
				if err := c.Delete(ctx, "data.Note", uid); err != nil {
					t.Fatal(err)
				}
			} else if _, err := c.Put(ctx, "data.Note", uid, map[string]any{"title": "edited " + uid[:8]}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A first push, undisturbed, measures how long a large push takes.
	work(1000)
	if res, err := c.Sync(ctx); err != nil || res.Applied != 1000 {
		t.Fatalf("first sync: %+v, %v", res, err)
	}
	tr.mu.Lock()
	window := tr.lastPush
	tr.mu.Unlock()
	checkCrashState(t, "http://"+addr, acc, c, tr.snapshot(), len(uids), openDB)

	for cycle := range cycles {
		work(1500)
		// Kill the server at a random moment of the first push of this
		// sync, while the client's retries keep going.
		killed := make(chan struct{})
		tr.mu.Lock()
		tr.onPush = func() {
			go func() {
				time.Sleep(time.Duration(rng.Int64N(int64(window)*3/4 + 1)))
				tr.mu.Lock()
				if tr.inFlight > 0 {
					midPush++
				}
				tr.mu.Unlock()
				proc.kill()
				close(killed)
			}()
		}
		tr.mu.Unlock()
		type syncDone struct {
			res client.SyncResult
			err error
		}
		done := make(chan syncDone, 1)
		go func() {
			res, err := c.Sync(ctx)
			done <- syncDone{res, err}
		}()
		<-killed
		// While the server is down: everything answered applied is stored.
		checkAckedInDB(t, fmt.Sprintf("cycle %d, after the crash", cycle), tr.snapshot(), openDB)
		proc = startApp(t, bin, addr, env)
		d := <-done
		if d.err != nil {
			t.Fatalf("cycle %d: the sync did not finish after the restart: %v\n%s", cycle, d.err, proc.logs.String())
		}
		// One more sync pulls anything the interrupted one left to pull.
		if _, err := c.Sync(ctx); err != nil {
			t.Fatalf("cycle %d: second sync: %v", cycle, err)
		}
		checkCrashState(t, "http://"+addr, acc, c, tr.snapshot(), len(uids), openDB)
		if t.Failed() {
			t.Fatalf("cycle %d failed (seed %d)", cycle, seed)
		}
	}
	tr.mu.Lock()
	failed := tr.failed
	tr.mu.Unlock()
	t.Logf("%d crashes, %d of them with a push of up to 1000 changes in flight; %d push requests got no answer and were retried; %d notes; push window %v",
		cycles, midPush, failed, len(uids), window.Round(time.Millisecond))
}

// checkAckedInDB fails unless every applied answer is in the database.
func checkAckedInDB(t *testing.T, when string, acked map[string]ackedChange, openDB func() (*bun.DB, error)) {
	t.Helper()
	db, err := openDB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type row struct {
		UID       string    `bun:"uid"`
		ModifyAt  time.Time `bun:"modify_at"`
		IsDeleted bool      `bun:"is_deleted"`
	}
	var rows []row
	if err := db.NewRaw("SELECT uid, modify_at, is_deleted FROM notes").Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	have := make(map[string]row, len(rows))
	for _, r := range rows {
		have[r.UID] = r
	}
	for uid, a := range acked {
		r, ok := have[uid]
		if !ok || r.ModifyAt.Before(a.ModifyAt) {
			t.Errorf("%s: %s was answered applied at %s, the database has %+v", when, uid, a.ModifyAt, r)
		}
	}
}

// checkCrashState checks the server's records, its version counter, a full
// pull and the device against each other.
func checkCrashState(t *testing.T, base string, acc servertest.User, c *client.Client, acked map[string]ackedChange, created int, openDB func() (*bun.DB, error)) {
	t.Helper()
	ctx := context.Background()
	checkAckedInDB(t, "after the restart", acked, openDB)
	db, err := openDB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []struct {
		UID     string `bun:"uid"`
		Version int64  `bun:"version"`
	}
	if err := db.NewRaw(`SELECT uid, version FROM notes WHERE owner = ?`, acc.ID).Scan(ctx, &rows); err != nil {
		t.Fatal(err)
	}
	records := make(map[string]int64, len(rows))
	for _, r := range rows {
		records[r.UID] = r.Version
	}
	// Pulls merge the user's tables by version: no two records may share
	// one, and the scope's counter must be past every version handed out,
	// so the next write cannot reuse one.
	const owned = `SELECT version FROM notes WHERE owner = ?0 UNION ALL SELECT version FROM users WHERE owner = ?0
		UNION ALL SELECT version FROM ferry_records WHERE owner = ?0`
	var shared int
	if err := db.NewRaw(`SELECT count(*) FROM (SELECT version FROM (`+owned+`) AS v GROUP BY version HAVING count(*) > 1) AS d`, acc.ID).Scan(ctx, &shared); err != nil {
		t.Fatal(err)
	}
	if shared != 0 {
		t.Errorf("%d versions are held by more than one record", shared)
	}
	var counter, highest int64
	if err := db.NewRaw(`SELECT version FROM ferry_scopes WHERE scope = ?`, acc.ID).Scan(ctx, &counter); err != nil {
		t.Fatal(err)
	}
	if err := db.NewRaw(`SELECT coalesce(max(version), 0) FROM (`+owned+`) AS v`, acc.ID).Scan(ctx, &highest); err != nil {
		t.Fatal(err)
	}
	if counter < highest {
		t.Errorf("the scope's version counter is %d, below the highest version %d", counter, highest)
	}
	if len(records) != created {
		t.Errorf("the database has %d notes; the client created %d", len(records), created)
	}

	pulled := servertest.PullAll(t, base, acc)
	notes := 0
	for k, r := range pulled {
		if !strings.HasPrefix(k, "data.Note/") {
			continue
		}
		notes++
		uid := strings.TrimPrefix(k, "data.Note/")
		if v, ok := records[uid]; !ok || v != r.Version {
			t.Errorf("a full pull has %s at version %d, the notes table at %d (present: %v)", uid, r.Version, v, ok)
		}
	}
	if notes != len(records) {
		t.Errorf("a full pull returned %d notes, the table has %d", notes, len(records))
	}
	for uid, a := range acked {
		r, ok := pulled["data.Note/"+uid]
		if !ok || r.ModifyAt.Before(a.ModifyAt) {
			t.Errorf("%s was answered applied at %s; a full pull has %+v", uid, a.ModifyAt, r)
		}
	}

	// The device: nothing queued, exactly the server's state.
	if n, err := c.PendingCount(ctx); err != nil || n != 0 {
		t.Errorf("%d changes still queued (%v)", n, err)
	}
	local, err := c.Store().List(ctx, client.ListParams{IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != len(pulled) {
		t.Errorf("the device holds %d records, the server %d", len(local), len(pulled))
	}
	for _, r := range local {
		p, ok := pulled[r.Model+"/"+r.UID]
		if !ok || !r.Synced || p.Version != r.Version || !p.ModifyAt.Equal(r.ModifyAt) || p.IsDeleted != r.IsDeleted {
			t.Errorf("device %s/%s (version %d, synced %v) vs server %+v", r.Model, r.UID, r.Version, r.Synced, p)
		}
	}
}

func crashFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
