package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

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
		`{"changes":[{"model":"data.Note","uid":"n","modify_at":0,"data":{"title":"a\u0000b"}},{"model":"data.Note","uid":"m","modify_at":0,"data":{"title":"ok","tags":["\\u0000"]}}]}`,
		`{"changes":[{"model":"data.Setting","uid":"s","modify_at":0,"data":{"key":"k","value":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}]}`,
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
	for _, s := range []string{"", "cursor=&limit=10", "limit=-1", "models=data.Note,data.User&limit=2", "cursor=eyJ2IjoxfQ", "limit=1e3",
		"models=data.Note,data.Note,data.Note", "models=" + strings.Repeat("data.Note,", 200), "models=,,,", "models=data.Note%00"} {
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

// FuzzPullBody is FuzzPullQuery for POST /sync/pull's JSON body.
func FuzzPullBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"cursor":"","limit":10}`, `{"limit":-1}`, `{"models":["data.Note","data.User"],"limit":2}`,
		`{"cursor":"eyJ2IjoxfQ"}`, `{"limit":1e3}`, `{"limit":1e400}`, `{"spaces":["~","x"]}`, `{"subscriptions":["tasks_of_list(l1)"]}`,
		`{"models":["data.Note"],"subscriptions":["tasks_of_list(l1)"]}`, `{"spaces":[null]}`, `[]`, `{"device_id":7}`, `{"cursor":"AgA"}`} {
		f.Add(s)
	}
	h, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/sync/pull", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, body)
	})
}

// FuzzStringsRoundTrip puts one fuzzed string everywhere a record holds
// text (a typed model's text and JSON columns, the generic table's data,
// an object key) and pushes it to the example app on both stores: each
// change is either applied and pulled back exactly as sent, or rejected
// with a JSON pointer (U+0000 is); never a 500, and never a value the
// store changed without a word (bun's JSON quoting once turned the text
// `\\u0000` into a NUL on SQLite and failed the push on PostgreSQL).
func FuzzStringsRoundTrip(f *testing.F) {
	for _, s := range []string{"plain", `a\u0000b`, "a\x00b", `\\`, `'; DROP TABLE notes; --`, "\u2028", "\xff", `"quoted"`, "日本", `\`, "x\x00", `\\u0000`, "{}", "$1", "?"} {
		f.Add(s)
	}
	type target struct {
		h     http.Handler
		token string
	}
	var targets []target
	for _, kind := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		st := servertest.Start(f, synctest.Open(f, kind))
		targets = append(targets, target{st.Server.Handler(), st.SignUp(f, "fuzz").Token})
	}
	n := 0
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD") // JSON carries text; invalid bytes arrive as U+FFFD
		}
		n++
		uid := fmt.Sprintf("f%d", n)
		title := s
		if strings.TrimSpace(title) == "" || utf8.RuneCountInString(title) > 200 {
			title = "t" + s[:min(len(s), 100)]
		}
		tag := s[:min(len(s), 100)]
		for !utf8.ValidString(tag) {
			tag = tag[:len(tag)-1]
		}
		changes := []map[string]any{
			{"model": "data.Note", "uid": uid, "modify_at": "2026-11-25T10:00:00Z", "data": map[string]any{"title": title, "tags": []string{tag}}},
			{"model": "data.Setting", "uid": uid, "modify_at": "2026-11-25T10:00:00Z", "data": map[string]any{"key": "k", "value": map[string]any{s: s}}},
		}
		body, _ := json.Marshal(map[string]any{"device_id": "d", "changes": changes})
		for _, tg := range targets {
			req := httptest.NewRequest("POST", "/sync/push", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tg.token)
			rec := httptest.NewRecorder()
			tg.h.ServeHTTP(rec, req)
			checkAnswer(t, rec, string(body))
			if rec.Code != 200 {
				t.Fatalf("push %q: %d %s", s, rec.Code, rec.Body)
			}
			var ans pushAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				t.Fatal(err)
			}
			for i, r := range ans.Results {
				switch {
				case r.Status == "rejected" && len(r.Errors) > 0 && strings.HasPrefix(r.Errors[0].Path, "/data"):
					if !strings.ContainsRune(s, 0) {
						t.Fatalf("%q rejected without a NUL: %+v", s, r.Errors)
					}
				case r.Status == "applied":
					sent, _ := json.Marshal(changes[i]["data"])
					got, _ := json.Marshal(r.Record.Data)
					var a, b any
					_ = json.Unmarshal(sent, &a)
					_ = json.Unmarshal(got, &b)
					if !reflect.DeepEqual(a, b) && changes[i]["model"] == "data.Setting" {
						t.Fatalf("%q: stored %s, sent %s", s, got, sent)
					}
					if changes[i]["model"] == "data.Note" && (r.Record.Data["title"] != title || !reflect.DeepEqual(r.Record.Data["tags"], []any{tag})) {
						t.Fatalf("%q: stored %s, sent %s", s, got, sent)
					}
				default:
					t.Fatalf("%q: %+v", s, r)
				}
			}
			// What a pull hands out is what was stored.
			req = httptest.NewRequest("GET", "/sync/pull?limit=5000&models=data.Note,data.Setting", nil)
			req.Header.Set("Authorization", "Bearer "+tg.token)
			rec = httptest.NewRecorder()
			tg.h.ServeHTTP(rec, req)
			var page pullAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != 200 {
				t.Fatalf("pull: %d %s", rec.Code, rec.Body)
			}
			for _, c := range page.Changes {
				if c.UID != uid {
					continue
				}
				for i, r := range ans.Results {
					if r.Status == "applied" && r.Model == c.Model && !reflect.DeepEqual(r.Record.Data, c.Data) {
						t.Fatalf("%q: change %d pushed as %v, pulled as %v", s, i, r.Record.Data, c.Data)
					}
				}
			}
		}
	})
}
