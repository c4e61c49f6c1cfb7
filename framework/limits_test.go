package framework_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestRateLimitPerUser: with Config.RateLimit a user over the rate is
// answered 429 rate_limited, in the error shape, with Retry-After; other
// users are not affected, and the bucket refills with time.
func TestRateLimitPerUser(t *testing.T) {
	db := synctest.OpenSQLite(t)
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas, Now: clock, RateLimit: 1, RateBurst: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	app.SetAuthenticator(bearerUser)
	base := serveApp(t, app)
	pull := func(user string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/sync/pull", nil)
		req.Header.Set("Authorization", "Bearer user:"+user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var shape struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&shape)
		return resp.StatusCode, resp.Header, shape.Error.Code
	}
	for i := range 3 {
		if status, _, _ := pull("ann"); status != 200 {
			t.Fatalf("request %d within the burst: %d", i+1, status)
		}
	}
	status, h, code := pull("ann")
	if status != 429 || code != "rate_limited" || h.Get("Retry-After") != "1" {
		t.Fatalf("over the rate: %d %q Retry-After %q, want 429 rate_limited 1", status, code, h.Get("Retry-After"))
	}
	if status, _, _ := pull("bob"); status != 200 {
		t.Fatalf("another user: %d", status)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if status, _, _ := pull("ann"); status != 200 {
		t.Fatalf("a second later: %d", status)
	}
}

// shortText has a column PostgreSQL bounds (SQLite does not): a store
// refusing a change's content.
type shortText struct {
	bun.BaseModel `bun:"table:short_texts"`
	models.Base
	S string `bun:"s,type:varchar(8),notnull" json:"s"`
}

func (*shortText) ResourceType() string { return "test.Short" }
func (*shortText) Validate() error      { return nil }

// TestStoreContentErrorIsTheChangesRejection: a value the store refuses
// (here a string too long for a varchar(8) column on PostgreSQL) used to
// fail the whole push with a 500; it is now that change's rejection, and
// the other changes of the batch apply, over HTTP, on both stores.
func TestStoreContentErrorIsTheChangesRejection(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		schemas := fstest.MapFS{"short.json": {Data: []byte(`{"type":"object","properties":{"s":{"type":"string"}}}`)}}
		app, err := framework.New(framework.Config{DB: db, Schemas: schemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		framework.MustRegister[shortText](app, framework.ModelOptions{Schema: "short.json"})
		if err := app.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		app.SetAuthenticator(bearerUser)
		base := serveApp(t, app)
		status, body := postPush(t, base, `{"device_id":"d","changes":[
			{"model":"test.Short","uid":"ok1","modify_at":1764064800,"data":{"s":"short"}},
			{"model":"test.Short","uid":"long","modify_at":1764064800,"data":{"s":"`+strings.Repeat("x", 20)+`"}},
			{"model":"test.Short","uid":"ok2","modify_at":1764064800,"data":{"s":"short"}}]}`)
		if status != 200 {
			t.Fatalf("push: %d %s", status, body)
		}
		var ans struct {
			Results []framework.Result `json:"results"`
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
		if ans.Results[0].Status != "applied" || ans.Results[2].Status != "applied" {
			t.Fatalf("neighbours: %s", body)
		}
		long := ans.Results[1]
		wantLong := "applied" // SQLite keeps any length
		if models.IsPostgres(db) {
			wantLong = "rejected"
		}
		if long.Status != wantLong || wantLong == "rejected" && (len(long.Errors) != 1 || long.Errors[0].Path != "/data") {
			t.Fatalf("the long value: %+v, want %s", long, wantLong)
		}
		if strings.Contains(string(body), "varchar") || strings.Contains(string(body), "SQLSTATE") {
			t.Fatalf("the answer tells the store's internals: %s", body)
		}
	})
}
