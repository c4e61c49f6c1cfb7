package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/uptrace/bun"
)

// The convergence simulation.
//
// Several users, each with several devices (a client.Client with its own
// store, some in memory, some in a SQLite file that is closed and reopened
// as the device restarts), work offline for random stretches and sync in
// random order through a transport that drops requests, drops answers after
// the server applied them, duplicates requests, delivers copies of pushes
// late (after newer pushes) and answers 503. While a sync is in flight the
// app keeps editing, and late copies land between its requests. The
// server is restarted on the same database between rounds. Everything runs
// one step at a time, driven by one seeded generator, so a seed (and a
// round count) replays a run.
//
// In half of the epochs the server also purges its tombstones now and
// then, so devices with older cursors get reset_required and pull from the
// start (see epoch.purge for how that stays within the retention window's
// contract); a device keeps a tombstone the server purged after the device
// saw it.
//
// The run has a policy dimension, data.Note's conflict policy: the
// example app's last-writer-wins, policies.FieldLWW or policies.Automerge
// (each a subtest per store), the field merges with deletes winning or
// edits winning, drawn per epoch. Under a field merge devices create
// whole notes and then mostly patch random subsets of their fields
// (client.Patch, which records the fields' times), else put new data
// that may leave fields out (removing them).
//
// After a final round without faults, in which every device syncs until
// nothing moves:
//   - every device of a user holds exactly what a fresh full pull of that
//     user returns (versions and field times included), with nothing
//     queued;
//   - under last-writer-wins (and for settings under every policy) every
//     record's final modify_at is the latest modify_at any device wrote
//     for it (with its data when one write holds that time alone), so no
//     local write and no change the server acknowledged was lost;
//   - under a field merge every note is what the protocol makes of every
//     edit a device made and every delete that reached the server (see
//     fieldLog.check): deleted when a delete won (deletes win: any; edits
//     win: one at or after the latest field edit), else each field holds
//     its latest edit, value and field time, unless a later delete lost
//     it or a purge came between (then some edit of it); Automerge's tags
//     hold the union of the latest edit and the arrays merged after it;
//   - modify_at >= the last acknowledged one for every record;
//   - no device ever held, and no answer ever carried, a record of another
//     user (checked after every step and on every answer).
//
// After every sync each device also shows its own latest edit of every
// record still queued (unsynced exactly when queued) and no record of it
// goes back in time (but to a tombstone that won under deletes win); the
// client's field times of every local edit are checked against the
// fields the edit changed.
//
// FERRY_SIM_SEED fixes the seed; FERRY_SIM_POLICY (lww, fieldlww,
// automerge, or all, the default) the policies; FERRY_SIM_DURATION (such
// as 10m) runs epochs (fresh users and devices on the same server, epoch
// i with seed FERRY_SIM_SEED+i) until it is spent; FERRY_SIM_ROUNDS fixes
// the rounds of a short run and FERRY_SIM_EPOCH its epoch number, so that
// a failed epoch of a long run replays alone; FERRY_SIM_TRACE=<uid> then
// logs what happened to one record.

// simDefaultBudget is the time a short run of one policy spends per store
// in its rounds.
const simDefaultBudget = 2 * time.Second

// errInjected marks a failure the fault transport made up.
var errInjected = errors.New("injected fault")

func TestSimConvergence(t *testing.T) {
	t.Parallel()
	cfg := simSettingsFromEnv(t)
	seed, long, rounds, epoch0 := cfg.seed, cfg.long, cfg.rounds, cfg.epoch0
	pols := simPoliciesFromEnv(t)
	// Subtests run GOMAXPROCS at a time (go test's -parallel), and each
	// spends a second or so beyond its budget on its setup and checks: a
	// short run of several policies shares the time of one.
	budget := simDefaultBudget
	if len(pols) > 1 {
		budget /= time.Duration(2 * len(pols))
	}
	for _, pol := range pols {
		t.Run(string(pol), func(t *testing.T) {
			t.Parallel()
			for _, kind := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
				t.Run(string(kind), func(t *testing.T) {
					t.Parallel()
					srv := newSimServer(t, kind, pol)
					defer srv.stop()
					total := simStats{}
					start := time.Now()
					if long == 0 {
						st := runEpoch(t, srv, seed, epoch0, rounds, budget)
						total.add(st)
					} else {
						for epoch := 0; time.Since(start) < long && !t.Failed(); epoch++ {
							// Long runs: each epoch has its own seed and a round
							// count drawn from it, so any epoch replays alone.
							es := seed + uint64(epoch)
							st := runEpoch(t, srv, es, epoch, 0, 0)
							total.add(st)
						}
					}
					t.Logf("%s/%s: seed %d, %d epochs, %d rounds, %d server restarts, %d device restarts, %d local writes (%d bursts during a sync), %d syncs (%d failed on injected faults, %d resets after %d purges of %d tombstones), %d requests (%d pushes moved the cursor past their own writes), faults: %s%s; %v",
						pol, kind, seed, total.epochs, total.rounds, total.serverRestarts, total.deviceRestarts, total.writes, total.editsInFlight, total.syncs, total.failedSyncs, total.resets, total.purges, total.purged, total.requests, total.cursorMoves, total.faults(), total.fieldStats(pol), time.Since(start).Round(time.Millisecond))
				})
			}
		})
	}
}

// simSettings are the FERRY_SIM_* variables (see the simulation's
// comment): the seed, the duration of a long run, the rounds of a short
// one and its epoch number.
type simSettings struct {
	seed           uint64
	long           time.Duration
	rounds, epoch0 int
}

func simSettingsFromEnv(t *testing.T) simSettings {
	t.Helper()
	cfg := simSettings{seed: uint64(time.Now().UnixNano())}
	if s := os.Getenv("FERRY_SIM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_SIM_SEED=%q: %v", s, err)
		}
		cfg.seed = v
	}
	if s := os.Getenv("FERRY_SIM_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FERRY_SIM_DURATION=%q: %v", s, err)
		}
		cfg.long = d
	}
	if s := os.Getenv("FERRY_SIM_EPOCH"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("FERRY_SIM_EPOCH=%q must be a number", s)
		}
		cfg.epoch0 = v
	}
	if s := os.Getenv("FERRY_SIM_ROUNDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("FERRY_SIM_ROUNDS=%q must be a positive integer", s)
		}
		cfg.rounds = v
	}
	return cfg
}

// simStats counts what a run did.
type simStats struct {
	epochs, rounds, serverRestarts, deviceRestarts             int
	writes, syncs, failedSyncs, requests, editsInFlight        int
	purges, purged, resets, cursorMoves                        int
	dropped, lostAnswers, duplicated, late, errors5xx, delayed int
	// Under a field-merging policy: epochs by delete rule, note patches,
	// push results merged and stale, and what the final check compared.
	deleteWins, editWins, patches, merged, stale        int
	checkedNotes, exactFields, weakFields, deletedNotes int
}

func (s *simStats) add(o simStats) {
	s.epochs += o.epochs
	s.rounds += o.rounds
	s.serverRestarts += o.serverRestarts
	s.deviceRestarts += o.deviceRestarts
	s.writes += o.writes
	s.syncs += o.syncs
	s.failedSyncs += o.failedSyncs
	s.requests += o.requests
	s.editsInFlight += o.editsInFlight
	s.purges += o.purges
	s.purged += o.purged
	s.resets += o.resets
	s.cursorMoves += o.cursorMoves
	s.dropped += o.dropped
	s.lostAnswers += o.lostAnswers
	s.duplicated += o.duplicated
	s.late += o.late
	s.errors5xx += o.errors5xx
	s.delayed += o.delayed
	s.deleteWins += o.deleteWins
	s.editWins += o.editWins
	s.patches += o.patches
	s.merged += o.merged
	s.stale += o.stale
	s.checkedNotes += o.checkedNotes
	s.exactFields += o.exactFields
	s.weakFields += o.weakFields
	s.deletedNotes += o.deletedNotes
}

// fieldStats describes what a run under a field-merging policy did.
func (s *simStats) fieldStats(pol simPolicy) string {
	if !pol.merges() {
		return ""
	}
	return fmt.Sprintf("; %d epochs with deletes winning, %d with edits winning; %d note patches, %d pushed changes merged, %d stale; checked %d notes (%d deleted), %d fields against their latest edit, %d against any edit",
		s.deleteWins, s.editWins, s.patches, s.merged, s.stale, s.checkedNotes, s.deletedNotes, s.exactFields, s.weakFields)
}

func (s *simStats) faults() string {
	return fmt.Sprintf("%d dropped requests, %d answers lost after apply, %d duplicated, %d delivered late, %d 503s, %d delayed",
		s.dropped, s.lostAnswers, s.duplicated, s.late, s.errors5xx, s.delayed)
}

// simServer is the example server on one database that survives restarts.
type simServer struct {
	t       *testing.T
	kind    synctest.Store
	path    string // SQLite file
	dsn     string // PostgreSQL schema
	dataDir string
	srv     *server.Server
	hs      *httptest.Server
	mu      sync.Mutex // guards host
	host    string
	// policy is data.Note's, with deletes' rule (set per epoch).
	policy  simPolicy
	deletes policies.DeleteRule
}

func newSimServer(t *testing.T, kind synctest.Store, policy simPolicy) *simServer {
	t.Helper()
	s := &simServer{t: t, kind: kind, dataDir: t.TempDir(), policy: policy}
	if kind == synctest.SQLite {
		s.path = filepath.Join(s.dataDir, "ferry.db")
	} else {
		s.dsn = synctest.PostgresURL(t)
	}
	s.start()
	return s
}

func (s *simServer) start() {
	s.t.Helper()
	ctx := context.Background()
	var (
		db  *bun.DB
		err error
	)
	if s.kind == synctest.SQLite {
		db, err = models.OpenSQLite(ctx, s.path)
	} else {
		db, err = models.OpenPostgres(ctx, s.dsn)
	}
	if err != nil {
		s.t.Fatalf("open the server's store: %v", err)
	}
	var pols map[string]framework.ConflictPolicy
	if p := s.policy.conflictPolicy(s.deletes); p != nil {
		pols = map[string]framework.ConflictPolicy{"data.Note": p}
	}
	srv, err := server.New(ctx, server.Config{
		DataDir:   s.dataDir,
		JWTSecret: testSecret,
		Auth:      servertest.Auth(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Policies:  pols,
	}, db)
	if err != nil {
		db.Close()
		s.t.Fatalf("build the server: %v", err)
	}
	s.srv, s.hs = srv, httptest.NewServer(srv.Handler())
	u, _ := url.Parse(s.hs.URL)
	s.mu.Lock()
	s.host = u.Host
	s.mu.Unlock()
}

func (s *simServer) stop() {
	if s.hs != nil {
		s.hs.Close()
		if err := s.srv.Close(); err != nil {
			s.t.Errorf("close the server's store: %v", err)
		}
		s.hs, s.srv = nil, nil
	}
}

func (s *simServer) restart() {
	s.stop()
	s.start()
}

func (s *simServer) currentHost() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host
}

func (s *simServer) url() string { return "http://" + s.currentHost() }

// simBaseURL is what the devices are configured with; the transport sends
// to wherever the server listens now.
const simBaseURL = "http://ferry.sim"

// simUser is one account and what its devices wrote.
type simUser struct {
	idx     int
	acc     account
	tag     string          // unique per epoch, part of every uid the user's devices make
	devices []*simDevice    // the user's devices
	uids    map[string]bool // model/uid of every record the user's devices created
}

// simDevice is one device of a user.
type simDevice struct {
	name   string
	user   *simUser
	c      *client.Client
	store  client.Store
	path   string // SQLite file, "" for a memory store
	offset time.Duration
	tr     *simTransport
	next   int // counter for uids
	// seen is the modify_at of each record as the device last held it.
	seen map[string]time.Time
}

// writeLog holds the latest local write of every record, keyed by
// owner/model/uid.
type writeLog map[string]*write

// note records a local write as the latest of its record when it is.
func (l writeLog) note(t *testing.T, rec *client.Record) {
	t.Helper()
	k := rec.Owner + "/" + rec.Model + "/" + rec.UID
	w := &write{at: rec.ModifyAt, deleted: rec.IsDeleted, data: simData(t, rec.Model, rec.Data)}
	old := l[k]
	switch {
	case old == nil || w.at.After(old.at):
		l[k] = w
	case w.at.Equal(old.at) && (w.deleted != old.deleted || w.data != old.data):
		// Either may win; deleted then says whether one of them deletes.
		old.tie = true
		old.deleted = old.deleted || w.deleted
	}
}

// check fails for every record of owner whose state on the server (want,
// keyed by model/uid) is not its latest local write: a local write, or a
// change the server acknowledged, was lost. A record missing from want
// may be a tombstone purged since.
func (l writeLog) check(t *testing.T, owner string, want map[string]state, purged map[string]bool) {
	t.Helper()
	for k, w := range l {
		o, mk, _ := strings.Cut(k, "/")
		if o != owner {
			continue
		}
		s, ok := want[mk]
		switch {
		case !ok && w.deleted && purged[k]:
			// The latest write was a delete, purged since.
		case !ok:
			t.Errorf("%s: written (latest at %s) but not on the server", mk, w.at.Format(time.RFC3339Nano))
		case !s.ModifyAt.Equal(w.at):
			t.Errorf("%s: the server has modify_at %s, the latest write was at %s", mk, s.ModifyAt.Format(time.RFC3339Nano), w.at.Format(time.RFC3339Nano))
		case !w.tie && (s.IsDeleted != w.deleted || !w.deleted && simData(t, mk[:strings.Index(mk, "/")], mustJSON(t, s.Data)) != w.data):
			t.Errorf("%s: the server has deleted=%v %v, the latest write was deleted=%v %s", mk, s.IsDeleted, s.Data, w.deleted, w.data)
		}
	}
}

// write is the latest local write of one record.
type write struct {
	at      time.Time
	deleted bool
	data    string // normalized JSON
	tie     bool   // another write had the same modify_at with other content (then deleted: one of them deleted)
}

// epoch is one simulated world: users, devices, the fault plan.
type epoch struct {
	t      *testing.T
	srv    *simServer
	rng    *rand.Rand
	seed   uint64
	n      int
	users  []*simUser
	devs   []*simDevice
	base   time.Time     // the virtual clock's origin
	now    time.Duration // the virtual clock: time since base
	faulty bool
	stats  simStats
	http   *http.Transport

	writes writeLog
	acked  map[string]time.Time // highest applied modify_at the server answered
	late   []*http.Request      // push copies waiting to be delivered late
	lateBy []*simUser           // whose push each late copy is
	open   []*client.SQLiteStore
	purged map[string]bool // owner/model/uid of purged tombstones
	purges bool            // whether this epoch purges tombstones

	// policy is data.Note's, deletes its delete rule in this epoch;
	// under a field-merging policy fields records the notes' edits.
	policy  simPolicy
	deletes policies.DeleteRule
	fields  fieldLog
}

// runEpoch runs one epoch: rounds of offline work and faulty syncs with a
// server restart after each, then a fault-free round and the checks. With
// rounds 0 and budget 0 the round count is drawn from the seed; with a
// budget, rounds run until it is spent (at least two).
func runEpoch(t *testing.T, srv *simServer, seed uint64, n, rounds int, budget time.Duration) simStats {
	t.Helper()
	e := &epoch{
		t: t, srv: srv, seed: seed, n: n,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		base:   time.Now().UTC().Add(-time.Hour).Truncate(time.Second),
		http:   &http.Transport{MaxIdleConnsPerHost: 4},
		writes: writeLog{},
		acked:  map[string]time.Time{},
		purged: map[string]bool{},
		policy: srv.policy,
		fields: fieldLog{},
	}
	defer func() {
		e.http.CloseIdleConnections()
		for _, s := range e.open {
			s.Close()
		}
	}()
	played := 0
	defer func() {
		if t.Failed() {
			t.Logf("FAILED in epoch %d (seed %d, %s, %s), %d rounds played; replay it with: FERRY_SIM_POLICY=%s FERRY_SIM_SEED=%d FERRY_SIM_EPOCH=%d FERRY_SIM_ROUNDS=%d go test ./framework/client -run 'TestSimConvergence/%s/%s$' -v",
				n, seed, e.policy, deletesName(e.deletes), played, e.policy, seed, n, max(played, 1), e.policy, srv.kind)
		}
	}()
	e.stats.epochs = 1
	e.purges = e.rng.IntN(2) == 0
	if e.rng.IntN(2) == 0 {
		e.deletes = policies.EditWins
	}
	if e.policy.merges() {
		if e.deletes == policies.EditWins {
			e.stats.editWins++
		} else {
			e.stats.deleteWins++
		}
		if srv.deletes != e.deletes {
			srv.deletes = e.deletes
			srv.restart()
		}
	}
	e.setUp()
	drawn := 2 + e.rng.IntN(7) // drawn always, so a replay takes the same path
	playRounds(t, rounds, drawn, budget, e.round, &played)
	if t.Failed() {
		return e.stats
	}
	e.finish()
	// Leave no tombstones to the next epoch on this server: its purges
	// count only its own users' tombstones.
	time.Sleep(3 * time.Millisecond)
	if _, err := srv.srv.App.PurgeTombstones(context.Background(), time.Millisecond); err != nil {
		t.Errorf("purge at the end of the epoch: %v", err)
	}
	return e.stats
}

// playRounds plays an epoch's rounds: rounds of them; with rounds 0, as
// many as budget allows (at least two); with both 0, drawn of them. It
// stops when the test failed, and counts the rounds played in played.
func playRounds(t *testing.T, rounds, drawn int, budget time.Duration, round func(), played *int) {
	t.Helper()
	if rounds == 0 && budget == 0 {
		rounds = drawn
	}
	start := time.Now()
	for r := 0; ; r++ {
		if rounds > 0 && r >= rounds || rounds == 0 && r >= 2 && time.Since(start) >= budget || t.Failed() {
			return
		}
		round()
		*played++
	}
}

// setUp signs up 2 or 3 users with 2 to 3 devices each, 5 devices at least.
func (e *epoch) setUp() {
	nUsers := 2 + e.rng.IntN(2)
	for i := range nUsers {
		tag := fmt.Sprintf("e%du%d", e.n, i)
		var acc account
		if i == 0 {
			// One user signs up for real (its self-owned data.User record
			// then syncs too); the others get a token straight from the
			// server's key, which spares bcrypt's cost.
			a, err := register(e.srv.url(), fmt.Sprintf("sim-%d-%s", e.seed, tag))
			if err != nil {
				e.t.Fatal(err)
			}
			acc = a
		} else {
			acc.ID = fmt.Sprintf("user-%d-%s", e.seed, tag)
			tok, err := e.srv.srv.JWT.Issue(acc.ID)
			if err != nil {
				e.t.Fatal(err)
			}
			acc.Token = tok
		}
		u := &simUser{idx: i, acc: acc, tag: tag, uids: map[string]bool{"data.User/" + acc.ID: true}}
		e.users = append(e.users, u)
	}
	for len(e.devs) < 5 || len(e.devs) < 2*nUsers {
		for _, u := range e.users {
			if len(u.devices) < 2 || e.rng.IntN(3) == 0 {
				e.addDevice(u)
			}
		}
	}
}

func (e *epoch) addDevice(u *simUser) {
	d := &simDevice{
		name: fmt.Sprintf("%s-d%d", u.tag, len(u.devices)),
		user: u,
		// Device clocks disagree by up to a few seconds.
		offset: time.Duration(e.rng.Int64N(int64(4*time.Second))) - 2*time.Second,
	}
	d.tr = &simTransport{e: e, user: u, dev: d}
	if e.rng.IntN(2) == 0 {
		d.path = filepath.Join(e.t.TempDir(), d.name+".db")
	}
	u.devices = append(u.devices, d)
	e.devs = append(e.devs, d)
	e.openDevice(d)
}

// openDevice (re)opens a device's store and builds its client, as an app
// does when it starts.
func (e *epoch) openDevice(d *simDevice) {
	if d.path == "" {
		if d.store == nil {
			d.store = client.NewMemoryStore()
		}
	} else {
		s, err := client.OpenSQLiteStore(context.Background(), d.path)
		if err != nil {
			e.t.Fatal(err)
		}
		d.store = s
		e.open = append(e.open, s)
	}
	pullLimit := 1 + e.rng.IntN(60)
	c, err := client.New(client.Config{
		BaseURL:    simBaseURL,
		HTTPClient: &http.Client{Transport: d.tr, Timeout: time.Minute},
		Token:      d.user.acc.Token,
		Owner:      d.user.acc.ID,
		Store:      d.store,
		DeviceID:   d.name,
		MaxBatch:   1 + e.rng.IntN(40),
		PullLimit:  pullLimit,
		Retry:      client.Retry{MaxAttempts: 1 + e.rng.IntN(4), BaseDelay: 100 * time.Microsecond, MaxDelay: 2 * time.Millisecond},
		Clock:      func() time.Time { return e.base.Add(e.now + d.offset) },
		OnRejected: func(_ context.Context, r client.Rejection) {
			e.t.Errorf("%s: %s/%s %s: %+v", d.name, r.Change.Model, r.Change.UID, r.Status, r.Errors)
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	d.c = c
}

// restartDevice closes a file-backed device's store and opens it again.
func (e *epoch) restartDevice(d *simDevice) {
	if d.path == "" {
		return
	}
	if err := d.store.(*client.SQLiteStore).Close(); err != nil {
		e.t.Errorf("%s: close store: %v", d.name, err)
	}
	e.openDevice(d)
	e.stats.deviceRestarts++
}

// round is a stretch of random steps, then the late copies are delivered
// and the server restarts.
func (e *epoch) round() {
	e.faulty = true
	steps := 10 + e.rng.IntN(30)
	for range steps {
		if e.t.Failed() {
			return
		}
		d := e.devs[e.rng.IntN(len(e.devs))]
		switch x := e.rng.IntN(100); {
		case x < 50:
			e.work(d, 1+e.rng.IntN(12))
		case x < 95:
			e.sync(d, false)
		default:
			e.restartDevice(d)
		}
		if len(e.late) > 0 && e.rng.IntN(4) == 0 {
			e.deliverLate(e.rng.IntN(len(e.late)))
		}
	}
	for len(e.late) > 0 {
		e.deliverLate(e.rng.IntN(len(e.late)))
	}
	if e.rng.IntN(3) == 0 && e.purges {
		e.purge()
	}
	e.srv.restart()
	e.http.CloseIdleConnections()
	e.stats.rounds++
	e.stats.serverRestarts++
}

// purge makes the server purge every tombstone it has, so devices whose
// cursor is older get reset_required and pull from the start. Two rules
// keep this within the retention window's contract (a change older than a
// delete that reaches the server after the purge would bring the record
// back): the purge is skipped while a queued change is older than the
// tombstone of its record (under a field merge: while any change of a
// tombstone is queued, since a change later than the delete may lose to
// it too), and the virtual clock jumps 10s ahead, past every device's
// clock skew, so later edits are newer than every purged delete. Under a
// field merge a purged note starts a new generation in the field log.
func (e *epoch) purge() {
	ctx := context.Background()
	tombs := map[string]time.Time{}
	for _, u := range e.users {
		for mk, s := range simFullPull(e.t, e.srv.url(), u.acc) {
			if s.IsDeleted {
				tombs[u.acc.ID+"/"+mk] = s.ModifyAt
			}
		}
	}
	for _, d := range e.devs {
		pending, err := d.store.Pending(ctx, client.PendingParams{})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, p := range pending {
			at, ok := tombs[p.Owner+"/"+p.Model+"/"+p.UID]
			// Under a field merge any queued change of a tombstone may lose
			// to it (a delete that wins, or one later than the change's
			// fields), so none may wait.
			if ok && (p.ModifyAt.Before(at) || e.policy.merges()) {
				return
			}
		}
	}
	e.now += 10 * time.Second
	// Tombstones are purged by the server's time of their write: wait
	// until every one is older than the cut.
	time.Sleep(3 * time.Millisecond)
	n, err := e.srv.srv.App.PurgeTombstones(ctx, time.Millisecond)
	if err != nil {
		e.t.Fatalf("purge: %v", err)
	}
	if n != len(tombs) {
		e.t.Errorf("the purge removed %d tombstones; the server had %d", n, len(tombs))
	}
	for k := range tombs {
		e.purged[k] = true
		if e.policy.merges() && strings.Contains(k, "/data.Note/") {
			e.fields.purged(k)
		}
		e.trace(k, "purged %s", k)
	}
	e.stats.purges++
	e.stats.purged += n
}

// tick advances the virtual clock.
func (e *epoch) tick() { e.now += time.Duration(1+e.rng.IntN(3000)) * time.Microsecond }

// work makes n local writes on d: creates, updates, deletes and revivals
// of notes, and settings.
func (e *epoch) work(d *simDevice, n int) {
	ctx := context.Background()
	u := d.user
	for range n {
		e.tick()
		live, dead := notesOf(e.t, d.store, u.acc.ID)
		x := e.rng.IntN(100)
		if len(live) == 0 && x >= 35 && x < 85 {
			x = 0 // nothing to edit or delete: create
		}
		if len(dead) == 0 && x >= 85 && x < 90 {
			x = 90
		}
		switch {
		case x < 35:
			d.next++
			uid := fmt.Sprintf("n-%s-%s-%d", u.tag, d.name[len(u.tag)+1:], d.next)
			u.uids["data.Note/"+uid] = true
			if e.policy.merges() {
				e.put(d, "data.Note", uid, e.fullNote()) // a new note has every field
			} else {
				e.put(d, "data.Note", uid, e.noteData())
			}
		case x < 70:
			e.editNote(d, live[e.rng.IntN(len(live))])
		case x < 85:
			r := live[e.rng.IntN(len(live))]
			if e.policy.merges() && (r.Version == 0 || e.purged[u.acc.ID+"/"+r.Model+"/"+r.UID]) {
				// A delete the server may not have the record of (a blind
				// delete): see fieldRecord.blind.
				e.fields.rec(r.Owner + "/" + r.Model + "/" + r.UID).blind = true
			}
			if err := d.c.Delete(ctx, r.Model, r.UID); err != nil {
				e.t.Fatalf("%s: delete %s: %v", d.name, r.UID, err)
			}
			got, err := d.c.Get(ctx, r.Model, r.UID)
			if err != nil {
				e.t.Fatal(err)
			}
			e.wrote(d, r, got)
		case x < 90:
			e.editNote(d, dead[e.rng.IntN(len(dead))])
		default:
			k := e.rng.IntN(4)
			uid := fmt.Sprintf("set-%s-%d", u.tag, k)
			u.uids["data.Setting/"+uid] = true
			e.put(d, "data.Setting", uid, map[string]any{"key": fmt.Sprint("k", k), "value": e.rng.IntN(1000)})
		}
	}
}

// notesOf returns the notes of owner in st, those alive and the
// tombstones.
func notesOf(t *testing.T, st client.Store, owner string) (live, dead []*client.Record) {
	t.Helper()
	recs, err := st.List(context.Background(), client.ListParams{Owner: owner, Model: "data.Note", IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.IsDeleted {
			dead = append(dead, r)
		} else {
			live = append(live, r)
		}
	}
	return live, dead
}

var simWords = []string{"milk", "bread", "call", "mom", "fix", "bike", "plan", "trip", "read", "book", "pay", "rent"}

func (e *epoch) noteData() map[string]any {
	n := map[string]any{"title": simWords[e.rng.IntN(len(simWords))] + " " + strconv.Itoa(e.rng.IntN(10000))}
	switch e.rng.IntN(4) {
	case 0:
		n["tags"] = []string{simWords[e.rng.IntN(len(simWords))]}
	case 1:
		n["tags"] = nil
	case 2:
		n["pinned"] = e.rng.IntN(2) == 0
	}
	if e.rng.IntN(3) == 0 {
		n["body"] = strings.Repeat(simWords[e.rng.IntN(len(simWords))]+" ", e.rng.IntN(50))
	}
	return n
}

// fullNote is a note with every field set.
func (e *epoch) fullNote() map[string]any {
	n := map[string]any{}
	for _, f := range noteFields {
		n[f] = e.noteField(f)
	}
	return n
}

// noteField is a random value of a note's field.
func (e *epoch) noteField(f string) any {
	word := func() string { return simWords[e.rng.IntN(len(simWords))] }
	switch f {
	case "title":
		return word() + " " + strconv.Itoa(e.rng.IntN(10000))
	case "body":
		return strings.Repeat(word()+" ", e.rng.IntN(50))
	case "tags":
		switch e.rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{word()}
		}
		return []string{word(), word()}
	}
	return e.rng.IntN(2) == 0
}

// editNote edits (or brings back) a note of d: under LWW by a Put of new
// data; under a field merge mostly by a Patch of some of its fields, else
// by a Put of new data, which may leave fields out (removing them). The
// edit always changes a field.
func (e *epoch) editNote(d *simDevice, r *client.Record) {
	if !e.policy.merges() {
		e.put(d, r.Model, r.UID, e.noteData())
		return
	}
	cur := topFields(e.t, r.Data)
	changes := func(data map[string]any) bool {
		for f, v := range data {
			if _, had := cur[f]; !had || fieldValue(cur, f) != string(mustJSON(e.t, v)) {
				return true
			}
		}
		return false
	}
	if e.rng.IntN(4) == 0 {
		data := e.noteData()
		for !changes(data) {
			data = e.noteData()
		}
		e.put(d, r.Model, r.UID, data)
		return
	}
	patch := map[string]any{}
	if fieldValue(cur, "title") == `""` {
		// A tombstone the server made from a delete alone has zero fields;
		// an app's patch still leaves a valid note.
		patch["title"] = e.noteField("title")
	}
	for len(patch) == 0 || !changes(patch) {
		for _, f := range noteFields {
			if e.rng.IntN(3) == 0 {
				patch[f] = e.noteField(f)
			}
		}
	}
	rec, err := d.c.Patch(context.Background(), r.Model, r.UID, patch)
	if err != nil {
		e.t.Fatalf("%s: patch %s/%s: %v", d.name, r.Model, r.UID, err)
	}
	e.stats.patches++
	e.wrote(d, r, rec)
}

func (e *epoch) put(d *simDevice, model, uid string, data any) {
	ctx := context.Background()
	prev, err := d.c.Get(ctx, model, uid)
	if errors.Is(err, client.ErrNotFound) {
		prev = nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	rec, err := d.c.Put(ctx, model, uid, data)
	if err != nil {
		e.t.Fatalf("%s: put %s/%s: %v", d.name, model, uid, err)
	}
	e.wrote(d, prev, rec)
}

// wrote records a local write (of prev, nil for a new record): under a
// field merge a note's in the field log, else as the latest of its record
// when it is.
func (e *epoch) wrote(d *simDevice, prev, rec *client.Record) {
	e.trace(rec.UID, "%s wrote %s at %s deleted=%v %s %v", d.name, rec.UID, rec.ModifyAt.Format(time.RFC3339Nano), rec.IsDeleted, rec.Data, rec.FieldsModifyAt)
	e.stats.writes++
	if e.policy.merges() && rec.Model == "data.Note" {
		e.fields.wrote(e.t, d.name, prev, rec)
		return
	}
	e.writes.note(e.t, rec)
}

// simTrace is FERRY_SIM_TRACE: writes, push answers and purges of records
// whose key contains it are logged, to follow one record through a replay.
var simTrace = os.Getenv("FERRY_SIM_TRACE")

func (e *epoch) trace(key, format string, args ...any) {
	if simTrace != "" && strings.Contains(key, simTrace) {
		e.t.Logf("trace: "+format, args...)
	}
}

// sync syncs d; with strict, any error fails the test, otherwise only
// errors caused by injected faults are allowed. It reports whether the
// sync pushed or stored anything.
func (e *epoch) sync(d *simDevice, strict bool) bool {
	e.stats.syncs++
	res, err := d.c.Sync(context.Background())
	if err != nil {
		var pe *client.Error
		injected := errors.Is(err, errInjected) || errors.As(err, &pe) && strings.Contains(pe.Message, "injected")
		if strict || !injected {
			e.t.Errorf("%s: sync: %v", d.name, err)
		}
		e.stats.failedSyncs++
	}
	if res.Reset {
		e.stats.resets++
	}
	if res.Rejected+res.Forbidden > 0 {
		e.t.Errorf("%s: sync refused changes: %+v", d.name, res)
	}
	e.checkDevice(d)
	return res.Pushed > 0 || res.Stored > 0 || err != nil
}

// checkDevice fails when d holds a record that is not its user's.
func (e *epoch) checkDevice(d *simDevice) {
	ctx := context.Background()
	recs, err := d.store.List(ctx, client.ListParams{IncludeDeleted: true})
	if err != nil {
		e.t.Fatal(err)
	}
	pending, err := d.store.Pending(ctx, client.PendingParams{})
	if err != nil {
		e.t.Fatal(err)
	}
	queued := make(map[client.Key]client.Change, len(pending))
	for _, p := range pending {
		queued[p.Key] = p
	}
	if d.seen == nil {
		d.seen = map[string]time.Time{}
	}
	for _, r := range recs {
		k := r.Model + "/" + r.UID
		if r.Owner != d.user.acc.ID || !d.user.uids[k] {
			e.t.Errorf("%s (user %s) holds %s of owner %s, which its user never made", d.name, d.user.tag, k, r.Owner)
		}
		// Until the server acknowledged it, the device shows its own
		// latest edit: a record is unsynced exactly when it is queued,
		// and then it is the queued change.
		q, ok := queued[r.Key()]
		switch {
		case ok == r.Synced:
			e.t.Errorf("%s: %s is synced=%v but queued=%v", d.name, k, r.Synced, ok)
		case ok && (!q.ModifyAt.Equal(r.ModifyAt) || q.IsDeleted != r.IsDeleted || !bytes.Equal(q.Data, r.Data)):
			e.t.Errorf("%s: %s shows %v deleted=%v %s, but its queued change is %v deleted=%v %s",
				d.name, k, r.ModifyAt, r.IsDeleted, r.Data, q.ModifyAt, q.IsDeleted, q.Data)
		}
		// A record never goes back in time on a device, but to a tombstone
		// when deletes win against later edits.
		deleteWon := e.policy.merges() && e.deletes == policies.DeleteWins && r.IsDeleted && r.Synced
		if r.ModifyAt.Before(d.seen[k]) && !deleteWon {
			e.t.Errorf("%s: %s went back from modify_at %v to %v", d.name, k, d.seen[k], r.ModifyAt)
		}
		d.seen[k] = r.ModifyAt
	}
	if len(queued) > len(recs) {
		e.t.Errorf("%s: %d queued changes for %d records", d.name, len(queued), len(recs))
	}
}

// deliverLate sends the i-th late push copy to the server now.
func (e *epoch) deliverLate(i int) {
	req, u := e.late[i], e.lateBy[i]
	e.late = slices.Delete(e.late, i, i+1)
	e.lateBy = slices.Delete(e.lateBy, i, i+1)
	resp, body, err := e.send(req)
	if err != nil {
		e.t.Errorf("late delivery: %v", err)
		return
	}
	e.inspect(u, req, resp, body)
}

// send sends a copy of req to the server as it is now.
func (e *epoch) send(req *http.Request) (*http.Response, []byte, error) {
	out := req.Clone(context.Background())
	out.URL.Host = e.srv.currentHost()
	out.Host = out.URL.Host
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, nil, err
		}
		out.Body = b
	}
	resp, err := e.http.RoundTrip(out)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// inspect checks an answer for another user's records and notes what
// the server acknowledged.
func (e *epoch) inspect(u *simUser, req *http.Request, resp *http.Response, body []byte) {
	body = plainAnswer(e.t, resp, body) // the devices ask for compressed answers
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 500 {
			e.t.Errorf("%s %s: server answered %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		return
	}
	var recs []struct {
		Model    string    `json:"model"`
		UID      string    `json:"uid"`
		Owner    string    `json:"owner"`
		ModifyAt time.Time `json:"modify_at"`
	}
	switch {
	case strings.HasSuffix(req.URL.Path, "/push"):
		var in struct {
			Cursor  string `json:"cursor"`
			Changes []struct {
				Model          string               `json:"model"`
				UID            string               `json:"uid"`
				ModifyAt       time.Time            `json:"modify_at"`
				IsDeleted      bool                 `json:"is_deleted"`
				Data           json.RawMessage      `json:"data"`
				FieldsModifyAt map[string]time.Time `json:"fields_modify_at"`
			} `json:"changes"`
		}
		if req.GetBody != nil {
			if b, err := req.GetBody(); err == nil {
				raw, _ := io.ReadAll(b)
				raw, _ = plainRequest(req, raw)
				_ = json.Unmarshal(raw, &in)
			}
		}
		var out struct {
			Cursor  string `json:"cursor"`
			Results []struct {
				Status     string `json:"status"`
				Resolution string `json:"resolution"`
				Record     *struct {
					Model    string    `json:"model"`
					UID      string    `json:"uid"`
					Owner    string    `json:"owner"`
					ModifyAt time.Time `json:"modify_at"`
				} `json:"record"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			e.t.Errorf("push answer: %v", err)
			return
		}
		if in.Cursor != "" && out.Cursor != in.Cursor {
			e.stats.cursorMoves++
		}
		for i, r := range out.Results {
			if e.policy.merges() && i < len(in.Changes) && in.Changes[i].Model == "data.Note" {
				ch := in.Changes[i]
				switch {
				case r.Status == client.StatusStale:
					e.stats.stale++
				case r.Resolution == "merged":
					e.stats.merged++
				}
				k := u.acc.ID + "/" + ch.Model + "/" + ch.UID
				switch {
				case ch.IsDeleted && (r.Status == client.StatusApplied || r.Status == client.StatusStale):
					e.fields.received(k, ch.ModifyAt)
				case !ch.IsDeleted && r.Status == client.StatusApplied:
					e.fields.arrived(e.t, k, ch.ModifyAt, ch.FieldsModifyAt, ch.Data)
				}
			}
			if r.Record == nil {
				continue
			}
			e.trace(r.Record.UID, "push of user %s: %s %s, the server has it at %s", u.tag, r.Record.UID, r.Status, r.Record.ModifyAt.Format(time.RFC3339Nano))
			recs = append(recs, *r.Record)
			if r.Status == client.StatusApplied {
				k := r.Record.Owner + "/" + r.Record.Model + "/" + r.Record.UID
				if r.Record.ModifyAt.After(e.acked[k]) {
					e.acked[k] = r.Record.ModifyAt
				}
			}
		}
	case strings.HasSuffix(req.URL.Path, "/pull"):
		var out struct {
			Changes []struct {
				Model    string    `json:"model"`
				UID      string    `json:"uid"`
				Owner    string    `json:"owner"`
				ModifyAt time.Time `json:"modify_at"`
			} `json:"changes"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			e.t.Errorf("pull answer: %v", err)
			return
		}
		for _, c := range out.Changes {
			recs = append(recs, c)
		}
	}
	for _, r := range recs {
		if r.Owner != u.acc.ID || !u.uids[r.Model+"/"+r.UID] {
			e.t.Errorf("an answer to user %s carried %s/%s of owner %s", u.tag, r.Model, r.UID, r.Owner)
		}
	}
}

// finish runs the fault-free round and checks convergence.
func (e *epoch) finish() {
	e.faulty = false
	// Every device syncs until a whole pass moves nothing.
	for pass := 0; ; pass++ {
		if pass > 10 {
			e.t.Fatalf("no convergence after %d fault-free passes", pass)
		}
		moved := false
		order := e.rng.Perm(len(e.devs))
		for _, i := range order {
			if e.sync(e.devs[i], true) {
				moved = true
			}
		}
		if e.t.Failed() {
			return
		}
		if !moved {
			break
		}
	}
	ctx := context.Background()
	for _, u := range e.users {
		want := simFullPull(e.t, e.srv.url(), u.acc)
		for _, d := range u.devices {
			if n, err := d.c.PendingCount(ctx); err != nil || n != 0 {
				e.t.Errorf("%s: %d changes still queued (%v)", d.name, n, err)
			}
			got, unsynced := storeState(e.t, d.store)
			for _, k := range unsynced {
				e.t.Errorf("%s: %s is not synced", d.name, k)
			}
			for k, g := range got {
				if _, ok := want[k]; !ok && g.IsDeleted && e.purged[u.acc.ID+"/"+k] {
					delete(got, k) // a tombstone the device saw before the server purged it
				}
			}
			if !reflect.DeepEqual(got, want) {
				e.t.Errorf("%s differs from the server: %s", d.name, simDiff(got, want))
			}
		}
		// Every record's final state is its latest local write; no
		// acknowledged write was lost.
		e.writes.check(e.t, u.acc.ID, want, e.purged)
		if e.policy.merges() {
			n := e.fields.check(e.t, u.acc.ID, want, e.purged, e.policy, e.deletes)
			e.stats.checkedNotes += n.notes
			e.stats.exactFields += n.exact
			e.stats.weakFields += n.weak
			e.stats.deletedNotes += n.deleted
		}
		for k, at := range e.acked {
			owner, mk, _ := strings.Cut(k, "/")
			if owner != u.acc.ID {
				continue
			}
			if s, ok := want[mk]; !ok && !e.purged[k] || ok && s.ModifyAt.Before(at) {
				e.t.Errorf("%s: acknowledged at modify_at %s, the server now has %+v", mk, at.Format(time.RFC3339Nano), s)
			}
		}
	}
}

// storeState returns what a device's store holds, keyed by model/uid,
// tombstones included, and the keys of its unsynced records.
func storeState(t *testing.T, st client.Store) (map[string]state, []string) {
	t.Helper()
	recs, err := st.List(context.Background(), client.ListParams{IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]state, len(recs))
	var unsynced []string
	for _, r := range recs {
		k := r.Model + "/" + r.UID
		if !r.Synced {
			unsynced = append(unsynced, k)
		}
		out[k] = state{ModifyAt: r.ModifyAt.UTC(), IsDeleted: r.IsDeleted, Version: r.Version, Data: normJSON(t, r.Data),
			Fields: formatFieldTimes(r.FieldsModifyAt)}
	}
	return out, unsynced
}

// simFullPull pulls everything acc can read, from an empty cursor.
func simFullPull(t *testing.T, base string, acc account) map[string]state {
	t.Helper()
	out := map[string]state{}
	for k, r := range servertest.PullAll(t, base, servertest.User{ID: acc.ID, Token: acc.Token}) {
		out[k] = state{ModifyAt: r.ModifyAt.UTC(), IsDeleted: r.IsDeleted, Version: r.Version, Data: normJSON(t, r.Data),
			Fields: formatFieldTimes(wireFieldTimes(r.FieldsModifyAt))}
	}
	return out
}

// simDiff describes how two states differ, briefly.
func simDiff(got, want map[string]state) string {
	var lines []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("missing %s %+v", k, w))
		case !reflect.DeepEqual(g, w):
			lines = append(lines, fmt.Sprintf("%s: device %+v, server %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("extra %s %+v", k, g))
		}
	}
	slices.Sort(lines)
	if len(lines) > 10 {
		lines = append(lines[:10], fmt.Sprintf("and %d more", len(lines)-10))
	}
	return fmt.Sprintf("%d records vs %d on the server: %s", len(got), len(want), strings.Join(lines, "; "))
}

// simData normalizes a record's data for comparison: a note as the
// server stores it (absent fields are zero values), other models as
// canonical JSON.
func simData(t *testing.T, model string, raw json.RawMessage) string {
	t.Helper()
	if model == "data.Note" {
		var n struct {
			Title  string   `json:"title"`
			Body   string   `json:"body"`
			Tags   []string `json:"tags"`
			Pinned bool     `json:"pinned"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			t.Fatalf("bad note %s: %v", raw, err)
		}
		return string(mustJSON(t, n))
	}
	return string(mustJSON(t, normJSON(t, raw)))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readBody reads and closes a request's body (nil when it has none), so
// that the request can be sent several times.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// simTransport is a device's connection to the server: it rewrites the
// host to the server's current address and, while the epoch is faulty,
// injects faults drawn from the epoch's generator.
type simTransport struct {
	e    *epoch
	user *simUser
	dev  *simDevice
}

func (tr *simTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := tr.e
	raw, err := readBody(req)
	if err != nil {
		return nil, err
	}
	cp := req.Clone(req.Context())
	if raw != nil {
		cp.Body = io.NopCloser(bytes.NewReader(raw))
		cp.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	}
	e.stats.requests++
	fault := 100
	if e.faulty {
		// While the sync is in flight, the app keeps editing (during a
		// push, between pull pages), and a late copy of an older push may
		// land in between.
		if e.rng.IntN(10) == 0 {
			e.stats.editsInFlight++
			e.work(tr.dev, 1+e.rng.IntN(3))
		}
		if len(e.late) > 0 && e.rng.IntN(10) == 0 {
			e.deliverLate(e.rng.IntN(len(e.late)))
		}
		fault = e.rng.IntN(100)
	}
	isPush := strings.HasSuffix(req.URL.Path, "/push")
	switch {
	case fault < 6: // lost on the way: the server never sees it
		e.stats.dropped++
		return nil, fmt.Errorf("request dropped: %w", errInjected)
	case fault < 9: // the server is overloaded
		e.stats.errors5xx++
		return errorResponse(req, http.StatusServiceUnavailable, "unavailable"), nil
	case fault < 12 && isPush: // arrives late: the client gives up and retries, the copy lands later
		e.stats.late++
		e.late = append(e.late, cp)
		e.lateBy = append(e.lateBy, tr.user)
		return nil, fmt.Errorf("request timed out: %w", errInjected)
	case fault < 15: // delayed a little
		e.stats.delayed++
		time.Sleep(time.Duration(e.rng.IntN(2000)) * time.Microsecond)
	}
	resp, body, err := e.send(cp)
	if err != nil {
		return nil, err
	}
	e.inspect(tr.user, cp, resp, body)
	switch {
	case fault >= 15 && fault < 22: // the answer is lost after the server applied the request
		e.stats.lostAnswers++
		return nil, fmt.Errorf("connection reset after the request was sent: %w", errInjected)
	case fault >= 22 && fault < 27: // sent twice; the client sees one of the answers
		e.stats.duplicated++
		resp2, body2, err := e.send(cp)
		if err != nil {
			return nil, err
		}
		e.inspect(tr.user, cp, resp2, body2)
		if e.rng.IntN(2) == 0 {
			resp, body = resp2, body2
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.Request = req
	return resp, nil
}
