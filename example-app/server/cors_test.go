package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
)

// corsAnswer sends method path with an Origin header (and a preflight's
// headers for OPTIONS) and returns the answer with its body read.
func corsAnswer(t *testing.T, base, method, path, origin, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,content-encoding")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "https://notes.example.com"
	cfg := servertest.Config(t)
	cfg.CORSOrigins = []string{app, "http://127.0.0.1:5173"}
	env := servertest.StartWith(t, synctest.OpenSQLite(t), cfg)
	u := env.SignUp(t, "cors")

	t.Run("a listed origin's preflight is answered", func(t *testing.T) {
		resp, _ := corsAnswer(t, env.URL, http.MethodOptions, "/sync/push", app, "")
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight: %d, want 204", resp.StatusCode)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != app {
			t.Errorf("Allow-Origin %q, want %q", got, app)
		}
		for _, want := range []string{"authorization", "content-type", "content-encoding", "last-event-id", "x-request-id"} {
			if h := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, want) {
				t.Errorf("Allow-Headers %q lacks %s", h, want)
			}
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("credentials allowed: tokens travel in headers, never in cookies")
		}
	})
	t.Run("a listed origin's request gets the headers and the answer", func(t *testing.T) {
		resp, body := corsAnswer(t, env.URL, http.MethodGet, "/sync/pull", app, u.Token)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app {
			t.Fatalf("%d, Allow-Origin %q: %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), body)
		}
		if h := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers")); !strings.Contains(h, "retry-after") || !strings.Contains(h, "accept-encoding") || !strings.Contains(h, "x-request-id") {
			t.Errorf("Retry-After, Accept-Encoding or X-Request-Id is not exposed: %q", resp.Header.Get("Access-Control-Expose-Headers"))
		}
	})
	for _, origin := range []string{"https://evil.example.com", "https://notes.example.com.evil.example", "null", "http://127.0.0.1:5174"} {
		t.Run("refused "+origin, func(t *testing.T) {
			for _, method := range []string{http.MethodOptions, http.MethodGet} {
				resp, body := corsAnswer(t, env.URL, method, "/sync/pull", origin, u.Token)
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
					t.Fatalf("%s: %d, Allow-Origin %q, want 403 without it", method, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
				}
				var eb struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code != "forbidden" {
					t.Fatalf("%s: body %q is not the protocol's forbidden error", method, body)
				}
			}
		})
	}
	t.Run("same-origin and origin-less requests pass", func(t *testing.T) {
		resp, body := corsAnswer(t, env.URL, http.MethodGet, "/sync/pull", env.URL, u.Token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("same origin: %d %s", resp.StatusCode, body)
		}
		resp, body = corsAnswer(t, env.URL, http.MethodGet, "/sync/pull", "", u.Token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("no origin: %d %s", resp.StatusCode, body)
		}
	})
}

func TestCORSOffByDefault(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, synctest.OpenSQLite(t))
	resp, _ := corsAnswer(t, env.URL, http.MethodOptions, "/sync/push", "https://notes.example.com", "")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode == http.StatusNoContent {
		t.Fatalf("CORS answered without an allow-list: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestCORSOriginsMustBeOrigins(t *testing.T) {
	for _, bad := range []string{"notes.example.com", "https://notes.example.com/", "https://notes.example.com/app", "ftp://x.example", "https://u:p@x.example", "https://x.example?q=1"} {
		cfg := servertest.Config(t)
		cfg.CORSOrigins = []string{bad}
		_, err := server.New(context.Background(), cfg, synctest.OpenSQLite(t))
		if err == nil || !strings.Contains(err.Error(), "CORSOrigins") {
			t.Errorf("%q: %v, want an error naming CORSOrigins", bad, err)
		}
	}
	t.Setenv("FERRY_CORS_ORIGINS", " https://a.example , ,http://127.0.0.1:3000")
	if got := server.ConfigFromEnv().CORSOrigins; len(got) != 2 || got[0] != "https://a.example" || got[1] != "http://127.0.0.1:3000" {
		t.Errorf("FERRY_CORS_ORIGINS read as %q", got)
	}
}

func TestWebAppServedAtRoot(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, synctest.OpenSQLite(t))
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html", "Ferry Notes"},
		{"/sw.js", "javascript", "caches"},
		{"/assets/app.js", "javascript", "/sync"},
		{"/assets/app.css", "text/css", ".note"},
	} {
		resp, body := corsAnswer(t, env.URL, http.MethodGet, c.path, "", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.contains, strings.Contains(body, c.contains))
		}
		if resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", c.path, resp.Header.Get("Cache-Control"))
		}
	}
	for _, path := range []string{"/assets/", "/assets/missing.js", "/index.html", "/assets/../web.go"} {
		resp, body := corsAnswer(t, env.URL, http.MethodGet, path, "", "")
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMovedPermanently {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if resp.StatusCode == http.StatusNotFound && !strings.Contains(body, `"not_found"`) {
			t.Errorf("GET %s: 404 not in the error shape: %s", path, body)
		}
	}
}
