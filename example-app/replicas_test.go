package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/realtime"
)

// TestReplicasDeliverEveryHint runs three example-app processes on one
// PostgreSQL, each its own process on its own port, with devices of one
// user connected to different replicas. A device pulls only when its
// replica's live stream tells it to (and once per connection, as the
// first event says): it never polls. Writes go through replica 1; then
// replica 2 is SIGKILLed and restarted while writes go on, and every
// replica's listening connection is killed (pg_terminate_backend) just
// before more writes. After each step every device holds exactly the
// server's state: no hint was lost. It runs on the PostgreSQL bus and on
// NATS.
func TestReplicasDeliverEveryHint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three servers")
	}
	t.Parallel()
	bin := buildApp(t)
	for _, bus := range []string{"postgres", "nats"} {
		t.Run(bus, func(t *testing.T) {
			if bus == "nats" {
				requireNATS(t)
			}
			dsn := synctest.PostgresURL(t)
			dir := t.TempDir()
			// This run's own channel, the same on its three replicas: other
			// runs on the database do not wake them.
			channel := fmt.Sprintf("ferry_test_%s_%d", bus, time.Now().UnixNano())
			env := func(i int) []string {
				return []string{"DATABASE_URL=" + dsn, "FERRY_REALTIME_BUS=" + bus,
					"FERRY_REALTIME_CHANNEL=" + channel,
					"FERRY_DATA_DIR=" + filepath.Join(dir, fmt.Sprint("replica", i)),
					"FERRY_JWT_SECRET=7265706c696361732d746573742d7365637265742d7265706c696361732d7465",
					"FERRY_BCRYPT_COST=4", "FERRY_AUTH_RATE_IP=off", "FERRY_AUTH_RATE_ACCOUNT=off"}
			}
			addrs := []string{crashFreeAddr(t), crashFreeAddr(t), crashFreeAddr(t)}
			procs := make([]*appProcess, 3)
			for i, a := range addrs {
				procs[i] = startApp(t, bin, a, env(i))
			}
			base := func(i int) string { return "http://" + addrs[i] }
			user := servertest.SignUpAt(t, base(0), "Replica Ruth")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var devices []*hintDevice
			for i := range 3 {
				d := &hintDevice{base: base(i), token: user.Token, records: map[string]framework.Record{}, changed: make(chan struct{}, 1)}
				devices = append(devices, d)
				go d.run(ctx)
			}
			written := map[string]bool{}
			write := func(replica, n int, prefix string) {
				t.Helper()
				var changes []map[string]any
				for k := range n {
					uid := fmt.Sprintf("%s-%03d", prefix, k)
					written[uid] = true
					changes = append(changes, map[string]any{"model": "data.Note", "uid": uid,
						"modify_at": time.Now().UTC().Format(time.RFC3339Nano), "data": map[string]any{"title": uid, "body": "", "pinned": false}})
				}
				pushTo(t, base(replica), user.Token, changes)
			}
			converged := func(step string) {
				t.Helper()
				want := servertest.PullAll(t, base(0), user)
				for _, d := range devices {
					d.waitFor(t, step, func(have map[string]framework.Record) bool {
						if len(have) != len(want) {
							return false
						}
						for k, r := range want {
							if have[k].Version != r.Version {
								return false
							}
						}
						return true
					})
				}
			}

			write(0, 20, "first")
			converged("after writes through replica 1")

			procs[1].kill()
			write(0, 10, "while-2-down")
			write(2, 5, "through-3-while-2-down")
			procs[1] = startApp(t, bin, addrs[1], env(1))
			write(0, 5, "after-2-restart")
			converged("after replica 2 was killed and restarted")

			if bus == "postgres" {
				db, err := models.OpenPostgres(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				var killed int
				if err := db.NewRaw(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE application_name = ? AND datname = current_database() AND query LIKE ?) k`,
					realtime.ListenerApplicationName, "LISTEN%"+channel+"%").Scan(ctx, &killed); err != nil {
					t.Fatal(err)
				}
				if killed != 3 {
					t.Fatalf("killed %d listening connections, want 3 (one per replica)", killed)
				}
				write(0, 10, "after-listeners-killed")
				write(1, 10, "through-2-after-listeners-killed")
				converged("after every listener was killed")
			}
			var reconnects []int
			for _, d := range devices {
				reconnects = append(reconnects, d.connects())
			}
			t.Logf("%d records; stream connections per device: %v", len(written)+1, reconnects)
		})
	}
}

func requireNATS(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:4222", 2*time.Second)
	if err != nil {
		if os.Getenv("FERRY_REQUIRE_NATS") == "1" {
			t.Fatalf("NATS unreachable at 127.0.0.1:4222 and FERRY_REQUIRE_NATS=1: %v", err)
		}
		t.Skipf("NATS unreachable at 127.0.0.1:4222 (%v); FERRY_REQUIRE_NATS=1 makes this a failure", err)
	}
	c.Close()
}

// pushTo pushes changes through the server at base; every one must be
// applied.
func pushTo(t *testing.T, base, token string, changes []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"device_id": "writer", "changes": changes})
	req, _ := http.NewRequest(http.MethodPost, base+"/sync/push", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out wire.PushResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("push: %d %v", resp.StatusCode, err)
	}
	for _, r := range out.Results {
		if r.Status != framework.StatusApplied {
			t.Fatalf("push: %+v", r)
		}
	}
}

// hintDevice is a device that pulls from its replica only when the live
// stream says so: at every (re)connection the first event tells whether
// it is behind (it sends its pull cursor), then every "changes" event.
type hintDevice struct {
	base, token string

	mu       sync.Mutex
	records  map[string]framework.Record
	cursor   string
	nconnect int
	changed  chan struct{}
}

func (d *hintDevice) connects() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nconnect
}

// run keeps a stream open until ctx ends, reconnecting (the replica may
// be down) every 100ms.
func (d *hintDevice) run(ctx context.Context) {
	for ctx.Err() == nil {
		_ = d.stream(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *hintDevice) stream(ctx context.Context) error {
	d.mu.Lock()
	cursor := d.cursor
	d.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/sync/stream?cursor="+url.QueryEscape(cursor), nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream: %d", resp.StatusCode)
	}
	d.mu.Lock()
	d.nconnect++
	d.mu.Unlock()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) == "event: changes" {
			if err := d.pull(ctx); err != nil {
				return err // reconnect: the first event says whether anything is left
			}
		}
	}
}

// pull pulls every page after the device's cursor.
func (d *hintDevice) pull(ctx context.Context) error {
	d.mu.Lock()
	cursor := d.cursor
	d.mu.Unlock()
	got := map[string]framework.Record{}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/sync/pull?cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var page wire.PullResponse
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("pull: %d %v", resp.StatusCode, err)
		}
		for _, r := range page.Changes {
			got[r.Model+"/"+r.UID] = *r
		}
		cursor = page.Cursor
		if !page.HasMore {
			break
		}
	}
	d.mu.Lock()
	for k, r := range got {
		d.records[k] = r
	}
	d.cursor = cursor // after the last page only
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until cond holds of the device's records; the deadline
// only bounds a broken run.
func (d *hintDevice) waitFor(t *testing.T, step string, cond func(map[string]framework.Record) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		d.mu.Lock()
		ok := cond(d.records)
		n := len(d.records)
		d.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-d.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: the device on %s did not converge (holds %d records)", step, d.base, n)
		}
	}
}
