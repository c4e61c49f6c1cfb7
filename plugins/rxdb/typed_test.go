package rxdb_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// item is a typed model (its own table), to check the adapter on plan A.
type item struct {
	bun.BaseModel `bun:"table:rx_items"`
	models.Base

	Title string `bun:"title,notnull" json:"title"`
	Count int    `bun:"count,notnull" json:"count"`
}

func (*item) ResourceType() string { return "test.Item" }

func (i *item) Validate() error {
	if i.Title == "" {
		return framework.Invalid("/data/title", "must not be blank")
	}
	return nil
}

// TestTypedModel: push, conflicts, refused rows and deletions of a typed
// model, on both stores.
func TestTypedModel(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Schemas: fstest.MapFS{
			"item.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string"},"count":{"type":"integer"}}}`)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		framework.MustRegister[item](app, framework.ModelOptions{Schema: "item.json"})
		app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
			return framework.Principal{UserID: "ann"}, nil
		}))
		p, err := rxdb.New(rxdb.Config{Collections: map[string]string{"items": "test.Item"}})
		if err != nil {
			t.Fatal(err)
		}
		app.MustUse(p)
		if err := app.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		gin.SetMode(gin.TestMode)
		engine := gin.New()
		app.Mount(engine.Group("/sync"))
		hs := httptest.NewServer(engine)
		defer hs.Close()

		push := func(body string) []map[string]any {
			t.Helper()
			resp, err := http.Post(hs.URL+"/sync/rxdb/items/push", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out []map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
				t.Fatalf("push %s: %d %v", body, resp.StatusCode, err)
			}
			return out
		}
		if c := push(`[{"newDocumentState":{"id":"i1","title":"one","count":1,"_deleted":false}}]`); len(c) != 0 {
			t.Fatalf("create: %v", c)
		}
		c := push(`[{"newDocumentState":{"id":"i1","title":"","count":2,"_deleted":false},"assumedMasterState":{"id":"i1","title":"one","count":1,"_deleted":false}},
			{"newDocumentState":{"id":"i2","title":"","_deleted":false}},
			{"newDocumentState":{"id":"i3","_deleted":true}}]`)
		if len(c) != 2 || c[0]["title"] != "one" || c[1]["id"] != "i2" || c[1]["_deleted"] != true { // i3's deletion is no conflict
			t.Fatalf("refused rows: %v", c)
		}
		resp, err := http.Get(hs.URL + "/sync/rxdb/items/pull?seq=0")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pulled struct {
			Documents []map[string]any `json:"documents"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&pulled); err != nil {
			t.Fatal(err)
		}
		got := map[string]map[string]any{}
		for _, d := range pulled.Documents {
			got[d["id"].(string)] = d
		}
		// The refused i2 was never stored: the conflict answer told the
		// client it does not exist, and the pull has nothing of it.
		if len(got) != 2 || got["i1"]["count"] != float64(1) || got["i2"] != nil || got["i3"]["_deleted"] != true {
			t.Fatalf("pulled: %v", pulled.Documents)
		}
	})
}
