package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/metrics"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

var noteSchema = fstest.MapFS{"note.json": {Data: []byte(`{"type":"object","required":["title"],"properties":{"title":{"type":"string","maxLength":20}}}`)}}

// bearer: "Bearer <user>" is that user.
var bearer = framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || user == "" {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "bad token")
	}
	return framework.Principal{UserID: user}, nil
})

// busyStore fails its first busy Begins as PostgreSQL does on a
// serialization failure: the push must retry, and count the retry.
type busyStore struct {
	models.Store
	busy atomic.Int32
}

func (s *busyStore) Begin(ctx context.Context) (models.Tx, error) {
	if s.busy.Add(-1) >= 0 {
		return nil, &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	}
	return s.Store.Begin(ctx)
}

type env struct {
	app   *framework.App
	store *busyStore
	url   string
	now   *atomic.Int64
}

func newEnv(t *testing.T, db *bun.DB, streams func() int) *env {
	t.Helper()
	now := &atomic.Int64{}
	now.Store(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	st := &busyStore{Store: models.NewStore(db)}
	app, err := framework.New(framework.Config{Store: st, Schemas: noteSchema,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"})
	app.SetAuthenticator(bearer)
	m, err := metrics.New(metrics.Config{Streams: map[string]func() int{"test": streams}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(m)
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	e := gin.New()
	e.Use(m.Middleware(), framework.Recovery(nil))
	framework.UseProtocolErrors(e)
	app.Mount(e.Group("/sync"))
	e.GET("/metrics", gin.WrapH(m.Handler()))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &env{app: app, store: st, url: srv.URL, now: now}
}

func (e *env) do(t *testing.T, method, path, user, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape is one GET /metrics, parsed: metric family → labels → value.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

func (e *env) scrape(t *testing.T) scrape {
	t.Helper()
	code, body := e.do(t, "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return scrape{text: body, families: fams}
}

// value is the metric's value (a histogram's count) whose labels
// include want; 0 when there is none.
func (s scrape) value(name string, want ...string) float64 {
	f := s.families[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func note(uid, at, title string, deleted bool) string {
	return fmt.Sprintf(`{"model":"data.Note","uid":%q,"modify_at":%q,"is_deleted":%t,"data":{"title":%q}}`, uid, at, deleted, title)
}

func TestScrapeAfterPush(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		var streams atomic.Int64
		streams.Store(3)
		e := newEnv(t, db, func() int { return int(streams.Load()) })
		before := e.scrape(t)

		// One push: applied, invalid data, an unknown model, and a bad
		// modify_at (refused for its envelope).
		body := `{"device_id":"d1","changes":[` +
			note("n1", "2026-06-01T11:00:00Z", "hello", false) + `,` +
			note("n2", "2026-06-01T11:00:00Z", strings.Repeat("x", 30), false) + `,` +
			`{"model":"evil.Model-ann-secret","uid":"u","modify_at":"2026-06-01T11:00:00Z","data":{}},` +
			`{"model":"data.Note","uid":"n4","modify_at":"yesterday","data":{"title":"x"}}]}`
		if code, resp := e.do(t, "POST", "/sync/push", "ann", body); code != 200 {
			t.Fatalf("push: %d %s", code, resp)
		}
		// An older write of n1 loses the conflict: stale.
		if code, resp := e.do(t, "POST", "/sync/push", "ann", `{"changes":[`+note("n1", "2026-06-01T10:00:00Z", "old", false)+`]}`); code != 200 || !strings.Contains(resp, `"stale"`) {
			t.Fatalf("stale push: %d %s", code, resp)
		}
		if code, resp := e.do(t, "POST", "/sync/push", "bob", `{"changes":[`+note("b1", "2026-06-01T11:00:00Z", "bob's", false)+`]}`); code != 200 {
			t.Fatalf("bob's push: %d %s", code, resp)
		}
		// Two pages of one record each for ann (n1, then nothing more: the
		// rejected changes wrote nothing).
		code, resp := e.do(t, "GET", "/sync/pull?limit=1", "ann", "")
		if code != 200 {
			t.Fatalf("pull: %d %s", code, resp)
		}
		var page struct{ Cursor string }
		if err := json.Unmarshal([]byte(resp), &page); err != nil {
			t.Fatal(err)
		}
		if code, resp := e.do(t, "GET", "/sync/pull?limit=1&cursor="+page.Cursor, "ann", ""); code != 200 {
			t.Fatalf("second pull: %d %s", code, resp)
		}
		e.do(t, "GET", "/no/such/route/ann", "ann", "")
		e.do(t, "GET", "/sync/pull", "", "") // unauthenticated
		// Delete n1 (a tombstone without data: the ordinary path, on
		// either store) while the store refuses two transactions as
		// busy: the push is retried twice, applied, and counted.
		e.store.busy.Store(2)
		del := `{"changes":[{"model":"data.Note","uid":"n1","modify_at":"2026-06-01T11:30:00Z","is_deleted":true}]}`
		if code, resp := e.do(t, "POST", "/sync/push", "ann", del); code != 200 || !strings.Contains(resp, `"applied"`) {
			t.Fatalf("busy delete: %d %s", code, resp)
		}
		if left := e.store.busy.Load(); left > 0 {
			t.Fatalf("the store was asked %d transactions fewer than expected", left)
		}
		// Let the tombstone age past an hour, and purge.
		e.now.Add(int64(2 * time.Hour))
		if n, err := e.app.PurgeTombstones(context.Background(), time.Hour); err != nil || n != 1 {
			t.Fatalf("purge: %d, %v", n, err)
		}
		streams.Store(5)

		after := e.scrape(t)
		for _, c := range []struct {
			name   string
			labels []string
			delta  float64
		}{
			{"ferry_push_changes_total", []string{"model", "data.Note", "status", "applied"}, 3}, // n1, b1, n1 deleted
			{"ferry_push_changes_total", []string{"model", "data.Note", "status", "stale"}, 1},
			{"ferry_push_changes_total", []string{"model", "data.Note", "status", "rejected"}, 1},
			{"ferry_push_changes_total", []string{"model", metrics.UnknownModel, "status", "rejected"}, 1},
			{"ferry_push_rejections_total", []string{"model", "data.Note", "code", "invalid"}, 1},
			{"ferry_push_rejections_total", []string{"model", metrics.UnknownModel, "code", "unknown_model"}, 1},
			{"ferry_push_malformed_changes_total", nil, 1},
			{"ferry_push_contention_retries_total", nil, 2},
			{"ferry_pull_pages_total", nil, 2},
			{"ferry_pull_records_total", nil, 1},
			{"ferry_purge_runs_total", nil, 1},
			{"ferry_purge_tombstones_total", nil, 1},
			{"ferry_purge_failures_total", nil, 0},
			{"ferry_http_request_duration_seconds", []string{"route", "/sync/push", "method", "POST", "status", "200"}, 4},
			{"ferry_http_request_duration_seconds", []string{"route", "/sync/pull", "method", "GET", "status", "200"}, 2},
			{"ferry_http_request_duration_seconds", []string{"route", "/sync/pull", "method", "GET", "status", "401"}, 1},
			{"ferry_http_request_duration_seconds", []string{"route", metrics.UnmatchedRoute, "method", "GET", "status", "404"}, 1},
			{"ferry_live_streams", []string{"kind", "test"}, 2},
		} {
			got := after.value(c.name, c.labels...) - before.value(c.name, c.labels...)
			if got != c.delta {
				t.Errorf("%s%v moved by %g, want %g", c.name, c.labels, got, c.delta)
			}
		}
		if after.value("go_sql_max_open_connections", "db_name", "ferry") == 0 && after.families["go_sql_open_connections"] == nil {
			t.Errorf("no database pool metrics:\n%s", after.text)
		}
		if after.families["go_goroutines"] == nil || after.families["process_start_time_seconds"] == nil {
			t.Errorf("no Go runtime or process metrics")
		}
		// Nothing of a user, a path or a client-chosen model name leaks into labels.
		for _, leak := range []string{"ann", "bob", "evil", "/no/such"} {
			if strings.Contains(after.text, leak) {
				t.Errorf("the scrape names %q:\n%s", leak, grepLines(after.text, leak))
			}
		}
	})
}

func grepLines(text, s string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]metrics.Config{
		"buckets out of order": {Buckets: []float64{1, 0.5}},
		"stream without name":  {Streams: map[string]func() int{"": func() int { return 0 }}},
		"stream without func":  {Streams: map[string]func() int{"rxdb": nil}},
	} {
		if _, err := metrics.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "metrics: Config.") {
			t.Errorf("%s: %v, want an error naming the field", name, err)
		}
	}
}

func TestOnePluginPerApp(t *testing.T) {
	db := synctest.OpenSQLite(t)
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		app, err := framework.New(framework.Config{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		err = app.Use(m)
		if (i == 1) != (err != nil) {
			t.Fatalf("Use #%d: %v", i+1, err)
		}
	}
}

// TestCountersUnderConcurrentPushes: pushes and pulls of several users
// at once are each counted once, none lost or doubled.
func TestCountersUnderConcurrentPushes(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, func() int { return 0 })
		before := e.scrape(t)
		const users, perUser, pushes = 3, 2, 4
		errs := make(chan error, users*perUser*pushes*2)
		var wg sync.WaitGroup
		for u := range users {
			for w := range perUser {
				wg.Add(1)
				go func() {
					defer wg.Done()
					user := fmt.Sprintf("user%d", u)
					for p := range pushes {
						var chs []string
						for c := range 3 {
							chs = append(chs, note(fmt.Sprintf("w%dp%dc%d", w, p, c), "2026-06-01T11:00:00Z", "t", false))
						}
						for _, r := range []struct{ method, path, body string }{
							{"POST", "/sync/push", `{"changes":[` + strings.Join(chs, ",") + `]}`},
							{"GET", "/sync/pull?limit=5000", ""},
						} {
							req, _ := http.NewRequest(r.method, e.url+r.path, strings.NewReader(r.body))
							req.Header.Set("Authorization", "Bearer "+user)
							req.Header.Set("Content-Type", "application/json")
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								errs <- err
								return
							}
							b, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 || strings.Contains(string(b), `"rejected"`) {
								errs <- fmt.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, b)
							}
						}
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		after := e.scrape(t)
		n := float64(users * perUser * pushes)
		for _, c := range []struct {
			name   string
			labels []string
			delta  float64
		}{
			{"ferry_push_changes_total", []string{"status", "applied"}, 3 * n},
			{"ferry_http_request_duration_seconds", []string{"route", "/sync/push", "status", "200"}, n},
			{"ferry_http_request_duration_seconds", []string{"route", "/sync/pull", "status", "200"}, n},
			{"ferry_pull_pages_total", nil, n},
		} {
			if got := after.value(c.name, c.labels...) - before.value(c.name, c.labels...); got != c.delta {
				t.Errorf("%s%v moved by %g, want %g", c.name, c.labels, got, c.delta)
			}
		}
		if got := after.value("ferry_http_requests_in_flight"); got != 1 { // the scrape itself
			t.Errorf("requests in flight after all ended: %g, want 1 (the scrape)", got)
		}
	})
}
