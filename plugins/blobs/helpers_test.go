package blobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/ferrysync/ferry/plugins/blobs/blobclient"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

// bearer is the tests' authenticator: "Bearer <user>" is that user.
var bearer = framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || user == "" {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "bad token")
	}
	return framework.Principal{UserID: user}, nil
})

// env is an App with the blobs plugin over real HTTP.
type env struct {
	app  *framework.App
	plug *blobs.Plugin
	url  string
	dir  string
	now  *atomic.Int64 // the App's clock, Unix nanoseconds
	srv  *httptest.Server
}

// newEnv starts a server on db keeping blobs in dir (a fresh one when
// empty). cfg's Models and Dir are filled in.
func newEnv(t *testing.T, db *bun.DB, dir string, cfg blobs.Config) *env {
	t.Helper()
	return newEnvWith(t, db, dir, cfg, false)
}

// newEnvWith is newEnv, with shared spaces on when spaces is set.
func newEnvWith(t *testing.T, db *bun.DB, dir string, cfg blobs.Config, spaces bool) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	now := &atomic.Int64{}
	now.Store(time.Now().UnixNano())
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object"}`)}},
		Now:     func() time.Time { return time.Unix(0, now.Load()) }, Spaces: spaces})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "note.json"})
	app.MustRegisterSchema("data.Other", framework.ModelOptions{Schema: "note.json"})
	app.SetAuthenticator(bearer)
	cfg.Models, cfg.Dir = []string{"data.Note"}, dir
	if cfg.CollectEvery == 0 {
		cfg.CollectEvery = -1 // tests collect by hand
	}
	plug := blobs.MustNew(cfg)
	app.MustUse(plug)
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	router := gin.New()
	framework.UseProtocolErrors(router)
	app.Mount(router.Group("/sync"))
	srv := httptest.NewServer(router)
	e := &env{app: app, plug: plug, url: srv.URL, dir: dir, now: now, srv: srv}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.srv.Close()
	e.app.Close()
}

// advance moves the App's clock.
func (e *env) advance(d time.Duration) { e.now.Add(int64(d)) }

func (e *env) client(user string) *blobclient.Client {
	return &blobclient.Client{URL: e.url + "/sync", Authorize: func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+user)
	}}
}

// do sends a request as user and returns the answer with its body read.
func (e *env) do(t *testing.T, user, method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+user)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// push writes one note of user with data through POST /sync/push and
// returns its result.
func (e *env) push(t *testing.T, user, model, uid, data string, deleted bool) wire.Result {
	t.Helper()
	res, err := e.tryPush(user, model, uid, data, deleted)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryPush is push for other goroutines than the test's.
func (e *env) tryPush(user, model, uid, data string, deleted bool) (wire.Result, error) {
	e.advance(time.Millisecond) // each write is newer than the last
	body := fmt.Sprintf(`{"changes":[{"model":%q,"uid":%q,"modify_at":%q,"is_deleted":%t,"data":%s}]}`,
		model, uid, time.Unix(0, e.now.Load()).UTC().Format(time.RFC3339Nano), deleted, data)
	req, _ := http.NewRequest("POST", e.url+"/sync/push", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return wire.Result{}, err
	}
	defer resp.Body.Close()
	var pr wire.PushResponse
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != 200 || len(pr.Results) != 1 {
		return wire.Result{}, fmt.Errorf("push: %d %v", resp.StatusCode, err)
	}
	return pr.Results[0], nil
}

// note is a note's data referring to the blobs.
func note(hashes ...string) string {
	var parts []string
	for _, h := range hashes {
		parts = append(parts, fmt.Sprintf(`{"$blob":"sha256:%s","type":"image/jpeg"}`, h))
	}
	return `{"title":"t","photos":[` + strings.Join(parts, ",") + `]}`
}

// randomBytes returns n reproducible bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// upload sends b as user's blob and returns its hash.
func (e *env) upload(t *testing.T, user string, b []byte) string {
	t.Helper()
	u := &blobclient.Upload{Hash: hashOf(b), Size: int64(len(b)), Type: "image/jpeg"}
	if err := e.client(user).Send(context.Background(), u, bytes.NewReader(b), nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	return u.Hash
}

// get downloads hash as user: status and bytes.
func (e *env) get(t *testing.T, user, hash string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return e.do(t, user, "GET", "/sync/blobs/sha256:"+hash, nil, header)
}

// partials lists the files under the uploads folder.
func (e *env) partials(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range ents {
		names = append(names, en.Name())
	}
	return names
}

// stored reports whether the blob's file is on disk.
func (e *env) stored(hash string) bool {
	_, err := os.Stat(filepath.Join(e.dir, "blobs", hash[:2], hash))
	return err == nil
}

// errorCode returns an error answer's code, failing on another shape.
func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var body wire.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == "" {
		t.Fatalf("not the protocol's error shape: %s", b)
	}
	return body.Error.Code
}

// testLog writes the App's warnings and errors to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
