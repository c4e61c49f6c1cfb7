package realtime

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/jackc/pgx/v5"
)

// hints collects what a bus delivers.
type hints struct {
	mu     sync.Mutex
	scopes map[string]int
	resync int
	wake   chan struct{}
}

func newHints() *hints { return &hints{scopes: map[string]int{}, wake: make(chan struct{}, 1)} }

func (h *hints) deliver(x Hint) {
	h.mu.Lock()
	for _, s := range x.Scopes {
		h.scopes[s]++
	}
	if x.Resync {
		h.resync++
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds (checked under the lock), failing after
// a generous deadline: buses deliver in milliseconds, the deadline only
// bounds a broken one.
func (h *hints) waitFor(t *testing.T, what string, cond func(h *hints) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		ok := cond(h)
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (h *hints) got(scope string) func(*hints) bool {
	return func(h *hints) bool { return h.scopes[scope] > 0 }
}

// runBusSuite is what every networked bus must do, with two replicas'
// buses made by mk.
func runBusSuite(t *testing.T, mk func(t *testing.T) Bus) {
	start := func(t *testing.T) (Bus, *hints) {
		b := mk(t)
		h := newHints()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Start(ctx, h.deliver); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return b, h
	}
	t.Run("every replica hears every replica", func(t *testing.T) {
		a, ha := start(t)
		_, hb := start(t)
		a.Publish([]string{"user-1", "user-2"})
		hb.waitFor(t, "user-1 and user-2 on the other replica", func(h *hints) bool { return h.scopes["user-1"] > 0 && h.scopes["user-2"] > 0 })
		ha.waitFor(t, "user-1 on the publishing replica", ha.got("user-1"))
	})
	t.Run("many scopes travel in several payloads", func(t *testing.T) {
		a, _ := start(t)
		_, hb := start(t)
		var scopes []string
		for i := range 3000 {
			scopes = append(scopes, fmt.Sprintf("%08d-4b9e-4c3a-9f1e-%012d", i, i)) // uuid-sized
		}
		a.Publish(scopes)
		hb.waitFor(t, "3000 scopes", func(h *hints) bool {
			for _, s := range scopes {
				if h.scopes[s] == 0 {
					return false
				}
			}
			return true
		})
	})
	t.Run("coalesces a burst", func(t *testing.T) {
		a, _ := start(t)
		_, hb := start(t)
		for range 500 {
			a.Publish([]string{"burst"})
		}
		a.Publish([]string{"after"})
		hb.waitFor(t, "the burst", func(h *hints) bool { return h.scopes["burst"] > 0 && h.scopes["after"] > 0 })
		hb.mu.Lock()
		n := hb.scopes["burst"]
		hb.mu.Unlock()
		t.Logf("500 publications of one scope arrived as %d hints", n)
		if n > 500 {
			t.Fatalf("%d hints for 500 publications", n)
		}
	})
}

func TestLocalBus(t *testing.T) {
	b := NewLocalBus()
	h := newHints()
	b.Publish([]string{"before-start"}) // nowhere to go: dropped, no panic
	if err := b.Start(context.Background(), h.deliver); err != nil {
		t.Fatal(err)
	}
	b.Publish([]string{"user-1"})
	b.Publish(nil)
	h.waitFor(t, "user-1", h.got("user-1"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Publish([]string{"after-close"})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.scopes["after-close"] != 0 || h.scopes["before-start"] != 0 {
		t.Fatalf("delivered outside Start…Close: %v", h.scopes)
	}
}

func TestEncodeHints(t *testing.T) {
	scopes := []string{"a", "b", `q"uote`, strings.Repeat("x", 30)}
	for _, max := range []int{40, 64, 7000} {
		var got []string
		for _, p := range encodeHints(scopes, false, max) {
			if len(p) > max {
				t.Fatalf("payload of %d bytes over %d: %s", len(p), max, p)
			}
			h, err := decodeHint(p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, h.Scopes...)
		}
		if strings.Join(got, "|") != strings.Join(scopes, "|") {
			t.Fatalf("max %d: %q", max, got)
		}
	}
	// A scope longer than any payload cannot travel: everyone resyncs.
	p := encodeHints([]string{strings.Repeat("y", 100)}, false, 50)
	if h, _ := decodeHint(p[0]); len(p) != 1 || !h.Resync {
		t.Fatalf("%s", p)
	}
	if _, err := decodeHint([]byte("not json")); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestBatcherOverflowAndFailure(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	fail := 2
	b := newBatcher(func(_ context.Context, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return fmt.Errorf("down")
		}
		sent = append(sent, string(p))
		return nil
	}, 1000, 3, func(error) {})
	b.add([]string{"a", "b", "c", "d"}) // over maxPending: a resync
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.run(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing sent after the failures")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if sent[0] != `{"r":true}` {
		t.Fatalf("after an overflow and failed sends, first sent %s, want a resync", sent[0])
	}
}

func TestPostgresBus(t *testing.T) {
	dsn := synctest.PostgresURL(t)
	channel := fmt.Sprintf("ferry_hints_%d", time.Now().UnixNano())
	mk := func(t *testing.T) Bus {
		b, err := NewPostgresBus(dsn, PostgresOptions{Channel: channel})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	runBusSuite(t, mk)

	t.Run("a listener that loses its connection resyncs and hears again", func(t *testing.T) {
		a := mk(t).(*PostgresBus)
		b := mk(t).(*PostgresBus)
		hb := newHints()
		ctx := context.Background()
		if err := a.Start(ctx, func(Hint) {}); err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if err := b.Start(ctx, hb.deliver); err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		pid := b.ListenerPID()
		var killed bool
		if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed); err != nil || !killed {
			t.Fatalf("terminate the listener %d: %v %v", pid, killed, err)
		}
		hb.waitFor(t, "a resync after the reconnect", func(h *hints) bool { return h.resync > 0 })
		if b.ListenerPID() == pid {
			t.Fatal("the listener did not reconnect")
		}
		a.Publish([]string{"after-reconnect"})
		hb.waitFor(t, "a hint after the reconnect", hb.got("after-reconnect"))
	})

	t.Run("Start fails when PostgreSQL cannot be reached", func(t *testing.T) {
		b, err := NewPostgresBus("postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background(), func(Hint) {}); err == nil {
			b.Close()
			t.Fatal("started without a database")
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := NewPostgresBus("::not a url", PostgresOptions{}); err == nil {
		t.Fatal("a bad URL was accepted")
	}
}

// natsURL is the test NATS server, or a skip (a failure under
// FERRY_REQUIRE_NATS=1, as in CI) when none answers.
func natsURL(t *testing.T) string {
	addr := os.Getenv("FERRY_TEST_NATS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:4222"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("FERRY_REQUIRE_NATS") == "1" {
			t.Fatalf("NATS unreachable at %s and FERRY_REQUIRE_NATS=1: %v", addr, err)
		}
		t.Skipf("NATS unreachable at %s (%v); start nats-server or set FERRY_TEST_NATS_ADDR; FERRY_REQUIRE_NATS=1 makes this a failure", addr, err)
	}
	c.Close()
	return "nats://" + addr
}

func TestNATSBus(t *testing.T) {
	url := natsURL(t)
	subject := fmt.Sprintf("ferry.test.%d", time.Now().UnixNano())
	mk := func(t *testing.T) Bus { return NewNATSBus(url, NATSOptions{Subject: subject}) }
	runBusSuite(t, mk)

	t.Run("a reconnect resyncs", func(t *testing.T) {
		a := mk(t).(*NATSBus)
		b := mk(t).(*NATSBus)
		hb := newHints()
		ctx := context.Background()
		if err := a.Start(ctx, func(Hint) {}); err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if err := b.Start(ctx, hb.deliver); err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Conn().ForceReconnect(); err != nil {
			t.Fatal(err)
		}
		hb.waitFor(t, "a resync after the reconnect", func(h *hints) bool { return h.resync > 0 })
		a.Publish([]string{"after-reconnect"})
		hb.waitFor(t, "a hint after the reconnect", hb.got("after-reconnect"))
	})
	t.Run("Start fails when NATS cannot be reached", func(t *testing.T) {
		b := NewNATSBus("nats://127.0.0.1:1", NATSOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Start(ctx, func(Hint) {}); err == nil {
			b.Close()
			t.Fatal("started without NATS")
		}
	})
}
