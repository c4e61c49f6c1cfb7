// Package servertest starts Ferry's example app for tests: on a given
// store, over real HTTP (httptest), with a fixed JWT secret, and signs
// users up. Tests of the client SDK, the protocol adapters and the
// benchmarks use it, so they all talk to the same server.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/framework"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
)

// Secret is the JWT secret the test servers use (hex of 32 bytes, as
// FERRY_JWT_SECRET must be).
const Secret = "7465737420736563726574206f6620746865206578616d706c652061707021a5"

// Auth is the accounts configuration of the test servers: password hashes
// of bcrypt's lowest cost and no rate limits on /auth, since test suites
// sign many users up from one address. Tests of those limits set their
// own (see [StartWith]).
func Auth() server.AuthConfig {
	off := server.RateLimit{Requests: -1}
	return server.AuthConfig{PasswordCost: bcrypt.MinCost, PerIP: off, PerAccount: off}
}

// Config is the configuration [Start] uses: a temporary data dir,
// [Secret], [Auth] and discarded logs.
func Config(t testing.TB) server.Config {
	return server.Config{
		DataDir:   t.TempDir(),
		JWTSecret: Secret,
		Auth:      Auth(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Env is a running example server.
type Env struct {
	Server *server.Server
	// URL is the server's base URL (no trailing slash).
	URL  string
	http *httptest.Server
}

// Start builds the example app on db and serves it until the test ends.
// Its logs are discarded.
func Start(t testing.TB, db *bun.DB) *Env {
	t.Helper()
	return StartWith(t, db, Config(t))
}

// StartWith is [Start] with a configuration of the test's own, usually
// [Config] with some fields changed.
func StartWith(t testing.TB, db *bun.DB, cfg server.Config) *Env {
	t.Helper()
	srv, err := server.New(context.Background(), cfg, db)
	if err != nil {
		t.Fatalf("build example server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &Env{Server: srv, URL: hs.URL, http: hs}
}

// User is a signed-up account.
type User struct {
	ID    string
	Email string
	Token string
}

// SignUp registers name (its email is derived from it) and returns the
// account with its token.
func (e *Env) SignUp(t testing.TB, name string) User {
	t.Helper()
	return SignUpAt(t, e.URL, name)
}

// SignUpAt is [Env.SignUp] against any example server at base, such as
// the built binary.
func SignUpAt(t testing.TB, base, name string) User {
	t.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", "-")) + "@example.com"
	body, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse", "name": name})
	resp, err := http.Post(base+"/auth/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("sign up %s: %v", name, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
		User  struct {
			UID string `json:"uid"`
		} `json:"user"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Token == "" {
		t.Fatalf("sign up %s: status %d, %v", name, resp.StatusCode, err)
	}
	return User{ID: out.User.UID, Email: email, Token: out.Token}
}

// PullAll pulls everything u can read from the server at base, page by
// page from an empty cursor, keyed by model/uid. A record returned twice,
// or one u does not own, fails the test.
func PullAll(t testing.TB, base string, u User) map[string]framework.Record {
	t.Helper()
	out := map[string]framework.Record{}
	cursor := ""
	for page := 0; page <= 10000; page++ {
		req, _ := http.NewRequest(http.MethodGet, base+"/sync/pull?limit=5000&cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+u.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body framework.PullResponse
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("full pull: status %d, %v", resp.StatusCode, err)
		}
		for _, c := range body.Changes {
			k := c.Model + "/" + c.UID
			if _, dup := out[k]; dup {
				t.Errorf("a full pull returned %s twice", k)
			}
			if c.Owner != u.ID {
				t.Errorf("a full pull of %s returned %s of owner %s", u.ID, k, c.Owner)
			}
			out[k] = *c
		}
		if !body.HasMore {
			return out
		}
		cursor = body.Cursor
	}
	t.Fatal("full pull never ended")
	return nil
}

// String describes the server for test logs.
func (e *Env) String() string { return fmt.Sprintf("example server at %s", e.URL) }
