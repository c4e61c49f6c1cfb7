package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
)

// fuzzServer builds the example app on SQLite and signs a user up.
func fuzzServer(f *testing.F) (http.Handler, string) {
	st := servertest.Start(f, synctest.OpenSQLite(f))
	return st.Server.Handler(), st.SignUp(f, "fuzz").Token
}

// checkAnswer fails on a 500 or an answer outside the protocol's shapes.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, input, rec.Body)
	}
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("non-JSON answer %q for %q", rec.Body, input)
	}
	if rec.Code >= 300 {
		e, _ := v["error"].(map[string]any)
		if e == nil || e["code"] == nil || e["message"] == nil {
			t.Fatalf("status %d without the error shape for %q: %s", rec.Code, input, rec.Body)
		}
	}
}

func fuzzPost(f *testing.F, path string, seeds []string) {
	for _, s := range seeds {
		f.Add(s)
	}
	h, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, body)
	})
}

func FuzzPushBody(f *testing.F) {
	fuzzPost(f, "/sync/push", []string{
		`{"device_id":"d","changes":[{"op_id":"1","model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"x","tags":["a"]}}]}`,
		`{"changes":[{"model":"data.Setting","uid":"s","modify_at":1764064800.5,"data":{"key":"k","value":[1,{"a":null}]}},{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","is_deleted":true}]}`,
		`{"changes":[{"model":"data.User","uid":"x","modify_at":"2026-11-25T10:00:00Z","data":{"name":"n","email":"e@example.com"}}]}`,
		`{"changes":[null, 1, "x", {"model":7}]}`,
		`{"changes":{}}`, `[]`, `{`, ``,
	})
}

func FuzzSingleBody(f *testing.F) {
	fuzzPost(f, "/sync/", []string{
		`{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"x"}}`,
		`{"model":"data.Note","uid":"n1","modify_at":1e308,"data":{"title":"x"}}`,
		`{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00+05:00","data":null}`,
		`{"model":"data.Setting","uid":"` + strings.Repeat("a", 70) + `","modify_at":0,"data":{"key":""}}`,
		`"just a string"`, `null`,
	})
}

func FuzzPullQuery(f *testing.F) {
	for _, s := range []string{"", "cursor=&limit=10", "limit=-1", "models=data.Note,data.User&limit=2", "cursor=eyJ2IjoxfQ", "limit=1e3"} {
		f.Add(s)
	}
	h, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/sync/pull", nil)
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, query)
	})
}
