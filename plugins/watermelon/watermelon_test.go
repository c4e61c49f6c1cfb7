package watermelon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/watermelon"
	"github.com/gin-gonic/gin"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  watermelon.Config
		want string // part of the error; empty for success
	}{
		{"zero value", watermelon.Config{}, ""},
		{"one table", watermelon.Config{Tables: map[string]string{"tasks": "data.Task"}}, ""},
		{"bad table name", watermelon.Config{Tables: map[string]string{"my tasks": "data.Task"}}, `table name "my tasks"`},
		{"empty model", watermelon.Config{Tables: map[string]string{"tasks": ""}}, "model name is empty"},
		{"model twice", watermelon.Config{Tables: map[string]string{"a": "data.Task", "b": "data.Task"}}, "already backs"},
		{"relative path", watermelon.Config{Path: "wm"}, "Config.Path"},
		{"negative limit", watermelon.Config{PullLimit: -1}, "Config.PullLimit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := watermelon.New(c.cfg)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("New: %v, want %q", err, c.want)
			}
		})
	}
}

func TestSetupNeedsRegisteredModels(t *testing.T) {
	t.Parallel()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Schemas: fstest.MapFS{
		"task.json": {Data: []byte(`{"type":"object"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	p, _ := watermelon.New(watermelon.Config{Tables: map[string]string{"tasks": "data.Missing"}})
	if err := app.Use(p); err == nil || !strings.Contains(err.Error(), "data.Missing is not registered") {
		t.Fatalf("Use with an unregistered model: %v", err)
	}
	ok, _ := watermelon.New(watermelon.Config{})
	if err := ok.Expose("tasks", "data.Task"); err != nil {
		t.Fatal(err)
	}
	if err := ok.Expose("other", "data.Task"); err == nil {
		t.Fatal("a model may back one table only")
	}
	if ok.Name() != "watermelon" {
		t.Fatal(ok.Name())
	}
}

// serve builds an App with small limits, the plugin on table "tasks", and
// a test authenticator that trusts the X-User header.
func serve(t *testing.T, cfg framework.Config) *httptest.Server {
	t.Helper()
	cfg.DB = synctest.OpenSQLite(t)
	cfg.Schemas = fstest.MapFS{"task.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string"}}}`)}}
	_, hs := mountApp(t, cfg, map[string]framework.ModelOptions{"data.Task": {Schema: "task.json"}}, map[string]string{"tasks": "data.Task"})
	return hs
}

// mountApp builds an App of cfg with models, the plugin on tables (its
// table → model) and an authenticator that trusts the X-User header,
// migrates it and serves it under /sync.
func mountApp(t *testing.T, cfg framework.Config, models map[string]framework.ModelOptions, tables map[string]string) (*framework.App, *httptest.Server) {
	t.Helper()
	app, err := framework.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range models {
		app.MustRegisterSchema(name, opts)
	}
	app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
		if u := r.Header.Get("X-User"); u != "" {
			return framework.Principal{UserID: u}, nil
		}
		return framework.Principal{}, framework.ErrUnauthenticated
	}))
	p, err := watermelon.New(watermelon.Config{Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(p)
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	engine := gin.New()
	framework.UseProtocolErrors(engine)
	app.Mount(engine.Group("/sync"))
	hs := httptest.NewServer(engine)
	t.Cleanup(hs.Close)
	return app, hs
}

func call(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("X-User", "ann")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

type pulled struct {
	Changes map[string]struct {
		Updated []map[string]any `json:"updated"`
		Deleted []string         `json:"deleted"`
	} `json:"changes"`
	Timestamp int64 `json:"timestamp"`
}

// TestPushLargerThanMaxChanges: a push is applied in chunks of MaxChanges;
// a conflict in a later chunk leaves the earlier ones applied (documented)
// and lists only the conflicting record.
func TestPushLargerThanMaxChanges(t *testing.T) {
	t.Parallel()
	hs := serve(t, framework.Config{MaxChanges: 2, MaxBodyBytes: 4096})
	var p pulled
	call(t, "GET", hs.URL+"/sync/watermelon?last_pulled_at=null", "", &p)
	ts := p.Timestamp
	var created []string
	for i := 0; i < 5; i++ {
		created = append(created, fmt.Sprintf(`{"id":"c%d","title":"t%d"}`, i, i))
	}
	if st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, ts),
		`{"tasks":{"created":[`+strings.Join(created, ",")+`]}}`, nil); st != 200 {
		t.Fatalf("push of 5 with MaxChanges 2: %d", st)
	}
	call(t, "GET", hs.URL+"/sync/watermelon?last_pulled_at=null", "", &p)
	if n := len(p.Changes["tasks"].Updated); n != 5 {
		t.Fatalf("%d of 5 applied", n)
	}
	// c4 changes on the server after the device's pull (at ts).
	call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, p.Timestamp), `{"tasks":{"updated":[{"id":"c4","title":"server"}]}}`, nil)
	var ae struct {
		Error framework.Error `json:"error"`
	}
	st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, p.Timestamp),
		`{"tasks":{"updated":[{"id":"c0","title":"x"},{"id":"c1","title":"x"},{"id":"c4","title":"x"}]}}`, &ae)
	if st != 409 || len(ae.Error.Details) != 1 || ae.Error.Details[0].Path != "/tasks/c4" {
		t.Fatalf("conflict in the second chunk: %d %+v", st, ae)
	}
	// Too large a body is refused before it is read.
	big := `{"tasks":{"created":[{"id":"big","title":"` + strings.Repeat("x", 5000) + `"}]}}`
	if st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, p.Timestamp), big, &ae); st != 413 || ae.Error.Code != "too_large" {
		t.Fatalf("big body: %d %+v", st, ae)
	}
}
