package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// TestOpenAPI checks /sync/openapi.json against the example server's real
// handlers: it is valid OpenAPI 3.1 (kin-openapi), every route gin has
// under /sync is described (a route added without its description fails
// here), and a session touching every described operation — successes
// and errors, the protocol's routes and the plugins' — is answered as
// described, each request and answer checked by openapi3filter.
func TestOpenAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		doc := synctest.LoadOpenAPI(t, e.url, "/sync")
		routes := e.srv.Handler().(*gin.Engine).Routes()
		if missing := synctest.UndescribedRoutes(doc, routes, "/sync"); len(missing) > 0 {
			t.Fatalf("routes without a description in /sync/openapi.json:\n%s", strings.Join(missing, "\n"))
		}
		check := synctest.NewOpenAPIChecker(t, doc, nil)
		s := &apiSession{t: t, e: e, c: check.Client(), token: e.signUp("Olga").Token}
		s.session()
		if missing := uncovered(doc, check.Seen()); len(missing) > 0 {
			t.Errorf("described operations the session never called (extend it):\n%s", strings.Join(missing, "\n"))
		}
	})
}

// uncovered lists the operations of doc that seen has no answer of.
func uncovered(doc *openapi3.T, seen map[string]int) []string {
	called := map[string]bool{}
	for k := range seen {
		f := strings.Fields(k)
		// The router takes /x/ for /x (tus's creation is both).
		called[f[0]+" "+strings.TrimSuffix(f[1], "/")] = true
	}
	var out []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if !called[m+" "+strings.TrimSuffix(p, "/")] {
				out = append(out, m+" "+p)
			}
		}
	}
	sort.Strings(out)
	return out
}

type apiSession struct {
	t     *testing.T
	e     *env
	c     *http.Client
	token string
}

// call sends a request through the checker and returns the status and
// the body (not read for event streams).
func (s *apiSession) call(method, path, body string, header ...string) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.e.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, resp.Header, nil
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (s *apiSession) want(status int, method, path, body string, header ...string) []byte {
	s.t.Helper()
	got, _, b := s.call(method, path, body, header...)
	if got != status {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, b)
	}
	return b
}

func (s *apiSession) session() {
	at := time.Now().UTC().Format(time.RFC3339Nano)
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	s.want(200, "GET", "/sync/openapi.json", "")

	// The core protocol, with shared spaces.
	s.want(200, "POST", "/sync/", fmt.Sprintf(`{"model":"data.Note","uid":"n1","modify_at":%q,"data":{"title":"one"}}`, at))
	s.want(400, "POST", "/sync/", `{"model":"data.Nope","uid":"n1","modify_at":1700000000}`)
	s.want(200, "POST", "/sync/push", fmt.Sprintf(`{"device_id":"d1","changes":[
		{"op_id":"o1","model":"data.Note","uid":"n1","modify_at":%q,"data":{"title":"older"}},
		{"op_id":"o2","model":"data.Note","uid":"n2","modify_at":%q,"data":{"title":7}},
		{"model":"ferry.Space","uid":"sp1","space":"sp1","modify_at":%q,"data":{"name":"home"}},
		{"model":"data.List","uid":"l1","space":"sp1","modify_at":%q,"data":{"name":"groceries"}},
		{"model":"data.Task","uid":"t1","space":"sp1","modify_at":%q,"data":{"list":"l1","title":"milk","done":false}},
		{"model":"data.Note","uid":"n3","space":"not a uid","modify_at":%q,"data":{"title":"x"}}]}`, old, at, at, at, at, at))
	s.want(400, "POST", "/sync/push", `{"changes":"no"}`)
	s.want(415, "POST", "/sync/push", `x`, "Content-Type", "text/plain")
	s.want(200, "GET", "/sync/pull?limit=2&device_id=d1", "")
	s.want(200, "GET", "/sync/pull?spaces=~,sp1", "")
	s.want(200, "GET", "/sync/pull?subscription=tasks_of_list(l1)", "")
	s.want(200, "GET", "/sync/pull?models=data.Note", "")
	s.want(400, "GET", "/sync/pull?cursor=garbage", "")
	s.want(400, "GET", "/sync/pull?limit=0", "")
	s.want(200, "POST", "/sync/pull", `{"limit":2,"spaces":["~","sp1"],"device_id":"d1"}`)
	s.want(400, "POST", "/sync/pull", `{"limit":"2"}`)
	s.want(415, "POST", "/sync/pull", `{}`, "Content-Type", "text/plain")

	// The conflict log has the stale edit of n1.
	s.want(200, "GET", "/sync/conflicts?since=0&limit=10", "")
	s.want(400, "GET", "/sync/conflicts?since=-1", "")

	// WatermelonDB and RxDB.
	s.want(200, "GET", "/sync/watermelon?last_pulled_at=null", "")
	s.want(200, "POST", "/sync/watermelon?last_pulled_at=1", `{"tasks":{"created":[{"id":"w1","title":"from melon","done":false}],"updated":[],"deleted":[]}}`)
	s.want(200, "GET", "/sync/rxdb/tasks/pull?seq=0&limit=10", "")
	s.want(404, "GET", "/sync/rxdb/nope/pull", "")
	s.want(200, "POST", "/sync/rxdb/tasks/push", `[{"newDocumentState":{"id":"r1","title":"from rx","done":false,"_deleted":false}}]`)
	s.want(200, "GET", "/sync/rxdb/tasks/pull/stream", "")

	// Live hints.
	s.want(200, "POST", "/sync/stream/token", "")
	s.want(200, "GET", "/sync/stream", "")
	s.want(400, "GET", "/sync/stream?cursor=garbage", "")

	// Blobs, uploaded with tus in two halves.
	blob := bytes.Repeat([]byte("ferry!"), 1000)
	sum := sha256.Sum256(blob)
	hash := hex.EncodeToString(sum[:])
	s.want(404, "HEAD", "/sync/blobs/sha256:"+hash, "")
	s.want(400, "GET", "/sync/blobs/not-a-hash", "")
	meta := "sha256 " + base64.StdEncoding.EncodeToString([]byte(hash)) + ",type " + base64.StdEncoding.EncodeToString([]byte("text/plain"))
	tus := []string{"Tus-Resumable", "1.0.0"}
	create := func(path string) string {
		_, h, b := s.call("POST", path, "", append(tus, "Upload-Length", fmt.Sprint(len(blob)), "Upload-Metadata", meta)...)
		loc := h.Get("Location")
		if loc == "" {
			s.t.Fatalf("POST %s: no Location: %s", path, b)
		}
		return loc[strings.Index(loc, "/sync/"):]
	}
	up := create("/sync/blobs/uploads")
	s.want(204, "PATCH", up, string(blob[:3000]), append(tus, "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")...)
	s.want(200, "HEAD", up, "", tus...)
	s.want(409, "PATCH", up, string(blob[3000:]), append(tus, "Upload-Offset", "1", "Content-Type", "application/offset+octet-stream")...)
	s.want(204, "PATCH", up, string(blob[3000:]), append(tus, "Upload-Offset", "3000", "Content-Type", "application/offset+octet-stream")...)
	s.want(200, "HEAD", "/sync/blobs/sha256:"+hash, "")
	s.want(200, "GET", "/sync/blobs/sha256:"+hash, "")
	s.want(206, "GET", "/sync/blobs/"+hash, "", "Range", "bytes=0-9")
	abandoned := create("/sync/blobs/uploads/")
	s.want(204, "DELETE", abandoned, "", tus...)

	// Unauthenticated.
	s.token = ""
	s.want(401, "GET", "/sync/pull", "")
	s.want(401, "POST", "/sync/stream/token", "")
}
