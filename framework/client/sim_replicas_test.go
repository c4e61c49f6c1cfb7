package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/realtime"
	"github.com/uptrace/bun"
)

// The replicas simulation: the convergence simulation's spirit with the
// live stream, on two server replicas.
//
// Two Apps share one PostgreSQL schema, each with the realtime plugin on
// its own PostgreSQL bus (LISTEN/NOTIFY on a channel of the run's own),
// each behind its own HTTP server. A load balancer without affinity
// sends every request of every device (streams included) to a random
// replica that is up. The devices run client.Run with periodic syncs
// disabled: they sync at start, after their own edits, and on hints. So
// a write on a device reaches another device only as a hint from
// whichever replica its stream is on.
//
// Meanwhile random writes land on random devices (creates, edits,
// deletes, revivals); devices restart (their Run ends, their store is
// reopened, a new client runs); a replica restarts after every round (its
// streams end, the balancer sends everything to the other); and the
// network drops requests, answers 503, loses answers after the server
// applied the request, duplicates requests, delivers copies of pushes
// late, refuses streams and cuts open ones. The simulation's step-by-step
// replay does not apply (devices run concurrently), but every random
// choice comes from the seed's generator.
//
// Then the faults stop, a few more writes land (which reach the devices
// streaming from the other replica only through the bus), and every
// device must, within a generous bound,
// hold exactly what a full pull of its user returns, with nothing queued,
// and every record's state must be its latest local write.
//
// The FERRY_SIM_* variables extend it as they do TestSimConvergence:
// FERRY_SIM_SEED, FERRY_SIM_DURATION (epochs until spent), FERRY_SIM_ROUNDS
// and FERRY_SIM_EPOCH.
func TestSimReplicas(t *testing.T) {
	t.Parallel()
	cfg := simSettingsFromEnv(t)
	set := newReplicaSet(t, synctest.PostgresURL(t))
	defer set.close()
	var total replicaStats
	start := time.Now()
	if cfg.long == 0 {
		runReplicaEpoch(t, set, cfg.seed, cfg.epoch0, cfg.rounds, simDefaultBudget, &total)
	} else {
		for epoch := 0; time.Since(start) < cfg.long && !t.Failed(); epoch++ {
			runReplicaEpoch(t, set, cfg.seed+uint64(epoch), epoch, 0, 0, &total)
		}
	}
	t.Logf("seed %d, %s; %v", cfg.seed, total.String(), time.Since(start).Round(time.Millisecond))
}

// replicaStats counts what a run did; devices' goroutines add to it.
type replicaStats struct {
	epochs, rounds, replicaRestarts, deviceRestarts, writes, syncs, failedSyncs atomic.Int64
	requests, dropped, errors5xx, lostAnswers, duplicated, late                 atomic.Int64
	streamsUp, streamsDown, streamsRefused, streamsCut                          atomic.Int64
}

func (s *replicaStats) String() string {
	return fmt.Sprintf("%d epochs, %d rounds, %d replica restarts, %d device restarts, %d local writes, %d syncs (%d failed), %d requests; streams: %d up, %d down, %d refused, %d cut; faults: %d dropped, %d 503s, %d answers lost after apply, %d duplicated, %d delivered late",
		s.epochs.Load(), s.rounds.Load(), s.replicaRestarts.Load(), s.deviceRestarts.Load(), s.writes.Load(), s.syncs.Load(), s.failedSyncs.Load(), s.requests.Load(),
		s.streamsUp.Load(), s.streamsDown.Load(), s.streamsRefused.Load(), s.streamsCut.Load(),
		s.dropped.Load(), s.errors5xx.Load(), s.lostAnswers.Load(), s.duplicated.Load(), s.late.Load())
}

// replicaSet is the two replicas on one PostgreSQL schema.
type replicaSet struct {
	t       *testing.T
	dsn     string
	channel string
	mu      sync.Mutex
	reps    [2]*replica // nil while restarting
}

// replica is one App served over HTTP.
type replica struct {
	app  *framework.App
	hs   *httptest.Server
	db   *bun.DB
	host string
}

func newReplicaSet(t *testing.T, dsn string) *replicaSet {
	t.Helper()
	s := &replicaSet{t: t, dsn: dsn, channel: fmt.Sprintf("ferry_sim_%d", time.Now().UnixNano())}
	for i := range s.reps {
		s.start(i)
	}
	return s
}

func (s *replicaSet) start(i int) {
	s.t.Helper()
	ctx := context.Background()
	db, err := models.OpenPostgres(ctx, s.dsn)
	if err != nil {
		s.t.Fatalf("replica %d: open the store: %v", i, err)
	}
	bus, err := realtime.NewPostgresBus(s.dsn, realtime.PostgresOptions{Channel: s.channel})
	if err != nil {
		s.t.Fatalf("replica %d: %v", i, err)
	}
	// Short keep-alives: more of the stream's lines cross the faults.
	rt, err := realtime.New(realtime.Config{Bus: bus, KeepAlive: 200 * time.Millisecond})
	if err != nil {
		s.t.Fatalf("replica %d: %v", i, err)
	}
	app, h, err := newBareApp(db, rt)
	if err != nil {
		db.Close()
		s.t.Fatalf("replica %d: %v", i, err)
	}
	hs := httptest.NewServer(h)
	s.mu.Lock()
	s.reps[i] = &replica{app: app, hs: hs, db: db, host: strings.TrimPrefix(hs.URL, "http://")}
	s.mu.Unlock()
}

// stop takes replica i out of the balancer, ends its streams and waits
// for its other requests.
func (s *replicaSet) stop(i int) {
	s.t.Helper()
	s.mu.Lock()
	r := s.reps[i]
	s.reps[i] = nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	err := r.app.Close()
	r.hs.Close()
	if err = errors.Join(err, r.db.Close()); err != nil {
		s.t.Errorf("replica %d: close: %v", i, err)
	}
}

func (s *replicaSet) close() {
	for i := range s.reps {
		s.stop(i)
	}
}

// pick returns the host of a replica that is up, the n-th when both are.
func (s *replicaSet) pick(n int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var up []string
	for _, r := range s.reps {
		if r != nil {
			up = append(up, r.host)
		}
	}
	if len(up) == 0 {
		return "", false
	}
	return up[n%len(up)], true
}

// url is the base URL of a replica that is up.
func (s *replicaSet) url() string {
	h, ok := s.pick(0)
	if !ok {
		s.t.Fatal("no replica is up")
	}
	return "http://" + h
}

// repEpoch is one simulated world on the replicas.
type repEpoch struct {
	t     *testing.T
	set   *replicaSet
	seed  uint64
	n     int
	stats *replicaStats
	http  *http.Transport

	rngMu sync.Mutex
	rng   *rand.Rand

	faulty  atomic.Bool
	users   []*repUser
	devs    []*repDevice
	writes  writeLog // written from the test's goroutine only
	lateWG  sync.WaitGroup
	streams sync.Map // *cutStream → struct{}: open streams, for cuts
}

type repUser struct {
	acc account
	tag string
}

type repDevice struct {
	name   string
	user   *repUser
	path   string       // SQLite file, "" for a memory store
	mem    client.Store // the memory store, kept across restarts
	sqlite *client.SQLiteStore
	c      *client.Client
	offset time.Duration
	stop   func()
	next   int
}

func (e *repEpoch) intn(n int) int {
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return e.rng.IntN(n)
}

// runReplicaEpoch runs one epoch: rounds of random writes under faults,
// each ended by a replica restart, then convergence without faults. With
// rounds 0 and budget 0 the round count is drawn from the seed; with a
// budget, rounds run until it is spent (at least two).
func runReplicaEpoch(t *testing.T, set *replicaSet, seed uint64, n, rounds int, budget time.Duration, stats *replicaStats) {
	t.Helper()
	e := &repEpoch{t: t, set: set, seed: seed, n: n, stats: stats,
		http:   &http.Transport{MaxIdleConnsPerHost: 8},
		rng:    rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc909)),
		writes: writeLog{},
	}
	defer e.http.CloseIdleConnections()
	played := 0
	defer func() {
		if t.Failed() {
			t.Logf("FAILED in epoch %d (seed %d), %d rounds played; run it again with: FERRY_SIM_SEED=%d FERRY_SIM_EPOCH=%d FERRY_SIM_ROUNDS=%d go test ./framework/client -run 'TestSimReplicas$' -v (the devices run concurrently: the same seed draws the same choices, not the same interleaving)",
				n, seed, played, seed, n, max(played, 1))
		}
	}()
	stats.epochs.Add(1)
	e.setUp()
	defer func() {
		for _, d := range e.devs {
			e.stopDevice(d)
		}
	}()
	drawn := 2 + e.intn(7)
	e.faulty.Store(true)
	cutter := e.startCutter()
	playRounds(t, rounds, drawn, budget, e.round, &played)
	cutter()
	e.faulty.Store(false)
	e.lateWG.Wait()
	if !t.Failed() {
		e.converge()
	}
}

// setUp makes 2 or 3 users with 2 to 4 devices each, 5 devices at least.
func (e *repEpoch) setUp() {
	for i := range 2 + e.intn(2) {
		tag := fmt.Sprintf("r%de%du%d", e.seed%1000, e.n, i)
		id := "user-" + tag
		e.users = append(e.users, &repUser{acc: account{ID: id, Token: id}, tag: tag})
	}
	for len(e.devs) < 5 {
		for _, u := range e.users {
			if e.intn(2) == 0 {
				e.addDevice(u)
			}
		}
	}
}

func (e *repEpoch) addDevice(u *repUser) {
	d := &repDevice{
		name: fmt.Sprintf("%s-d%d", u.tag, len(e.devs)),
		user: u,
		// Device clocks disagree by up to a few seconds.
		offset: time.Duration(e.intn(int(4*time.Second))) - 2*time.Second,
	}
	if e.intn(2) == 0 {
		d.path = filepath.Join(e.t.TempDir(), d.name+".db")
	}
	e.devs = append(e.devs, d)
	e.startDevice(d)
}

// startDevice opens d's store, builds its client and runs it, as an app
// does when it starts.
func (e *repEpoch) startDevice(d *repDevice) {
	ctx := context.Background()
	var st client.Store
	if d.path == "" {
		if d.mem == nil {
			d.mem = client.NewMemoryStore()
		}
		st = d.mem
	} else {
		s, err := client.OpenSQLiteStore(ctx, d.path)
		if err != nil {
			e.t.Fatal(err)
		}
		d.sqlite, st = s, s
	}
	c, err := client.New(client.Config{
		BaseURL:    simBaseURL,
		HTTPClient: &http.Client{Transport: &repTransport{e: e}, Timeout: time.Minute},
		Token:      d.user.acc.Token,
		Owner:      d.user.acc.ID,
		Store:      &recordingStore{Store: st, wrote: e.wrote},
		DeviceID:   d.name,
		MaxBatch:   1 + e.intn(40),
		PullLimit:  1 + e.intn(60),
		Retry:      client.Retry{MaxAttempts: 2 + e.intn(3), BaseDelay: 100 * time.Microsecond, MaxDelay: 2 * time.Millisecond},
		Clock:      func() time.Time { return time.Now().Add(d.offset) },
		OnRejected: func(_ context.Context, r client.Rejection) {
			e.t.Errorf("%s: %s/%s %s: %+v", d.name, r.Change.Model, r.Change.UID, r.Status, r.Errors)
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	d.c = c
	opts := client.RunOptions{
		Interval: -1, // hints only
		Debounce: time.Duration(2+e.intn(20)) * time.Millisecond,
		OnSync: func(_ client.SyncResult, err error) {
			e.stats.syncs.Add(1)
			if err != nil {
				e.stats.failedSyncs.Add(1)
			}
		},
		Stream: client.StreamOptions{
			Debounce:          time.Duration(1+e.intn(10)) * time.Millisecond,
			ReconnectDelay:    2 * time.Millisecond,
			MaxReconnectDelay: 50 * time.Millisecond,
			OnState: func(s client.StreamState, _ error) {
				switch s {
				case client.StreamUp:
					e.stats.streamsUp.Add(1)
				case client.StreamDown:
					e.stats.streamsDown.Add(1)
				default:
					e.t.Errorf("%s: the stream is %s", d.name, s)
				}
			},
		},
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, opts) }()
	d.stop = func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				e.t.Errorf("%s: Run returned %v", d.name, err)
			}
		case <-time.After(waitLimit):
			e.t.Errorf("%s: Run did not stop", d.name)
		}
	}
}

func (e *repEpoch) stopDevice(d *repDevice) {
	d.stop()
	if d.sqlite != nil {
		if err := d.sqlite.Close(); err != nil {
			e.t.Errorf("%s: close store: %v", d.name, err)
		}
		d.sqlite = nil
	}
}

// restartDevice ends d's Run, reopens its store and runs a new client.
func (e *repEpoch) restartDevice(d *repDevice) {
	e.stopDevice(d)
	e.startDevice(d)
	e.stats.deviceRestarts.Add(1)
}

// recordingStore tells the epoch about every local write.
type recordingStore struct {
	client.Store
	wrote func(rec *client.Record)
}

func (s *recordingStore) Write(ctx context.Context, rec *client.Record) (int64, error) {
	seq, err := s.Store.Write(ctx, rec)
	if err == nil {
		s.wrote(rec)
	}
	return seq, err
}

func (e *repEpoch) wrote(rec *client.Record) {
	e.stats.writes.Add(1)
	e.writes.note(e.t, rec)
}

// round writes on random devices for a little while, restarting some,
// then restarts a random replica.
func (e *repEpoch) round() {
	until := time.Now().Add(time.Duration(200+e.intn(400)) * time.Millisecond)
	for time.Now().Before(until) && !e.t.Failed() {
		d := e.devs[e.intn(len(e.devs))]
		switch x := e.intn(100); {
		case x < 90:
			for range 1 + e.intn(4) {
				e.work(d)
			}
		case x < 95:
			e.restartDevice(d)
		}
		time.Sleep(time.Duration(e.intn(3000)) * time.Microsecond)
	}
	i := e.intn(2)
	e.set.stop(i)
	e.set.start(i)
	e.stats.replicaRestarts.Add(1)
	e.stats.rounds.Add(1)
}

// work makes one local write on d: a create, an edit, a delete or a
// revival of a note.
func (e *repEpoch) work(d *repDevice) {
	ctx := context.Background()
	live, dead := notesOf(e.t, d.c.Store(), d.user.acc.ID)
	x := e.intn(100)
	switch {
	case x < 35 || len(live) == 0 && x < 85 || len(dead) == 0 && x >= 85:
		d.next++
		e.put(d, fmt.Sprintf("n-%s-%d", d.name, d.next))
	case x < 70:
		e.put(d, live[e.intn(len(live))].UID)
	case x < 85:
		uid := live[e.intn(len(live))].UID
		if err := d.c.Delete(ctx, "data.Note", uid); err != nil {
			e.t.Fatalf("%s: delete %s: %v", d.name, uid, err)
		}
	default:
		e.put(d, dead[e.intn(len(dead))].UID)
	}
}

func (e *repEpoch) put(d *repDevice, uid string) {
	title := fmt.Sprintf("%s %d", simWords[e.intn(len(simWords))], e.intn(10000))
	if _, err := d.c.Put(context.Background(), "data.Note", uid, note{title}); err != nil {
		e.t.Fatalf("%s: put %s: %v", d.name, uid, err)
	}
}

// startCutter cuts a random open stream now and then until the returned
// function is called.
func (e *repEpoch) startCutter() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			t := time.NewTimer(time.Duration(10+e.intn(50)) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var open []*cutStream
			e.streams.Range(func(k, _ any) bool {
				open = append(open, k.(*cutStream))
				return true
			})
			if len(open) > 0 {
				open[e.intn(len(open))].cut()
				e.stats.streamsCut.Add(1)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// converge makes a last few writes, with both replicas up and no faults,
// then waits until every device holds its user's state on the server and
// checks it against the writes. The last writes reach the devices whose
// streams are on the other replica only through the bus: no restart or
// cut makes those streams ask again.
func (e *repEpoch) converge() {
	for range 5 + e.intn(10) {
		e.work(e.devs[e.intn(len(e.devs))])
		time.Sleep(time.Duration(e.intn(20)) * time.Millisecond)
	}
	const bound = 2 * time.Minute // ends a broken run only
	deadline := time.Now().Add(bound)
	for {
		diffs := e.differences()
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no convergence without faults after %s:\n%s", bound, strings.Join(diffs, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, u := range e.users {
		e.writes.check(e.t, u.acc.ID, simFullPull(e.t, e.set.url(), u.acc), nil)
	}
	for _, d := range e.devs {
		recs, err := d.c.Store().List(context.Background(), client.ListParams{IncludeDeleted: true})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range recs {
			if r.Owner != d.user.acc.ID || !strings.Contains(r.UID, d.user.tag+"-") {
				e.t.Errorf("%s (user %s) holds %s/%s of owner %s", d.name, d.user.tag, r.Model, r.UID, r.Owner)
			}
		}
	}
}

// differences says how each device differs from its user's state on the
// server, nothing when all converged.
func (e *repEpoch) differences() []string {
	var out []string
	for _, u := range e.users {
		want := simFullPull(e.t, e.set.url(), u.acc)
		for _, d := range e.devs {
			if d.user != u {
				continue
			}
			got, unsynced := storeState(e.t, d.c.Store())
			n, err := d.c.PendingCount(context.Background())
			if err != nil {
				e.t.Fatal(err)
			}
			if n > 0 || len(unsynced) > 0 || !reflect.DeepEqual(got, want) {
				out = append(out, fmt.Sprintf("%s: %d queued, %d unsynced, %s", d.name, n, len(unsynced), simDiff(got, want)))
			}
		}
	}
	return out
}

// repTransport is the devices' network: a balancer that sends each
// request to a random replica that is up, with faults while the epoch is
// faulty.
type repTransport struct{ e *repEpoch }

func (tr *repTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := tr.e
	e.stats.requests.Add(1)
	raw, err := readBody(req)
	if err != nil {
		return nil, err
	}
	host, ok := e.set.pick(e.intn(2))
	if !ok {
		return nil, errors.New("no replica is up")
	}
	out := req.Clone(req.Context())
	out.URL.Host, out.Host = host, host
	fault := 100
	if e.faulty.Load() {
		fault = e.intn(100)
	}
	if strings.HasSuffix(req.URL.Path, "/stream") {
		return tr.stream(out, fault)
	}
	body := func() io.ReadCloser { return io.NopCloser(bytes.NewReader(raw)) }
	if raw != nil {
		out.Body = body()
	}
	isPush := strings.HasSuffix(req.URL.Path, "/push")
	switch {
	case fault < 6: // lost on the way
		e.stats.dropped.Add(1)
		return nil, fmt.Errorf("request dropped: %w", errInjected)
	case fault < 9: // overloaded
		e.stats.errors5xx.Add(1)
		return errorResponse(req, http.StatusServiceUnavailable, "unavailable"), nil
	case fault < 12 && isPush: // a copy lands later, after newer pushes
		e.stats.late.Add(1)
		late := out.Clone(context.Background())
		late.Body = body()
		e.lateWG.Add(1)
		go func() {
			defer e.lateWG.Done()
			time.Sleep(time.Duration(e.intn(50)) * time.Millisecond)
			if resp, err := e.http.RoundTrip(late); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		return nil, fmt.Errorf("request timed out: %w", errInjected)
	}
	resp, answer, err := tr.send(out)
	if err != nil {
		return nil, err
	}
	switch {
	case fault >= 15 && fault < 22: // the answer is lost after the server applied it
		e.stats.lostAnswers.Add(1)
		return nil, fmt.Errorf("connection reset after the request was sent: %w", errInjected)
	case fault >= 22 && fault < 27: // sent twice; the client sees one of the answers
		e.stats.duplicated.Add(1)
		again := out.Clone(req.Context())
		if raw != nil {
			again.Body = body()
		}
		resp2, answer2, err := tr.send(again)
		if err != nil {
			return nil, err
		}
		if e.intn(2) == 0 {
			resp, answer = resp2, answer2
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	resp.Request = req
	return resp, nil
}

// send sends req and reads its whole answer.
func (tr *repTransport) send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := tr.e.http.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

// stream opens a stream, or refuses it, and makes an open one cuttable.
func (tr *repTransport) stream(req *http.Request, fault int) (*http.Response, error) {
	e := tr.e
	switch {
	case fault < 8:
		e.stats.streamsRefused.Add(1)
		return nil, fmt.Errorf("stream refused: %w", errInjected)
	case fault < 12:
		e.stats.streamsRefused.Add(1)
		return errorResponse(req, http.StatusServiceUnavailable, "unavailable"), nil
	}
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := e.http.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	cs := &cutStream{ReadCloser: resp.Body, cut: cancel, e: e}
	e.streams.Store(cs, struct{}{})
	resp.Body = cs
	return resp, nil
}

// cutStream is an open stream's body; cut ends it as a broken connection
// would.
type cutStream struct {
	io.ReadCloser
	cut  context.CancelFunc
	e    *repEpoch
	once sync.Once
}

func (s *cutStream) Close() error {
	s.once.Do(func() {
		s.e.streams.Delete(s)
		s.cut()
	})
	return s.ReadCloser.Close()
}
