package rxdb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// TestAssumedStateMergesFieldByField: two RxDB devices that hold one
// document edit different fields of it (one removes a field) and push in
// turn, both assuming the same master state. Under FieldLWW both edits
// stand, the second push answering the merged document (so that RxDB's
// conflict handler takes it; a row written as sent answers nothing); under last-writer-wins
// the second push is still a conflict answered with the server's
// document. An edit that loses under FieldLWW comes back as a conflict;
// under Automerge, items two devices added to one array are both kept.
func TestAssumedStateMergesFieldByField(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		var tick atomic.Int64
		schema := []byte(`{"type":"object","properties":{"title":{"type":"string"},"body":{"type":"string"},"tags":{"type":["string","array"]}}}`)
		app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Schemas: fstest.MapFS{"doc.json": {Data: schema}},
			Now:     func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Millisecond) }})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("data.Doc", framework.ModelOptions{Schema: "doc.json", Policy: policies.FieldLWW{}})
		app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "doc.json"})
		app.MustRegisterSchema("data.Board", framework.ModelOptions{Schema: "doc.json", Policy: policies.Automerge{}})
		app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
			return framework.Principal{UserID: "ann"}, nil
		}))
		p, err := rxdb.New(rxdb.Config{Collections: map[string]string{"docs": "data.Doc", "tasks": "data.Task", "boards": "data.Board"}})
		if err != nil {
			t.Fatal(err)
		}
		app.MustUse(p)
		t.Cleanup(func() { p.Close() })
		if err := app.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		gin.SetMode(gin.TestMode)
		engine := gin.New()
		app.Mount(engine.Group("/sync"))
		hs := httptest.NewServer(engine)
		t.Cleanup(hs.Close)

		do := func(method, path, body string, out any) {
			t.Helper()
			req, _ := http.NewRequest(method, hs.URL+path, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || json.Unmarshal(raw, out) != nil {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
			}
		}
		push := func(coll, rows string) []map[string]any {
			t.Helper()
			var conflicts []map[string]any
			do("POST", "/sync/rxdb/"+coll+"/push", rows, &conflicts)
			return conflicts
		}
		doc := func(coll, id string) map[string]any {
			t.Helper()
			var b struct{ Documents []map[string]any }
			do("GET", "/sync/rxdb/"+coll+"/pull", "", &b)
			for _, d := range b.Documents {
				if d["id"] == id {
					return d
				}
			}
			t.Fatalf("%s/%s not pulled", coll, id)
			return nil
		}
		const original = `{"id":"d1","title":"t0","body":"b0","tags":"x","_deleted":false}`
		for _, coll := range []string{"docs", "tasks"} {
			if c := push(coll, `[{"newDocumentState":`+original+`}]`); len(c) != 0 {
				t.Fatalf("create in %s: %v", coll, c)
			}
			// A edits the title; B, from the same state, the body and
			// removes the tags.
			if c := push(coll, `[{"assumedMasterState":`+original+`,"newDocumentState":{"id":"d1","title":"tA","body":"b0","tags":"x","_deleted":false}}]`); len(c) != 0 {
				t.Fatalf("A's push to %s: %v", coll, c)
			}
			c := push(coll, `[{"assumedMasterState":`+original+`,"newDocumentState":{"id":"d1","title":"t0","body":"bB","_deleted":false}}]`)
			got := doc(coll, "d1")
			switch coll {
			case "docs":
				// Applied, merged: the merged document comes back for
				// RxDB's conflict handler to take.
				if len(c) != 1 || c[0]["title"] != "tA" || c[0]["body"] != "bB" || c[0]["tags"] != nil {
					t.Fatalf("B's push to docs must answer the merged doc: %v", c)
				}
				if got["title"] != "tA" || got["body"] != "bB" || got["tags"] != nil {
					t.Fatalf("merged doc: %v", got)
				}
			case "tasks":
				if len(c) != 1 || c[0]["title"] != "tA" || c[0]["body"] != "b0" {
					t.Fatalf("B's push to tasks must conflict with A's state: %v", c)
				}
				if got["title"] != "tA" || got["body"] != "b0" {
					t.Fatalf("task after the conflict: %v", got)
				}
			}
		}

		// Under Automerge, tags two devices added offline to one array
		// are both kept.
		const board = `{"id":"b1","title":"t0","tags":["a"],"_deleted":false}`
		push("boards", `[{"newDocumentState":`+board+`}]`)
		push("boards", `[{"assumedMasterState":`+board+`,"newDocumentState":{"id":"b1","title":"t0","tags":["a","x"],"_deleted":false}}]`)
		if c := push("boards", `[{"assumedMasterState":`+board+`,"newDocumentState":{"id":"b1","title":"t0","tags":["a","y"],"_deleted":false}}]`); len(c) != 1 {
			t.Fatalf("B's board push must answer the merged doc: %v", c)
		}
		if got, _ := json.Marshal(doc("boards", "b1")["tags"]); string(got) != `["a","x","y"]` {
			t.Fatalf("board tags: %s", got)
		}

		// A native write stamped a minute ahead wins the title; a device's
		// later edit of it loses and is answered with the server's doc.
		var res struct{ Results []struct{ Status string } }
		future := base.Add(time.Minute).Format(framework.TimeFormat)
		do("POST", "/sync/push", `{"changes":[{"model":"data.Doc","uid":"d1","modify_at":"`+future+`","data":{"title":"native"},"fields_modify_at":{}}]}`, &res)
		if len(res.Results) != 1 || res.Results[0].Status != "applied" {
			t.Fatalf("native push: %+v", res)
		}
		server := doc("docs", "d1")
		assumed, _ := json.Marshal(server)
		if server["title"] != "native" || server["body"] != "bB" {
			t.Fatalf("after the native write: %v", server)
		}
		c := push("docs", `[{"assumedMasterState":`+string(assumed)+`,"newDocumentState":{"id":"d1","title":"mine","body":"bB","_deleted":false}}]`)
		if len(c) != 1 || c[0]["title"] != "native" {
			t.Fatalf("a losing edit must conflict with the server's doc: %v", c)
		}
		// The device's conflict handler takes it and edits the body: that
		// applies, the native title kept.
		if c := push("docs", `[{"assumedMasterState":`+string(assumed)+`,"newDocumentState":{"id":"d1","title":"native","body":"mine","_deleted":false}}]`); len(c) != 0 {
			t.Fatalf("body edit after the conflict: %v", c)
		}
		if got := doc("docs", "d1"); got["title"] != "native" || got["body"] != "mine" {
			t.Fatalf("final doc: %v", got)
		}
	})
}
