package server_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// checkAdapterAnswer fails on a 500 or a non-JSON answer, and on an error
// answer without the protocol's error shape. (Success answers of the
// adapters may be arrays.)
func checkAdapterAnswer(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, input, rec.Body)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("non-JSON answer %q for %q", rec.Body, input)
	}
	if rec.Code >= 300 {
		obj, _ := v.(map[string]any)
		e, _ := obj["error"].(map[string]any)
		if e == nil || e["code"] == nil || e["message"] == nil {
			t.Fatalf("status %d without the error shape for %q: %s", rec.Code, input, rec.Body)
		}
	}
}

func FuzzWatermelonPush(f *testing.F) {
	for _, s := range []string{
		`{"tasks":{"created":[{"id":"w1","title":"x","body":"","count":1,"done":false,"_status":"created","_changed":""}],"updated":[],"deleted":[]}}`,
		`{"tasks":{"created":[],"updated":[{"id":"w1","title":"y","count":1.5}],"deleted":["w1","w2",7,null]}}`,
		`{"tasks":{"created":[null,1,"x",{"id":""},{"id":"bad id"},{"id":"w3","title":{"a":[]}}]}}`,
		`{"tasks":null}`, `{"tasks":[]}`, `{"other":{}}`, `[]`, `null`, `{`, ``,
	} {
		f.Add("1", s)
	}
	f.Add("null", `{"tasks":{"deleted":["w1"]}}`)
	h, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, since, body string) {
		req := httptest.NewRequest("POST", "/sync/watermelon", strings.NewReader(body))
		req.URL.RawQuery = "last_pulled_at=" + since
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAdapterAnswer(t, rec, since+" "+body)
	})
}

func FuzzRxDBPush(f *testing.F) {
	for _, s := range []string{
		`[{"newDocumentState":{"id":"r1","title":"x","body":"","count":0,"done":false,"_deleted":false}}]`,
		`[{"assumedMasterState":{"id":"r1","title":"x","_deleted":false},"newDocumentState":{"id":"r1","title":"y","_deleted":true,"_meta":{"lwt":1},"_rev":"1-a","_attachments":{}}}]`,
		`[{"newDocumentState":{"id":"r2","title":7}},{"newDocumentState":{"id":"bad id","title":"x"}}]`,
		`[null]`, `[{}]`, `[{"newDocumentState":null}]`, `{}`, `[]`, `{`, ``,
	} {
		f.Add(s)
	}
	h, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/sync/rxdb/tasks/push", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAdapterAnswer(t, rec, body)
	})
}

func FuzzAdapterPullQuery(f *testing.F) {
	for _, s := range []string{
		"watermelon?last_pulled_at=null&schema_version=1&migration=null",
		"watermelon?last_pulled_at=3&limit=2&migration=%7B%22from%22%3A1%2C%22tables%22%3A%5B%22tasks%22%5D%7D",
		"watermelon?last_pulled_at=9223372036854775807",
		"rxdb/tasks/pull?seq=0&limit=10", "rxdb/tasks/pull?seq=-1", "rxdb/tasks/pull?seq=99999999999&limit=1e3",
		"rxdb/nope/pull",
	} {
		f.Add(s)
	}
	h, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, pathAndQuery string) {
		path, query, _ := strings.Cut(pathAndQuery, "?")
		if strings.Contains(path, "stream") {
			return // streams do not end
		}
		req := httptest.NewRequest("GET", "/sync/", nil)
		req.URL.Path += path
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 404 || rec.Code == 405 || rec.Code == 301 || rec.Code == 307 {
			return // the router's own answers are covered elsewhere
		}
		checkAdapterAnswer(t, rec, pathAndQuery)
	})
}
