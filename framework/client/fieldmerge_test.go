package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// fieldServer is a framework App whose note models merge field by field,
// over real HTTP; a bearer token is the user id.
func fieldServer(t *testing.T, db *bun.DB) string {
	t.Helper()
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("f.FieldLWW", framework.ModelOptions{Schema: "note.json", Policy: policies.FieldLWW{}})
	app.MustRegisterSchema("f.Automerge", framework.ModelOptions{Schema: "note.json", Policy: policies.Automerge{}})
	app.MustRegisterSchema("f.LWW", framework.ModelOptions{Schema: "note.json"})
	app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || id == "" {
			return framework.Principal{}, framework.ErrUnauthenticated
		}
		return framework.Principal{UserID: id}, nil
	}))
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	app.Mount(r.Group("/sync"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

func fieldDevice(t *testing.T, url, user string, st client.Store, now func() time.Time, rt http.RoundTripper) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: url, Token: user, Owner: user, Store: st, Clock: now,
		DeviceID: "d-" + client.NewUID(), HTTPClient: &http.Client{Transport: rt, Timeout: time.Minute},
		Retry: client.Retry{MaxAttempts: 6, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fields(t *testing.T, c *client.Client, model, uid string) map[string]any {
	t.Helper()
	rec, err := c.Get(context.Background(), model, uid)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFieldLWWTwoDevices is the original design's scenario: device A
// edits a note's title offline, device B its body; whichever syncs
// second, both edits survive under FieldLWW (and under LWW the later
// record wins whole, as before). One device keeps its data in SQLite.
func TestFieldLWWTwoDevices(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		url := fieldServer(t, db)
		ctx := context.Background()
		clock := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		var mu sync.Mutex
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Millisecond); return clock }
		sqlite, err := client.OpenSQLiteStore(ctx, filepath.Join(t.TempDir(), "b.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sqlite.Close() })
		a := fieldDevice(t, url, "ann", client.NewMemoryStore(), now, http.DefaultTransport)
		b := fieldDevice(t, url, "ann", sqlite, now, http.DefaultTransport)
		for _, model := range []string{"f.FieldLWW", "f.Automerge", "f.LWW"} {
			if _, err := a.Put(ctx, model, "n1", map[string]any{"title": "draft", "body": "empty"}); err != nil {
				t.Fatal(err)
			}
			mustSync(t, a)
			mustSync(t, b)
			// Both offline: A edits the title, then B the body (B's edit is
			// the later one).
			if _, err := a.Patch(ctx, model, "n1", map[string]any{"title": "A's title"}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Put(ctx, model, "n1", map[string]any{"title": "draft", "body": "B's body"}); err != nil {
				t.Fatal(err)
			}
			mustSync(t, b)
			mustSync(t, a)
			mustSync(t, b)
			want := map[string]any{"title": "A's title", "body": "B's body"}
			if model == "f.LWW" {
				want = map[string]any{"title": "draft", "body": "B's body"} // B's later record wins whole
			}
			for name, d := range map[string]*client.Client{"A": a, "B": b} {
				if got := fields(t, d, model, "n1"); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: device %s holds %v, want %v", model, name, got, want)
				}
			}
		}
	})
}

func mustSync(t *testing.T, c *client.Client) client.SyncResult {
	t.Helper()
	res, err := c.Sync(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

// lossyTransport loses the answer of some requests the server did serve,
// so the client retries what was applied (the idempotency rule under
// merging policies).
type lossyTransport struct {
	mu   sync.Mutex
	rng  *rand.Rand
	rate float64
	lost int
}

var errLostAnswer = errors.New("the answer was lost")

func (l *lossyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	lose := l.rng.Float64() < l.rate
	if lose {
		l.lost++
	}
	l.mu.Unlock()
	if lose {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errLostAnswer
	}
	return resp, nil
}

// TestSimFieldMerge is the convergence simulation for field-merging
// policies: devices of one user (skewed clocks, one on SQLite) edit
// different fields of shared notes offline, sync in random order through
// a network that loses answers, and in the end every device and the
// server hold, per field, the edit with the latest field time (an
// acknowledged edit is never lost to a concurrent edit of another
// field). Set FERRY_SIM_SEED to replay.
func TestSimFieldMerge(t *testing.T) {
	seed := simSettingsFromEnv(t).seed
	for _, model := range []string{"f.FieldLWW", "f.Automerge"} {
		synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
			t.Run(model, func(t *testing.T) { simFieldMerge(t, fieldServer(t, db), model, seed) })
		})
	}
}

func simFieldMerge(t *testing.T, url, model string, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d (FERRY_SIM_SEED to replay)", seed)
	net := &lossyTransport{rng: rand.New(rand.NewPCG(seed, 8)), rate: 0.15}
	var mu sync.Mutex
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	const devices, notes, rounds = 4, 4, 160
	names := []string{"title", "body", "color", "due"}
	var clients []*client.Client
	for i := range devices {
		skew := time.Duration(rng.IntN(40_000)-20_000) * time.Microsecond
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return base.Add(skew) }
		var st client.Store = client.NewMemoryStore()
		if i == 0 {
			s, err := client.OpenSQLiteStore(ctx, filepath.Join(t.TempDir(), "d0.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			st = s
		}
		clients = append(clients, fieldDevice(t, url, "ann", st, now, net))
	}
	// latest holds, per note and field, the edits with the latest field
	// time (several on a tie).
	type edit struct {
		at     time.Time
		values []string
	}
	latest := map[string]*edit{}
	for round := range rounds {
		mu.Lock()
		base = base.Add(time.Duration(1+rng.IntN(5000)) * time.Microsecond)
		mu.Unlock()
		d := rng.IntN(devices)
		c := clients[d]
		if rng.IntN(4) == 0 {
			if _, err := c.Sync(ctx); err != nil && !errors.Is(err, errLostAnswer) {
				t.Fatalf("round %d: device %d sync: %v", round, d, err)
			}
			continue
		}
		uid := fmt.Sprintf("n%d", rng.IntN(notes))
		field := names[rng.IntN(len(names))]
		value := fmt.Sprintf("d%d-r%d", d, round)
		rec, err := c.Patch(ctx, model, uid, map[string]any{field: value})
		if errors.Is(err, client.ErrNotFound) {
			rec, err = c.Put(ctx, model, uid, map[string]any{field: value})
		}
		if err != nil {
			t.Fatalf("round %d: device %d edit: %v", round, d, err)
		}
		at, ok := rec.FieldsModifyAt[field]
		if !ok {
			at = rec.ModifyAt
		}
		key := uid + "/" + field
		switch e := latest[key]; {
		case e == nil || at.After(e.at):
			latest[key] = &edit{at: at, values: []string{value}}
		case at.Equal(e.at):
			e.values = append(e.values, value)
		}
	}
	// The network heals; every device syncs until nothing is left.
	net.mu.Lock()
	net.rate = 0
	lost := net.lost
	net.mu.Unlock()
	for range 2 {
		for _, c := range clients {
			mustSync(t, c)
		}
	}
	server := fieldDevice(t, url, "ann", client.NewMemoryStore(), time.Now, http.DefaultTransport)
	mustSync(t, server)
	var first map[string]any
	for i, c := range append(clients, server) {
		got := map[string]any{}
		for n := range notes {
			uid := fmt.Sprintf("n%d", n)
			rec, err := c.Get(ctx, model, uid)
			if errors.Is(err, client.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Synced {
				t.Fatalf("device %d: %s still has a local change after the final syncs", i, uid)
			}
			var data map[string]any
			if err := json.Unmarshal(rec.Data, &data); err != nil {
				t.Fatal(err)
			}
			for field, v := range data {
				got[uid+"/"+field] = v
			}
		}
		for key, e := range latest {
			if v, ok := got[key].(string); !ok || !contains(e.values, v) {
				t.Fatalf("device %d (%d is the server's reader): %s = %v, want the latest edit %v at %v", i, len(clients), key, got[key], e.values, e.at)
			}
		}
		if len(got) != len(latest) {
			t.Fatalf("device %d holds %d fields, %d were edited: %v", i, len(got), len(latest), got)
		}
		if first == nil {
			first = got
		} else if fmt.Sprint(first) != fmt.Sprint(got) {
			t.Fatalf("device %d diverged:\n%v\nvs device 0:\n%v", i, got, first)
		}
	}
	t.Logf("%s: %d fields converged over %d devices; %d answers lost", model, len(latest), devices, lost)
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
