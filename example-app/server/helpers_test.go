package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

// env is one example server over real HTTP on one store.
type env struct {
	t   *testing.T
	srv *server.Server
	url string
}

func newEnv(t *testing.T, db *bun.DB) *env {
	t.Helper()
	st := servertest.Start(t, db)
	return &env{t: t, srv: st.Server, url: st.URL}
}

func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) { fn(t, newEnv(t, db)) })
}

// user is a signed-up account.
type user struct {
	e     *env
	ID    string
	Token string
}

func (e *env) signUp(name string) *user {
	e.t.Helper()
	u := (&servertest.Env{URL: e.url}).SignUp(e.t, name)
	return &user{e: e, ID: u.ID, Token: u.Token}
}

// do sends a request and decodes the JSON answer into out (when not nil);
// it checks that every answer is JSON and every error has the protocol's
// shape.
func (e *env) do(method, path, token, body string, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req, out)
}

func (e *env) send(req *http.Request, out any) int {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		var shape struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &shape); err != nil || shape.Error.Code == "" || shape.Error.Message == "" {
			e.t.Fatalf("%s %s: status %d without the error shape: %s", req.Method, req.URL.Path, resp.StatusCode, raw)
		}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return resp.StatusCode
}

// Wire types as a client sees them.
type record struct {
	Model     string         `json:"model"`
	UID       string         `json:"uid"`
	Owner     string         `json:"owner"`
	ModifyAt  string         `json:"modify_at"`
	IsDeleted bool           `json:"is_deleted"`
	Version   int64          `json:"version"`
	Data      map[string]any `json:"data"`
}

type single struct {
	Status string  `json:"status"`
	Record *record `json:"record"`
}

type fieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

type apiError struct {
	Error struct {
		Code    string       `json:"code"`
		Message string       `json:"message"`
		Details []fieldError `json:"details"`
	} `json:"error"`
}

type result struct {
	OpID   *string      `json:"op_id"`
	Model  string       `json:"model"`
	UID    string       `json:"uid"`
	Status string       `json:"status"`
	Record *record      `json:"record"`
	Errors []fieldError `json:"errors"`
}

type pushAnswer struct {
	Results []result `json:"results"`
}

type pullAnswer struct {
	Changes []record `json:"changes"`
	Cursor  string   `json:"cursor"`
	HasMore bool     `json:"has_more"`
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (u *user) sync(change map[string]any) (int, single, apiError) {
	u.e.t.Helper()
	var raw json.RawMessage
	status := u.e.do("POST", "/sync/", u.Token, jsonBody(change), &raw)
	var s single
	var ae apiError
	if status == 200 {
		_ = json.Unmarshal(raw, &s)
	} else {
		_ = json.Unmarshal(raw, &ae)
	}
	return status, s, ae
}

func (u *user) push(changes ...map[string]any) []result {
	u.e.t.Helper()
	var out pushAnswer
	if status := u.e.do("POST", "/sync/push", u.Token, jsonBody(map[string]any{"device_id": "test", "changes": changes}), &out); status != 200 {
		u.e.t.Fatalf("push: status %d", status)
	}
	if len(out.Results) != len(changes) {
		u.e.t.Fatalf("push: %d results for %d changes", len(out.Results), len(changes))
	}
	return out.Results
}

// pullAll pulls every page from cursor and returns the changes and the
// final cursor.
func (u *user) pullAll(cursor string, limit int) ([]record, string) {
	u.e.t.Helper()
	var all []record
	for pages := 0; ; pages++ {
		if pages > 10000 {
			u.e.t.Fatal("pull never ended")
		}
		var out pullAnswer
		path := fmt.Sprintf("/sync/pull?cursor=%s", cursor)
		if limit > 0 {
			path += fmt.Sprintf("&limit=%d", limit)
		}
		if status := u.e.do("GET", path, u.Token, "", &out); status != 200 {
			u.e.t.Fatalf("pull: status %d", status)
		}
		all = append(all, out.Changes...)
		cursor = out.Cursor
		if !out.HasMore {
			return all, cursor
		}
	}
}

func note(uid, at, title string) map[string]any {
	return map[string]any{"model": "data.Note", "uid": uid, "modify_at": at, "data": map[string]any{"title": title}}
}

// latest reduces pulled changes to the last state per model/uid.
func latest(changes []record) map[string]record {
	out := map[string]record{}
	for _, c := range changes {
		out[c.Model+"/"+c.UID] = c
	}
	return out
}
