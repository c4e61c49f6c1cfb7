package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
)

// These tests reach inside the server (its hashing gate, its limiters,
// its engine); they cannot use servertest, which imports this package.

const internalSecret = "696e7465726e616c2d746573742d7365637265742d6f662d33322d6279746573"

func startInternal(t *testing.T, db *bun.DB, change func(*Config)) (*Server, string) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	off := RateLimit{Requests: -1}
	cfg := Config{DataDir: t.TempDir(), JWTSecret: internalSecret, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth: AuthConfig{PasswordCost: bcrypt.MinCost, PerIP: off, PerAccount: off}}
	if change != nil {
		change(&cfg)
	}
	s, err := New(context.Background(), cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs.URL
}

type wireError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func post(t *testing.T, method, url, token, body string, header map[string]string) (*http.Response, wireError, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var we wireError
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(b, &we); err != nil || we.Error.Code == "" || we.Error.Message == "" {
			t.Fatalf("%s %s: %d without the error shape: %q", method, url, resp.StatusCode, b)
		}
	}
	return resp, we, b
}

func signUp(t *testing.T, url, name string) (id, token string) {
	t.Helper()
	resp, _, b := post(t, "POST", url+"/auth/register", "", fmt.Sprintf(`{"email":%q,"password":"correct horse","name":%q}`, name+"@example.com", name), nil)
	var out struct {
		Token string `json:"token"`
		User  struct {
			UID string `json:"uid"`
		} `json:"user"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("sign up: %d %s", resp.StatusCode, b)
	}
	return out.User.UID, out.Token
}

// TestHashingCap: when every hashing slot stays busy for longer than the
// wait, a login, a sign-up and a password change are answered 503
// unavailable with Retry-After instead of queueing; once a slot frees up
// they work.
func TestHashingCap(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s, url := startInternal(t, db, func(c *Config) {
			c.Auth.MaxConcurrentHashes = 2
			c.Auth.HashWait = 50 * time.Millisecond
		})
		_, token := signUp(t, url, "ann-busy")
		// Two slow hashes in flight: hold both slots.
		s.acc.gate.slots <- struct{}{}
		s.acc.gate.slots <- struct{}{}
		for _, r := range []struct{ method, path, token, body string }{
			{"POST", "/auth/login", "", `{"email":"ann-busy@example.com","password":"correct horse"}`},
			{"POST", "/auth/register", "", `{"email":"bob-busy@example.com","password":"correct horse","name":"Bob"}`},
			{"POST", "/auth/password", token, `{"password":"correct horse","new_password":"another one"}`},
		} {
			resp, we, b := post(t, r.method, url+r.path, r.token, r.body, nil)
			if resp.StatusCode != 503 || we.Error.Code != "unavailable" || resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("%s with the hashing slots full: %d %s (Retry-After %q)", r.path, resp.StatusCode, b, resp.Header.Get("Retry-After"))
			}
		}
		<-s.acc.gate.slots
		if resp, _, b := post(t, "POST", url+"/auth/login", "", `{"email":"ann-busy@example.com","password":"correct horse"}`, nil); resp.StatusCode != 200 {
			t.Fatalf("login with a free slot: %d %s", resp.StatusCode, b)
		}
		<-s.acc.gate.slots
		// Many at once on a real cap of 2: every answer is 200 or 503,
		// never a queue without bound or another error.
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", url+"/auth/login", strings.NewReader(`{"email":"ann-busy@example.com","password":"correct horse"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 503 {
					t.Errorf("concurrent login: %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
	})
}

// TestAuthLimiterMemoryBounded: an attacker rotating emails (and, behind a
// trusted proxy, addresses) makes the limiters remember at most
// MaxTrackedKeys keys each, and the limits still hold for recent keys.
func TestAuthLimiterMemoryBounded(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s, url := startInternal(t, db, func(c *Config) {
			c.Auth.PerIP = RateLimit{Requests: 1000, Per: time.Minute}
			c.Auth.PerAccount = RateLimit{Requests: 1, Per: time.Minute}
			c.Auth.MaxTrackedKeys = 200
			c.TrustedProxies = []string{"127.0.0.1", "::1"}
		})
		for i := range 900 {
			hdr := map[string]string{"X-Forwarded-For": fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)}
			resp, _, b := post(t, "POST", url+"/auth/login", "", fmt.Sprintf(`{"email":"victim-%d@example.com","password":"guess guess"}`, i), hdr)
			if resp.StatusCode != 401 {
				t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, b)
			}
		}
		if ip, acc := s.acc.limits.perIP.Len(), s.acc.limits.perAccount.Len(); ip > 200 || acc > 200 {
			t.Fatalf("limiters remember %d addresses and %d accounts, cap 200", ip, acc)
		}
		// The most recent account is still limited.
		resp, we, _ := post(t, "POST", url+"/auth/login", "", `{"email":"victim-899@example.com","password":"guess guess"}`, map[string]string{"X-Forwarded-For": "10.9.9.9"})
		if resp.StatusCode != 429 || we.Error.Code != "rate_limited" {
			t.Fatalf("recent account: %d %+v", resp.StatusCode, we)
		}
	})
}

// TestKeyedLimiter: idle keys are forgotten once their bucket has
// refilled (nothing is lost by forgetting them), the cap holds, and the
// memory per key is small.
func TestKeyedLimiter(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k := newKeyedLimiter(RateLimit{Requests: 2, Per: time.Minute}, 1000, func() time.Time { return now })
	for range 2 {
		if ok, _ := k.Reserve("a"); !ok {
			t.Fatal("within the burst: refused")
		}
	}
	ok, wait := k.Reserve("a")
	if ok || wait < 29*time.Second || wait > 31*time.Second {
		t.Fatalf("third: ok=%v wait=%v, want refused for 30s", ok, wait)
	}
	for i := range 1500 {
		k.Reserve(fmt.Sprint("k", i))
	}
	if n := k.Len(); n != 1000 {
		t.Fatalf("size %d, want the cap 1000", n)
	}
	now = now.Add(time.Minute)
	k.Reserve("fresh")
	if n := k.Len(); n != 1 {
		t.Fatalf("after a minute idle: %d keys, want 1", n)
	}
	if testing.Short() {
		return
	}
	// Memory per remembered account, whatever the length of its email.
	big := newKeyedLimiter(RateLimit{Requests: 10, Per: time.Minute}, 100_000, time.Now)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	long := strings.Repeat("x", 1000) // emails as long as a client likes
	for i := range 100_000 {
		big.Reserve(accountKey(fmt.Sprintf("victim-%d-%s@example.com", i, long)))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.HeapAlloc - before.HeapAlloc) / 100_000
	t.Logf("%d bytes per remembered key (%d MB for 100,000)", per, per*100_000>>20)
	if per > 1024 {
		t.Errorf("%d bytes per key", per)
	}
	runtime.KeepAlive(big)
}

// TestPanicsAnswer500: a panic in a plain route (as a plugin might
// mount), in a sync hook, or in an /auth handler is a 500 in the error
// shape, and the server keeps serving.
func TestPanicsAnswer500(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s, url := startInternal(t, db, nil)
		_, token := signUp(t, url, "ann-panic")
		s.engine.GET("/boom", func(*gin.Context) { panic("a plugin's bug") })
		s.App.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "test.panic", Tags: []string{"data.Note"}, Func: func(e *framework.ApplyEvent) error {
			if strings.Contains(string(e.Record.Data), "boom") {
				panic("a hook's bug")
			}
			return e.Next()
		}})
		check := func(what string, resp *http.Response, we wireError, b []byte) {
			t.Helper()
			if resp.StatusCode != 500 || we.Error.Code != "internal" || we.Error.Message != "internal error" || strings.Contains(string(b), "bug") {
				t.Fatalf("%s: %d %s", what, resp.StatusCode, b)
			}
		}
		resp, we, b := post(t, "GET", url+"/boom", "", "", nil)
		check("plain route", resp, we, b)
		resp, we, b = post(t, "POST", url+"/sync/", token, `{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"boom"}}`, nil)
		check("sync hook", resp, we, b)
		limits := s.acc.limits
		s.acc.limits = nil // a nil pointer in the login handler
		resp, we, b = post(t, "POST", url+"/auth/login", "", `{"email":"ann-panic@example.com","password":"correct horse"}`, nil)
		check("/auth handler", resp, we, b)
		s.acc.limits = limits
		// Still serving, the store included (the panicking push rolled
		// back and gave its connection back).
		if resp, _, b := post(t, "POST", url+"/sync/", token, `{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"fine"}}`, nil); resp.StatusCode != 200 {
			t.Fatalf("after the panics: %d %s", resp.StatusCode, b)
		}
		if resp, _, b := post(t, "POST", url+"/auth/login", "", `{"email":"ann-panic@example.com","password":"correct horse"}`, nil); resp.StatusCode != 200 {
			t.Fatalf("login after the panics: %d %s", resp.StatusCode, b)
		}
	})
}
