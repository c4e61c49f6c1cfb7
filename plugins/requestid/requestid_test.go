package requestid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/plugins/requestid"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

func init() { gin.SetMode(gin.TestMode) }

// syncBuffer is a log sink the server's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestIDs(t *testing.T) {
	var logs syncBuffer
	log := slog.New(requestid.NewHandler(slog.NewJSONHandler(&logs, nil)))
	e := gin.New()
	e.Use(requestid.Middleware(), framework.Recovery(log))
	seen := make(chan string, 10)
	e.GET("/ok", func(c *gin.Context) {
		seen <- requestid.From(c.Request.Context())
		c.Status(http.StatusNoContent)
	})
	// An internal error is logged by the framework with the request's
	// context, so with its id; the client learns nothing else.
	e.GET("/fail", framework.HandlerFunc(log, func(c *gin.Context) error {
		return errors.New("database on fire")
	}))
	e.GET("/panic", func(c *gin.Context) { panic("boom") })
	srv := httptest.NewServer(e)
	defer srv.Close()

	get := func(path, id string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if id != "" {
			req.Header.Set(requestid.Header, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	for _, c := range []struct {
		name, sent string
		kept       bool
	}{
		{"none sent", "", false},
		{"accepted", "lb-4f1a:2026/12.02+x=y@edge_1", true},
		{"a space", "two words", false},
		{"a quote", `x" level=ERROR msg="forged`, false},
		{"not ASCII", "idé", false},
		{"too long", strings.Repeat("a", requestid.MaxLen+1), false},
		{"longest", strings.Repeat("a", requestid.MaxLen), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := get("/ok", c.sent)
			echoed := resp.Header.Get(requestid.Header)
			if got := <-seen; got != echoed {
				t.Fatalf("the handler saw %q, the client was told %q", got, echoed)
			}
			if c.kept {
				if echoed != c.sent {
					t.Fatalf("id %q came back as %q", c.sent, echoed)
				}
				return
			}
			if _, err := uuid.Parse(echoed); err != nil || echoed == c.sent {
				t.Fatalf("id %q: got %q, want a new UUID", c.sent, echoed)
			}
		})
	}
	if a, b := get("/ok", "").Header.Get(requestid.Header), get("/ok", "").Header.Get(requestid.Header); a == b {
		t.Fatalf("two requests got the same id %q", a)
	}
	<-seen
	<-seen

	for _, path := range []string{"/fail", "/panic"} {
		resp := get(path, "trace-"+path[1:])
		if resp.StatusCode != 500 || resp.Header.Get(requestid.Header) != "trace-"+path[1:] {
			t.Fatalf("%s: %d, id %q", path, resp.StatusCode, resp.Header.Get(requestid.Header))
		}
	}
	want := map[string]string{"request failed": "trace-fail", "panic in handler": "trace-panic"}
	for _, l := range logs.lines() {
		if id, ok := want[l["msg"].(string)]; ok && l[requestid.LogKey] == id {
			delete(want, l["msg"].(string))
		}
	}
	if len(want) > 0 {
		t.Fatalf("log lines without their request id: %v\n%v", want, logs.lines())
	}
}

// The wrapped handler is still a correct slog.Handler.
func TestHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	h := requestid.NewHandler(slog.NewJSONHandler(&buf, nil))
	err := slogtest.TestHandler(h, func() []map[string]any {
		var out []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ExampleNewHandler() {
	log := slog.New(requestid.NewHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable example
			}
			return a
		}})))
	ctx := requestid.With(context.Background(), "req-42")
	log.InfoContext(ctx, "pushed", "changes", 3)
	// Output: level=INFO msg=pushed changes=3 request_id=req-42
}
