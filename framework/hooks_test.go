package framework_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// bearerUser authenticates "Bearer user:<id>" for tests.
var bearerUser = framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer user:")
	if !ok || id == "" {
		return framework.Principal{}, framework.ErrUnauthenticated
	}
	return framework.Principal{UserID: id}, nil
})

// serveApp mounts app on a test server and returns its URL.
func serveApp(t *testing.T, app *framework.App) string {
	t.Helper()
	gin.SetMode(gin.TestMode)
	engine := gin.New()
	framework.UseProtocolErrors(engine)
	app.Mount(engine.Group("/sync"))
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return srv.URL
}

// postPush sends body to POST /sync/push as user ann.
func postPush(t *testing.T, base, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/sync/push", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer user:ann")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, answer
}

func TestHooksOverHTTP(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		app.SetAuthenticator(bearerUser)
		var validated, applied, committed, committedRecords atomic.Int32
		app.OnValidate().BindFunc(func(e *framework.ValidateEvent) error {
			validated.Add(1)
			return e.Next()
		})
		app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "test.apply", Func: func(e *framework.ApplyEvent) error {
			applied.Add(1)
			switch e.Record.UID {
			case "veto":
				return framework.Invalid("/data/n", "vetoed")
			case "mod":
				e.Record.Data = json.RawMessage(`{ "s" : "modified",  "n":42 }`) // stored canonical
			case "mod-bad":
				e.Record.Data = json.RawMessage(`{"n":"not a number"}`) // against the schema
			case "fail-after":
				if err := e.Next(); err != nil {
					return err
				}
				return framework.ErrForbidden // after the write: must be undone
			}
			return e.Next()
		}})
		app.OnCommit().BindFunc(func(e *framework.CommitEvent) error {
			committed.Add(1)
			committedRecords.Add(int32(len(e.Records)))
			return errors.New("a failing after-commit hook is only logged")
		})
		base := serveApp(t, app)
		push := func(body string) (int, map[string]any) {
			status, answer := postPush(t, base, body)
			var out map[string]any
			_ = json.Unmarshal(answer, &out)
			return status, out
		}
		ch := func(uid, at string, n int) string {
			return `{"model":"test.Item","uid":"` + uid + `","modify_at":"` + at + `","data":{"n":` + string(rune('0'+n)) + `}}`
		}
		st, out := push(`{"changes":[` + strings.Join([]string{
			ch("ok", "2026-01-01T00:00:00Z", 1), ch("veto", "2026-01-01T00:00:00Z", 1),
			ch("mod", "2026-01-01T00:00:00Z", 1), ch("fail-after", "2026-01-01T00:00:00Z", 1),
			`{"model":"test.Unknown","uid":"u","modify_at":0,"data":{}}`,
			ch("mod-bad", "2026-01-01T00:00:00Z", 1),
		}, ",") + `]}`)
		if st != 200 {
			t.Fatalf("push: %d %v", st, out)
		}
		results := out["results"].([]any)
		status := func(i int) string { return results[i].(map[string]any)["status"].(string) }
		if status(0) != "applied" || status(1) != "rejected" || status(2) != "applied" || status(3) != "forbidden" || status(4) != "rejected" || status(5) != "rejected" {
			t.Fatalf("statuses: %v", results)
		}
		if errs := results[5].(map[string]any)["errors"].([]any); errs[0].(map[string]any)["path"] != "/data/n" {
			t.Fatalf("an apply hook's invalid data: %v", errs)
		}
		if data := results[2].(map[string]any)["record"].(map[string]any)["data"].(map[string]any); data["s"] != "modified" {
			t.Fatalf("modified data not stored: %v", data)
		}
		if rec, err := app.Get(context.Background(), "ann", "test.Item", "mod"); err != nil || string(rec.Data) != `{"n":42,"s":"modified"}` {
			t.Fatalf("an apply hook's data is stored as %s (%v), not in canonical form", rec.Data, err)
		}
		if validated.Load() != 5 || applied.Load() != 5 || committed.Load() != 1 || committedRecords.Load() != 2 {
			t.Fatalf("hooks fired: validate %d apply %d commit %d (%d records)", validated.Load(), applied.Load(), committed.Load(), committedRecords.Load())
		}
		// A push that only loses conflicts commits nothing and fires no commit hook.
		st, out = push(`{"changes":[` + ch("ok", "2025-01-01T00:00:00Z", 2) + `]}`)
		if st != 200 || out["results"].([]any)[0].(map[string]any)["status"] != "stale" || committed.Load() != 1 {
			t.Fatalf("stale push: %v, commits %d", out, committed.Load())
		}
		// What the vetoed and undone writes left behind: nothing.
		req, _ := http.NewRequest("GET", base+"/sync/pull", nil)
		req.Header.Set("Authorization", "Bearer user:ann")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page framework.PullResponse
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, r := range page.Changes {
			uids = append(uids, r.UID)
		}
		if strings.Join(uids, ",") != "ok,mod" {
			t.Fatalf("stored: %v", uids)
		}
	})
}

// TestValidateHookDataIsChecked: when an OnValidate hook replaces a
// change's data, the schema and the typed model check the replacement,
// not the data the HTTP layer decoded first.
func TestValidateHookDataIsChecked(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		if err := framework.Register[tally](app, framework.ModelOptions{Schema: "item.json"}); err != nil {
			t.Fatal(err)
		}
		if err := app.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		app.SetAuthenticator(bearerUser)
		app.OnValidate().BindFunc(func(e *framework.ValidateEvent) error {
			switch {
			case strings.HasPrefix(e.Change.UID, "spoil"):
				e.Change.Data = json.RawMessage(`{"n":"not a number"}`)
			case strings.HasPrefix(e.Change.UID, "mend"):
				e.Change.Data = json.RawMessage(`{"n":7,"s":"mended"}`)
			}
			return e.Next()
		})
		base := serveApp(t, app)
		var changes []string
		for _, model := range []string{"test.Item", "test.Tally"} {
			changes = append(changes,
				`{"model":"`+model+`","uid":"spoil","modify_at":"2026-01-01T00:00:00Z","data":{"n":1}}`,
				`{"model":"`+model+`","uid":"mend","modify_at":"2026-01-01T00:00:00Z","data":{"n":"x"}}`)
		}
		_, answer := postPush(t, base, `{"changes":[`+strings.Join(changes, ",")+`]}`)
		var out struct {
			Results []struct {
				Status string `json:"status"`
				Record *struct {
					Data map[string]any `json:"data"`
				} `json:"record"`
			} `json:"results"`
		}
		if err := json.Unmarshal(answer, &out); err != nil || len(out.Results) != 4 {
			t.Fatalf("answer: %v %+v", err, out)
		}
		for i, r := range out.Results {
			switch {
			case i%2 == 0 && r.Status != "rejected":
				t.Errorf("change %d: spoiled data answered %s", i, r.Status)
			case i%2 == 1 && (r.Status != "applied" || r.Record.Data["s"] != "mended"):
				t.Errorf("change %d: mended data answered %s %+v", i, r.Status, r.Record)
			}
		}
	})
}
