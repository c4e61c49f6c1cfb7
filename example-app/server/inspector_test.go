package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// TestInspectorInTheExampleApp: FERRY_INSPECTOR_TOKEN turns the inspector
// on at /inspector/; a user's note and their device show to the admin
// alone; without the variable there is no inspector; a short token stops
// the server at start.
func TestInspectorInTheExampleApp(t *testing.T) {
	const token = "example-app-inspector-token"
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		t.Setenv("FERRY_INSPECTOR_TOKEN", token)
		cfg := servertest.Config(t)
		cfg.InspectorToken = server.ConfigFromEnv().InspectorToken
		st := servertest.StartWith(t, db, cfg)
		e := &env{t: t, srv: st.Server, url: st.URL}
		ann := e.signUp("ann")
		if code := e.do("POST", "/sync/push", ann.Token, `{"device_id":"ann-tablet","changes":[
			{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"Seen by the inspector","body":""}}]}`, nil); code != 200 {
			t.Fatalf("push: %d", code)
		}
		page := func(auth func(*http.Request)) (int, string) {
			req, _ := http.NewRequest("GET", e.url+"/inspector/user?"+url.Values{"id": {ann.ID}}.Encode(), nil)
			auth(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, html := page(func(r *http.Request) { r.SetBasicAuth("reviewer", token) })
		if code != 200 || !strings.Contains(html, "Seen by the inspector") || !strings.Contains(html, `data-device="ann-tablet"`) {
			t.Fatalf("the admin's page: %d %s", code, html)
		}
		if code, body := page(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+ann.Token) }); code != 401 || strings.Contains(body, "Seen by") {
			t.Errorf("ann's own token: %d %s", code, body)
		}
	})
	t.Run("off without the variable", func(t *testing.T) {
		e := servertest.Start(t, synctest.OpenSQLite(t))
		resp, err := http.Get(e.URL + "/inspector/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET /inspector/ without FERRY_INSPECTOR_TOKEN: %d", resp.StatusCode)
		}
	})
	t.Run("a short token is refused at start", func(t *testing.T) {
		cfg := servertest.Config(t)
		cfg.InspectorToken = "short"
		if _, err := server.New(context.Background(), cfg, synctest.OpenSQLite(t)); err == nil || !strings.Contains(err.Error(), "FERRY_INSPECTOR_TOKEN") {
			t.Errorf("want an error naming FERRY_INSPECTOR_TOKEN, got %v", err)
		}
	})
}
