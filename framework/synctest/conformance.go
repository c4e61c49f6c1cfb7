package synctest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ConformanceTarget is the server [RunConformance] checks, and what the
// suite needs to know of it.
type ConformanceTarget struct {
	// URL is the server's base URL ("http://127.0.0.1:8080", no trailing
	// slash); the sync routes are at URL+Mount. When it is empty, Handler
	// is served on an httptest.Server for the run.
	URL string
	// Handler is the application's whole HTTP handler, as it serves
	// requests (a gin engine with [framework.UseProtocolErrors], so that
	// the router's own 404 and 405 have the protocol's error shape).
	// Required when URL is empty. When set, the check that an oversized
	// body is refused before it is read runs against it in process;
	// without it that check runs over HTTP and only sees the answer.
	//
	// [framework.UseProtocolErrors]: https://pkg.go.dev/github.com/ferrysync/ferry/framework#UseProtocolErrors
	Handler http.Handler
	// Mount is the path of the sync routes; "" means "/sync".
	Mount string
	// Client sends the requests; nil means the test server's client, or
	// http.DefaultClient with URL.
	Client *http.Client

	// NewUser makes a new user and returns its id and a bearer token for
	// it. Every call returns another user, holding nothing yet but what
	// the application itself creates for a new user (such as its own
	// self-owned record). Required.
	NewUser func(t *testing.T) User
	// Owned is an ordinary model: a record belongs to the user who wrote
	// it. Required.
	Owned Model
	// SelfOwned is a self-owned model (a user record whose uid is its
	// owner's id). When its Name is empty, the subtests that need one
	// check the ordinary model alone.
	SelfOwned Model

	// The server's limits, as [framework.Config] names them; zero means
	// Ferry's default: MaxChanges 1000 changes per push, MaxBodyBytes
	// 10 MiB per body, MaxFutureSkew 5 minutes (how far ahead of the
	// server's clock a modify_at may be).
	//
	// [framework.Config]: https://pkg.go.dev/github.com/ferrysync/ferry/framework#Config
	MaxChanges    int
	MaxBodyBytes  int64
	MaxFutureSkew time.Duration

	// SkipSameUIDPerOwner skips the check that two users may each hold a
	// record of the same uid in the same model and see only their own
	// (DESIGN.md, "Ownership"), for a server that does not follow that
	// rule yet; the suite then checks the older rule instead, that the
	// second user is answered forbidden.
	SkipSameUIDPerOwner bool
}

// User is a user of the server under test.
type User struct {
	// ID is the user's id: the owner of its records, and the uid of its
	// self-owned record.
	ID string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
}

// Model is a registered model the suite writes records of.
type Model struct {
	// Name is the model's name on the wire ("data.Note").
	Name string
	// Data returns valid data for record n of user u: calls with
	// different n return different data, and the server stores it as
	// given (it may add fields, but keeps those it was given with their
	// values). Records of a self-owned model have the uid u.ID.
	Data func(u User, n int) map[string]any
	// Invalid lists data the model refuses, each with the JSON pointers
	// (relative to the change, such as "/data/title") the refusal's
	// details must name. It may be empty.
	Invalid []InvalidData
}

// InvalidData is data a model refuses and where the refusal points.
type InvalidData struct {
	Data  map[string]any
	Paths []string
}

// RunConformance checks, over HTTP, that the server described by target
// speaks Ferry's wire protocol v1 (DESIGN.md, "Wire protocol v1"): the
// single-record endpoint; push results applied, stale (an older
// modify_at), applied again with the same version for a retried change,
// rejected with JSON-pointer paths, unknown_model and forbidden, one per
// change in order with op_id echoed; modify_at in UTC only, epoch seconds
// accepted, the future bounded by the clock skew; pull pages with cursor
// and has_more, the models filter, tombstones, invalid cursors and limits;
// the push cursor; records pulled pushing back unchanged; the error shape
// of 401, 404, 405, 413 and 415 answers; and, unless
// target.SkipSameUIDPerOwner, that two users may hold the same uid.
//
// Each check is a subtest with users of its own from target.NewUser, and
// uids unique to the run, so the suite may run more than once against
// one server. Every answer must be JSON, and every non-2xx answer must
// have the protocol's error shape. The subtests run one after the other.
func RunConformance(t *testing.T, target ConformanceTarget) {
	t.Helper()
	c := newConformance(t, target)
	for _, s := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"single record create update stale equal", c.singleRecord},
		{"idempotent retry", c.idempotentRetry},
		{"tombstone reaches another device", c.tombstone},
		{"unknown model", c.unknownModel},
		{"invalid data has JSON pointers", c.invalidData},
		{"op_id echoed", c.opIDEchoed},
		{"modify_at forms", c.modifyAtForms},
		{"another owner's record", c.anotherOwner},
		{"same uid per owner", c.sameUIDPerOwner},
		{"pull pagination and cursors", c.pullPaging},
		{"pull models filter", c.modelsFilter},
		{"transport errors", c.transportErrors},
		{"oversized body is refused unread", c.oversizedBody},
		{"push moves the cursor past own writes only", c.pushCursor},
		{"pulled records push back unchanged", c.roundTrip},
		{"two devices edit offline", c.twoDevices},
	} {
		t.Run(s.name, s.fn)
	}
}

// Times of the owned records the suite writes: in the past, so within
// any clock skew.
const (
	ct0 = "2026-11-25T10:00:00.000000Z"
	ct1 = "2026-11-25T11:00:00.000000Z"
	ct2 = "2026-11-25T12:00:00.000000Z"
)

type conformance struct {
	ConformanceTarget
	base   string // URL + Mount
	client *http.Client
	run    string // makes the run's uids unique
}

func newConformance(t *testing.T, target ConformanceTarget) *conformance {
	t.Helper()
	if target.NewUser == nil || target.Owned.Name == "" || target.Owned.Data == nil {
		t.Fatal("synctest: ConformanceTarget needs NewUser and Owned (Name and Data)")
	}
	if target.SelfOwned.Name != "" && target.SelfOwned.Data == nil {
		t.Fatal("synctest: ConformanceTarget.SelfOwned needs Data")
	}
	c := &conformance{ConformanceTarget: target, client: target.Client}
	if c.Mount == "" {
		c.Mount = "/sync"
	}
	c.Mount = strings.TrimSuffix(c.Mount, "/")
	if c.MaxChanges <= 0 {
		c.MaxChanges = 1000
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.MaxFutureSkew <= 0 {
		c.MaxFutureSkew = 5 * time.Minute
	}
	url := strings.TrimSuffix(target.URL, "/")
	if url == "" {
		if target.Handler == nil {
			t.Fatal("synctest: ConformanceTarget needs URL or Handler")
		}
		srv := httptest.NewServer(target.Handler)
		t.Cleanup(srv.Close)
		url = srv.URL
		if c.client == nil {
			c.client = srv.Client()
		}
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	c.base = url + c.Mount
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	c.run = hex.EncodeToString(raw[:])
	return c
}

// Wire shapes as a client reads them, times as the strings they are.
type (
	cRecord struct {
		Model     string         `json:"model"`
		UID       string         `json:"uid"`
		Owner     string         `json:"owner"`
		ModifyAt  string         `json:"modify_at"`
		IsDeleted bool           `json:"is_deleted"`
		Version   int64          `json:"version"`
		Data      map[string]any `json:"data"`
	}
	cSingle struct {
		Status string   `json:"status"`
		Record *cRecord `json:"record"`
	}
	cFieldError struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	}
	cError struct {
		Error struct {
			Code    string        `json:"code"`
			Message string        `json:"message"`
			Details []cFieldError `json:"details"`
		} `json:"error"`
	}
	cResult struct {
		OpID   *string       `json:"op_id"`
		Model  string        `json:"model"`
		UID    string        `json:"uid"`
		Status string        `json:"status"`
		Record *cRecord      `json:"record"`
		Errors []cFieldError `json:"errors"`
	}
	cPush struct {
		Results []cResult `json:"results"`
		Cursor  string    `json:"cursor"`
	}
	cPull struct {
		Changes []cRecord `json:"changes"`
		Cursor  string    `json:"cursor"`
		HasMore bool      `json:"has_more"`
	}
)

// uid makes a uid unique to the run.
func (c *conformance) uid(name string) string { return name + "-" + c.run }

// user is a user of one subtest.
type cUser struct {
	User
	c *conformance
	t *testing.T
}

func (c *conformance) newUser(t *testing.T) *cUser {
	t.Helper()
	u := c.NewUser(t)
	if u.ID == "" || u.Token == "" {
		t.Fatalf("NewUser returned %+v", u)
	}
	return &cUser{User: u, c: c, t: t}
}

// note is a change of the owned model carrying data n.
func (u *cUser) note(uid, at string, n int) map[string]any {
	return map[string]any{"model": u.c.Owned.Name, "uid": uid, "modify_at": at, "data": u.c.Owned.Data(u.User, n)}
}

// self is a change of the user's self-owned record carrying data n, at
// the time now (the application may have written the record at sign-up).
func (u *cUser) self(n int) map[string]any {
	return map[string]any{"model": u.c.SelfOwned.Name, "uid": u.ID, "modify_at": now(), "data": u.c.SelfOwned.Data(u.User, n)}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func deletion(model, uid, at string) map[string]any {
	return map[string]any{"model": model, "uid": uid, "modify_at": at, "is_deleted": true}
}

// do sends a request to path under the mount point and decodes the JSON
// answer into out (when not nil). Every answer must be JSON and every
// error answer must have the protocol's shape.
func (c *conformance) do(t *testing.T, method, path, token, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.send(t, req, out)
}

func (c *conformance) send(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", req.Method, req.URL.Path, err)
	}
	checkAnswer(t, req.Method+" "+req.URL.Path, resp.StatusCode, resp.Header, raw)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return resp.StatusCode
}

// checkAnswer checks what every answer must be: JSON, and for a non-2xx
// status the error shape with a code and a message.
func checkAnswer(t *testing.T, what string, status int, h http.Header, raw []byte) {
	t.Helper()
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: status %d with Content-Type %q, want application/json: %.200s", what, status, ct, raw)
	}
	if status < 300 {
		return
	}
	var shape cError
	if err := json.Unmarshal(raw, &shape); err != nil || shape.Error.Code == "" || shape.Error.Message == "" {
		t.Fatalf("%s: status %d without the error shape: %.500s", what, status, raw)
	}
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sync posts one change to the single-record endpoint.
func (u *cUser) sync(change map[string]any) (int, cSingle, cError) {
	u.t.Helper()
	var raw json.RawMessage
	status := u.c.do(u.t, "POST", "/", u.Token, jsonBody(change), &raw)
	var s cSingle
	var ae cError
	if status == 200 {
		_ = json.Unmarshal(raw, &s)
	} else {
		_ = json.Unmarshal(raw, &ae)
	}
	return status, s, ae
}

// push posts a batch and checks there is one result per change, in
// order.
func (u *cUser) push(changes ...map[string]any) []cResult {
	u.t.Helper()
	var out cPush
	if status := u.c.do(u.t, "POST", "/push", u.Token, jsonBody(map[string]any{"device_id": "synctest", "changes": changes}), &out); status != 200 {
		u.t.Fatalf("push: status %d", status)
	}
	if len(out.Results) != len(changes) {
		u.t.Fatalf("push: %d results for %d changes", len(out.Results), len(changes))
	}
	for i, r := range out.Results {
		if r.Model != changes[i]["model"] || r.UID != changes[i]["uid"] {
			u.t.Fatalf("push: result %d is for %s/%s, change %d was %v/%v", i, r.Model, r.UID, i, changes[i]["model"], changes[i]["uid"])
		}
	}
	return out.Results
}

// pullAll pulls every page from cursor and returns the changes and the
// final cursor.
func (u *cUser) pullAll(cursor string, limit int) ([]cRecord, string) {
	u.t.Helper()
	var all []cRecord
	for pages := 0; ; pages++ {
		if pages > 10000 {
			u.t.Fatal("pull never ended")
		}
		var out cPull
		path := "/pull?cursor=" + url.QueryEscape(cursor)
		if limit > 0 {
			path += fmt.Sprintf("&limit=%d", limit)
		}
		if status := u.c.do(u.t, "GET", path, u.Token, "", &out); status != 200 {
			u.t.Fatalf("pull: status %d", status)
		}
		if out.HasMore && (out.Cursor == "" || out.Cursor == cursor) {
			u.t.Fatalf("pull: has_more without a new cursor")
		}
		all = append(all, out.Changes...)
		cursor = out.Cursor
		if !out.HasMore {
			return all, cursor
		}
	}
}

// latest reduces pulled changes to the last state per model/uid.
func latest(changes []cRecord) map[string]cRecord {
	out := map[string]cRecord{}
	for _, c := range changes {
		out[c.Model+"/"+c.UID] = c
	}
	return out
}

// holds reports whether the stored data keeps every field that was sent.
func holds(stored map[string]any, sent map[string]any) bool {
	for k, v := range sent {
		got, ok := stored[k]
		if !ok || !jsonSame(got, v) {
			return false
		}
	}
	return true
}

func jsonSame(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

func (c *conformance) singleRecord(t *testing.T) {
	ann := c.newUser(t)
	uid := c.uid("n1")
	st, s, _ := ann.sync(ann.note(uid, ct1, 1))
	if st != 200 || s.Status != "applied" || s.Record == nil || s.Record.Version == 0 || s.Record.Owner != ann.ID || s.Record.ModifyAt != ct1 ||
		s.Record.Model != c.Owned.Name || s.Record.UID != uid || s.Record.IsDeleted || !holds(s.Record.Data, c.Owned.Data(ann.User, 1)) {
		t.Fatalf("create: %d %+v", st, s)
	}
	v1 := s.Record.Version
	st, s, _ = ann.sync(ann.note(uid, ct2, 2))
	if st != 200 || s.Status != "applied" || s.Record.Version <= v1 || !holds(s.Record.Data, c.Owned.Data(ann.User, 2)) {
		t.Fatalf("update: %d %+v", st, s)
	}
	v2 := s.Record.Version
	st, s, _ = ann.sync(ann.note(uid, ct0, 3))
	if st != 200 || s.Status != "stale" || !holds(s.Record.Data, c.Owned.Data(ann.User, 2)) || s.Record.Version != v2 || s.Record.ModifyAt != ct2 {
		t.Fatalf("a stale update must lose and return the winner: %d %+v", st, s)
	}
	st, s, _ = ann.sync(ann.note(uid, ct2, 4))
	if st != 200 || s.Status != "applied" || !holds(s.Record.Data, c.Owned.Data(ann.User, 4)) || s.Record.Version <= v2 {
		t.Fatalf("an equal modify_at must apply: %d %+v", st, s)
	}
	// The push answers the same way.
	res := ann.push(ann.note(uid, ct0, 5))[0]
	if res.Status != "stale" || res.Record == nil || !holds(res.Record.Data, c.Owned.Data(ann.User, 4)) {
		t.Fatalf("stale in a push: %+v", res)
	}
}

func (c *conformance) idempotentRetry(t *testing.T) {
	ann := c.newUser(t)
	before, _ := ann.pullAll("", 0)
	ch := ann.note(c.uid("r1"), ct1, 1)
	first := ann.push(ch)[0]
	again := ann.push(ch)[0]
	if first.Status != "applied" || again.Status != "applied" || again.Record == nil || again.Record.Version != first.Record.Version {
		t.Fatalf("a retry made a new version: %+v then %+v", first.Record, again.Record)
	}
	st, s, _ := ann.sync(ch)
	if st != 200 || s.Status != "applied" || s.Record.Version != first.Record.Version {
		t.Fatalf("a retry through POST /: %d %+v", st, s)
	}
	changes, _ := ann.pullAll("", 0)
	if n, want := len(latest(changes)), len(latest(before))+1; n != want {
		t.Fatalf("pull after retries: %d records, want %d", n, want)
	}
	if len(changes) != len(latest(changes)) {
		t.Fatalf("a pull returned a record twice: %+v", changes)
	}
}

func (c *conformance) tombstone(t *testing.T) {
	ann := c.newUser(t)
	uid := c.uid("d1")
	ann.push(ann.note(uid, ct1, 1))
	_, cursorB := ann.pullAll("", 0)
	res := ann.push(deletion(c.Owned.Name, uid, ct2))[0]
	if res.Status != "applied" || !res.Record.IsDeleted || !holds(res.Record.Data, c.Owned.Data(ann.User, 1)) {
		t.Fatalf("delete without data must keep the data: %+v", res)
	}
	changes, _ := ann.pullAll(cursorB, 0)
	if len(changes) != 1 || !changes[0].IsDeleted || changes[0].UID != uid || changes[0].Version != res.Record.Version {
		t.Fatalf("device B pulled %+v, want the tombstone", changes)
	}
	all, _ := ann.pullAll("", 0)
	if got := latest(all)[c.Owned.Name+"/"+uid]; !got.IsDeleted {
		t.Fatalf("an initial sync must carry the tombstone: %+v", got)
	}
}

func (c *conformance) unknownModel(t *testing.T) {
	ann := c.newUser(t)
	nope := "synctest.Nope" + c.run
	st, _, ae := ann.sync(map[string]any{"model": nope, "uid": c.uid("x1"), "modify_at": ct1, "data": map[string]any{}})
	if st != 400 || ae.Error.Code != "unknown_model" {
		t.Fatalf("single: %d %+v", st, ae)
	}
	res := ann.push(map[string]any{"model": nope, "uid": c.uid("x1"), "modify_at": ct1, "data": map[string]any{}})[0]
	if res.Status != "rejected" || len(res.Errors) == 0 || res.Errors[0].Path != "/model" || res.Record != nil {
		t.Fatalf("push: %+v", res)
	}
	var ae2 cError
	if st := c.do(t, "GET", "/pull?models="+url.QueryEscape(nope), ann.Token, "", &ae2); st != 400 || ae2.Error.Code != "unknown_model" {
		t.Fatalf("pull filter: %d %+v", st, ae2)
	}
}

func (c *conformance) invalidData(t *testing.T) {
	ann := c.newUser(t)
	for i, bad := range c.Owned.Invalid {
		change := map[string]any{"model": c.Owned.Name, "uid": c.uid(fmt.Sprint("i", i)), "modify_at": ct1, "data": bad.Data}
		st, _, ae := ann.sync(change)
		if st != 400 || ae.Error.Code != "invalid" {
			t.Fatalf("invalid data %d: %d %+v", i, st, ae)
		}
		if missing := missingPaths(ae.Error.Details, bad.Paths); len(missing) > 0 {
			t.Fatalf("invalid data %d: details %+v lack %v", i, ae.Error.Details, missing)
		}
		// One bad change does not block the rest.
		res := ann.push(change, ann.note(c.uid(fmt.Sprint("ok", i)), ct1, 1),
			map[string]any{"model": c.Owned.Name, "uid": "bad uid!", "modify_at": ct1, "data": c.Owned.Data(ann.User, 1)})
		if res[0].Status != "rejected" || res[0].Record != nil || len(missingPaths(res[0].Errors, bad.Paths)) > 0 ||
			res[1].Status != "applied" || res[2].Status != "rejected" || len(res[2].Errors) == 0 || res[2].Errors[0].Path != "/uid" {
			t.Fatalf("one bad change must not block the rest: %+v", res)
		}
	}
	// Data is required unless the change is a deletion.
	res := ann.push(map[string]any{"model": c.Owned.Name, "uid": c.uid("nodata"), "modify_at": ct1})[0]
	if res.Status != "rejected" || len(res.Errors) == 0 || res.Errors[0].Path != "/data" {
		t.Fatalf("a change without data: %+v", res)
	}
	st, _, ae := ann.sync(map[string]any{"model": c.Owned.Name, "uid": strings.Repeat("u", 65), "modify_at": ct1, "data": c.Owned.Data(ann.User, 1)})
	if st != 400 || ae.Error.Code != "invalid" || len(ae.Error.Details) == 0 || ae.Error.Details[0].Path != "/uid" {
		t.Fatalf("a uid of 65 characters: %d %+v", st, ae)
	}
}

func missingPaths(details []cFieldError, want []string) []string {
	have := map[string]bool{}
	for _, d := range details {
		have[d.Path] = true
	}
	var missing []string
	for _, p := range want {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

func (c *conformance) opIDEchoed(t *testing.T) {
	ann := c.newUser(t)
	with := ann.note(c.uid("op1"), ct1, 1)
	with["op_id"] = "op-<1>"
	bad := map[string]any{"op_id": "op-2", "model": c.Owned.Name, "uid": "bad uid!", "modify_at": ct1, "data": map[string]any{}}
	res := ann.push(with, ann.note(c.uid("op2"), ct1, 1), bad)
	if res[0].OpID == nil || *res[0].OpID != "op-<1>" || res[1].OpID != nil || res[2].OpID == nil || *res[2].OpID != "op-2" {
		t.Fatalf("op_id must be echoed when sent, only then: %+v", res)
	}
}

func (c *conformance) modifyAtForms(t *testing.T) {
	ann := c.newUser(t)
	st, _, ae := ann.sync(ann.note(c.uid("m1"), "2026-11-25T10:00:00+02:00", 1))
	if st != 400 || len(ae.Error.Details) == 0 || ae.Error.Details[0].Path != "/modify_at" || ae.Error.Details[0].Message != "modify_at must be UTC" {
		t.Fatalf("non-UTC: %d %+v", st, ae)
	}
	res := ann.push(ann.note(c.uid("m1"), "2026-11-25T10:00:00-05:00", 1))[0]
	if res.Status != "rejected" || len(res.Errors) == 0 || res.Errors[0].Path != "/modify_at" || res.Errors[0].Message != "modify_at must be UTC" {
		t.Fatalf("non-UTC in a push: %+v", res)
	}
	epoch := ann.note(c.uid("m2"), "", 2)
	epoch["modify_at"] = 1764064800.25
	st, s, _ := ann.sync(epoch)
	if st != 200 || s.Record.ModifyAt != "2025-11-25T10:00:00.250000Z" {
		t.Fatalf("epoch seconds: %d %+v", st, s)
	}
	st, s, _ = ann.sync(ann.note(c.uid("m3"), "2026-11-25T10:00:00+00:00", 3))
	if st != 200 || s.Record.ModifyAt != ct0 {
		t.Fatalf("+00:00: %d %+v", st, s)
	}
	st, s, _ = ann.sync(ann.note(c.uid("m6"), "2026-11-25T10:00:00.1234567Z", 6))
	if st != 200 || s.Record.ModifyAt != "2026-11-25T10:00:00.123456Z" {
		t.Fatalf("answers carry microseconds: %d %+v", st, s)
	}
	future := time.Now().Add(c.MaxFutureSkew + time.Hour).UTC().Format(time.RFC3339)
	st, _, ae = ann.sync(ann.note(c.uid("m4"), future, 4))
	if st != 400 || len(ae.Error.Details) == 0 || ae.Error.Details[0].Path != "/modify_at" {
		t.Fatalf("far future: %d %+v", st, ae)
	}
	near := time.Now().Add(c.MaxFutureSkew / 5).UTC().Format(time.RFC3339)
	if st, _, _ = ann.sync(ann.note(c.uid("m5"), near, 5)); st != 200 {
		t.Fatalf("a fifth of MaxFutureSkew ahead is within it: %d", st)
	}
}

func (c *conformance) anotherOwner(t *testing.T) {
	ann, bob := c.newUser(t), c.newUser(t)
	before, _ := ann.pullAll("", 0)
	secret := c.uid("secret")
	ann.push(ann.note(secret, ct1, 1))
	if c.SkipSameUIDPerOwner {
		// The older rule: a uid belongs to whoever wrote it first.
		st, s, ae := bob.sync(bob.note(secret, ct2, 2))
		if st != 403 || ae.Error.Code != "forbidden" || s.Record != nil || strings.Contains(ae.Error.Message, secret) {
			t.Fatalf("single: %d %+v %+v", st, s, ae)
		}
		res := bob.push(bob.note(secret, ct2, 3), bob.note(c.uid("bobs"), ct1, 1))
		if res[0].Status != "forbidden" || res[0].Record != nil || res[0].Errors != nil || res[1].Status != "applied" {
			t.Fatalf("push: %+v", res)
		}
	}
	if c.SelfOwned.Name != "" {
		// Bob cannot write Ann's self-owned record, nor make one under
		// an id that is not his.
		st, s, ae := bob.sync(map[string]any{"model": c.SelfOwned.Name, "uid": ann.ID, "modify_at": now(), "data": c.SelfOwned.Data(bob.User, 2)})
		if st != 403 || ae.Error.Code != "forbidden" || s.Record != nil || strings.Contains(ae.Error.Message, ann.ID) {
			t.Fatalf("single, another's self-owned record: %d %+v %+v", st, s, ae)
		}
		res := bob.push(
			map[string]any{"model": c.SelfOwned.Name, "uid": ann.ID, "modify_at": now(), "data": c.SelfOwned.Data(bob.User, 3)},
			map[string]any{"model": c.SelfOwned.Name, "uid": c.uid("not-bob"), "modify_at": now(), "data": c.SelfOwned.Data(bob.User, 3)},
			deletion(c.SelfOwned.Name, ann.ID, now()),
			bob.note(c.uid("bobs2"), ct1, 1),
		)
		for i := range 3 {
			if res[i].Status != "forbidden" || res[i].Record != nil {
				t.Fatalf("push, self-owned record %d: %+v", i, res[i])
			}
		}
		if res[3].Status != "applied" {
			t.Fatalf("bob's own change beside them: %+v", res[3])
		}
	}
	changes, _ := ann.pullAll("", 0)
	got := latest(changes)
	if r := got[c.Owned.Name+"/"+secret]; !holds(r.Data, c.Owned.Data(ann.User, 1)) || r.Owner != ann.ID || len(got) != len(latest(before))+1 {
		t.Fatalf("ann's data changed or another's leaked in: %+v", got)
	}
	for _, r := range changes {
		if r.Owner != ann.ID {
			t.Fatalf("ann pulled another's record: %+v", r)
		}
	}
	if c.SelfOwned.Name != "" {
		if r, ok := got[c.SelfOwned.Name+"/"+ann.ID]; ok && (r.IsDeleted || r.Owner != ann.ID) {
			t.Fatalf("ann's self-owned record changed: %+v", r)
		}
	}
	changes, _ = bob.pullAll("", 0)
	for _, r := range changes {
		if r.Owner != bob.ID {
			t.Fatalf("bob pulled another's record: %+v", r)
		}
	}
}

func (c *conformance) sameUIDPerOwner(t *testing.T) {
	if c.SkipSameUIDPerOwner {
		t.Skip("ConformanceTarget.SkipSameUIDPerOwner: the server does not let two users hold the same uid yet")
	}
	ann, bob := c.newUser(t), c.newUser(t)
	uid := c.uid("same")
	a := ann.push(ann.note(uid, ct1, 1))[0]
	st, b, ae := bob.sync(bob.note(uid, ct0, 2)) // older: it must not lose to ann's
	if a.Status != "applied" || st != 200 || b.Status != "applied" || b.Record.Owner != bob.ID || !holds(b.Record.Data, c.Owned.Data(bob.User, 2)) {
		t.Fatalf("each user creates the uid: ann %+v, bob %d %+v %+v", a, st, b, ae)
	}
	// Each changes and deletes their own alone.
	if r := ann.push(ann.note(uid, ct2, 3))[0]; r.Status != "applied" || r.Record.Owner != ann.ID {
		t.Fatalf("ann's update: %+v", r)
	}
	if r := bob.push(deletion(c.Owned.Name, uid, ct1))[0]; r.Status != "applied" || !r.Record.IsDeleted || r.Record.Owner != bob.ID {
		t.Fatalf("bob's delete: %+v", r)
	}
	if r := bob.push(bob.note(uid, ct0, 4))[0]; r.Status != "stale" || !r.Record.IsDeleted || r.Record.Owner != bob.ID {
		t.Fatalf("bob's older write loses to bob's own delete, not to ann's record: %+v", r)
	}
	for _, who := range []struct {
		u       *cUser
		n       int
		deleted bool
	}{{ann, 3, false}, {bob, 2, true}} {
		changes, _ := who.u.pullAll("", 0)
		var mine []cRecord
		for _, r := range changes {
			if r.Owner != who.u.ID {
				t.Fatalf("%s pulled another's record: %+v", who.u.ID, r)
			}
			if r.Model == c.Owned.Name && r.UID == uid {
				mine = append(mine, r)
			}
		}
		if len(mine) != 1 || mine[0].IsDeleted != who.deleted || !holds(mine[0].Data, c.Owned.Data(who.u.User, who.n)) {
			t.Fatalf("%s pulled %+v, want only its own record", who.u.ID, mine)
		}
	}
}

func (c *conformance) pullPaging(t *testing.T) {
	ann := c.newUser(t)
	base, _ := ann.pullAll("", 0)
	var changes []map[string]any
	for i := 0; i < 25; i++ {
		changes = append(changes, ann.note(c.uid(fmt.Sprintf("p%02d", i)), ct1, i))
	}
	ann.push(changes...)
	var page cPull
	if st := c.do(t, "GET", "/pull?limit=10", ann.Token, "", &page); st != 200 || len(page.Changes) != 10 || !page.HasMore || page.Cursor == "" {
		t.Fatalf("first page: %d %d %v", st, len(page.Changes), page.HasMore)
	}
	// A write between pages is not part of this pull…
	late := c.uid("late")
	ann.push(ann.note(late, ct2, 99))
	rest, final := ann.pullAll(page.Cursor, 10)
	all := append(page.Changes, rest...)
	if want := len(base) + 25; len(all) != want {
		t.Fatalf("paged pull returned %d records, want %d", len(all), want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Version <= all[i-1].Version {
			t.Fatalf("not in version order at %d", i)
		}
	}
	// …but of the next one.
	next, _ := ann.pullAll(final, 0)
	if len(next) != 1 || next[0].UID != late {
		t.Fatalf("after the last page: %+v", next)
	}
	var ae cError
	for _, bad := range []string{"garbage", "eyJ2IjoyfQ", page.Cursor + "x"} {
		if st := c.do(t, "GET", "/pull?cursor="+url.QueryEscape(bad), ann.Token, "", &ae); st != 400 || ae.Error.Code != "invalid_cursor" {
			t.Fatalf("cursor %q: %d %+v", bad, st, ae)
		}
	}
	if st := c.do(t, "GET", "/pull?models="+url.QueryEscape(c.Owned.Name)+"&cursor="+url.QueryEscape(final), ann.Token, "", &ae); st != 400 || ae.Error.Code != "invalid_cursor" {
		t.Fatalf("a cursor of another filter: %d %+v", st, ae)
	}
	for _, bad := range []string{"0", "-1", "abc", "1.5"} {
		if st := c.do(t, "GET", "/pull?limit="+bad, ann.Token, "", &ae); st != 400 || ae.Error.Code != "invalid" {
			t.Fatalf("limit %q: %d %+v", bad, st, ae)
		}
	}
	if st := c.do(t, "GET", "/pull?limit=99999999999999999999", ann.Token, "", &page); st != 200 || len(page.Changes) != len(base)+26 || page.HasMore {
		t.Fatalf("a huge limit is capped, not refused: %d %d", st, len(page.Changes))
	}
	// Without a limit, the default page (500 records) holds them all.
	if st := c.do(t, "GET", "/pull", ann.Token, "", &page); st != 200 || len(page.Changes) != len(base)+26 || page.HasMore {
		t.Fatalf("default limit: %d %d", st, len(page.Changes))
	}
}

func (c *conformance) modelsFilter(t *testing.T) {
	ann := c.newUser(t)
	ann.push(ann.note(c.uid("f1"), ct1, 1), ann.note(c.uid("f2"), ct1, 2))
	if c.SelfOwned.Name != "" {
		if r := ann.push(ann.self(1))[0]; r.Status != "applied" && r.Status != "stale" {
			t.Fatalf("self-owned record: %+v", r)
		}
	}
	all, _ := ann.pullAll("", 0)
	filtered := func(models ...string) []cRecord {
		t.Helper()
		var out []cRecord
		cursor := ""
		for {
			var page cPull
			path := "/pull?limit=1&models=" + url.QueryEscape(strings.Join(models, ",")) + "&cursor=" + url.QueryEscape(cursor)
			if st := c.do(t, "GET", path, ann.Token, "", &page); st != 200 {
				t.Fatalf("pull %v: %d", models, st)
			}
			out = append(out, page.Changes...)
			cursor = page.Cursor
			if !page.HasMore {
				return out
			}
		}
	}
	count := func(model string) int {
		n := 0
		for _, r := range all {
			if r.Model == model {
				n++
			}
		}
		return n
	}
	got := filtered(c.Owned.Name)
	for _, r := range got {
		if r.Model != c.Owned.Name {
			t.Fatalf("models=%s brought %+v", c.Owned.Name, r)
		}
	}
	if len(got) != count(c.Owned.Name) || len(got) < 2 {
		t.Fatalf("models=%s: %d records, want %d", c.Owned.Name, len(got), count(c.Owned.Name))
	}
	if c.SelfOwned.Name != "" {
		got = filtered(c.SelfOwned.Name)
		if len(got) != 1 || got[0].Model != c.SelfOwned.Name || got[0].UID != ann.ID {
			t.Fatalf("models=%s: %+v", c.SelfOwned.Name, got)
		}
		if both := filtered(c.SelfOwned.Name, c.Owned.Name); len(both) != count(c.Owned.Name)+1 {
			t.Fatalf("two models: %d records", len(both))
		}
	}
}

func (c *conformance) transportErrors(t *testing.T) {
	ann := c.newUser(t)
	var ae cError
	req, _ := http.NewRequest("POST", c.base+"/push", strings.NewReader(`{"changes":[]}`))
	req.Header.Set("Authorization", "Bearer "+ann.Token)
	req.Header.Set("Content-Type", "text/plain")
	if st := c.send(t, req, &ae); st != 415 || ae.Error.Code != "unsupported_media_type" {
		t.Fatalf("content type: %d %+v", st, ae)
	}
	for _, path := range []string{"/push", "/"} {
		if st := c.do(t, "POST", path, "", `{"changes":[]}`, &ae); st != 401 || ae.Error.Code != "unauthenticated" {
			t.Fatalf("POST %s without a token: %d %+v", path, st, ae)
		}
	}
	if st := c.do(t, "GET", "/pull", ann.Token+"x", "", &ae); st != 401 || ae.Error.Code != "unauthenticated" {
		t.Fatalf("a bad token: %d %+v", st, ae)
	}
	for _, body := range []string{`{"changes":`, `[1,2]`, `{"changes":"x"}`, `{"changes":[]} {}`} {
		if st := c.do(t, "POST", "/push", ann.Token, body, &ae); st != 400 || ae.Error.Code != "invalid" {
			t.Fatalf("body %q: %d %+v", body, st, ae)
		}
	}
	var empty cPush
	if st := c.do(t, "POST", "/push", ann.Token, `{"changes":[]}`, &empty); st != 200 || empty.Results == nil || len(empty.Results) != 0 {
		t.Fatalf("an empty push: %d %+v", st, empty)
	}
	many := make([]map[string]any, c.MaxChanges+1)
	for i := range many {
		many[i] = ann.note(c.uid(fmt.Sprint("big", i)), ct1, i)
	}
	if st := c.do(t, "POST", "/push", ann.Token, jsonBody(map[string]any{"changes": many}), &ae); st != 413 || ae.Error.Code != "too_large" {
		t.Fatalf("%d changes: %d %+v", len(many), st, ae)
	}
	if st := c.do(t, "GET", "/nowhere", ann.Token, "", &ae); st != 404 || ae.Error.Code != "not_found" {
		t.Fatalf("404: %d %+v", st, ae)
	}
	if st := c.do(t, "DELETE", "/push", ann.Token, "", &ae); st != 405 || ae.Error.Code != "method_not_allowed" {
		t.Fatalf("405: %d %+v", st, ae)
	}
}

func (c *conformance) oversizedBody(t *testing.T) {
	ann := c.newUser(t)
	size := 2 * c.MaxBodyBytes
	if c.Handler == nil {
		// Over HTTP only the answer can be seen.
		req, _ := http.NewRequest("POST", c.base+"/push", bytes.NewReader(make([]byte, c.MaxBodyBytes+1)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ann.Token)
		var ae cError
		if st := c.send(t, req, &ae); st != 413 || ae.Error.Code != "too_large" {
			t.Fatalf("a body over the limit: %d %+v", st, ae)
		}
		return
	}
	serve := func(declared int64) (*httptest.ResponseRecorder, *countingReader) {
		body := &countingReader{limit: size}
		req := httptest.NewRequest("POST", c.Mount+"/push", body)
		req.ContentLength = declared
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ann.Token)
		rec := httptest.NewRecorder()
		c.Handler.ServeHTTP(rec, req)
		checkAnswer(t, "POST "+c.Mount+"/push", rec.Code, rec.Header(), rec.Body.Bytes())
		return rec, body
	}
	// Declared too large: refused before reading a byte.
	if rec, body := serve(size); rec.Code != 413 || body.read != 0 {
		t.Fatalf("declared %d bytes: status %d after reading %d bytes", size, rec.Code, body.read)
	}
	// Undeclared (chunked): reading stops just past the limit.
	if rec, body := serve(-1); rec.Code != 413 || int64(body.read) > c.MaxBodyBytes+c.MaxBodyBytes/10 {
		t.Fatalf("chunked %d bytes: status %d after reading %d bytes", size, rec.Code, body.read)
	}
}

// countingReader is a body of spaces that counts what was read of it.
type countingReader struct {
	limit int64
	read  int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if int64(r.read) >= r.limit {
		return 0, io.EOF
	}
	n := min(len(p), int(r.limit)-r.read)
	for i := range p[:n] {
		p[i] = ' '
	}
	r.read += n
	return n, nil
}

func (c *conformance) pushCursor(t *testing.T) {
	ann := c.newUser(t)
	_, cur := ann.pullAll("", 0)
	pushWithCursor := func(cursor string, changes ...map[string]any) string {
		t.Helper()
		var out cPush
		body := jsonBody(map[string]any{"cursor": cursor, "changes": changes})
		if st := c.do(t, "POST", "/push", ann.Token, body, &out); st != 200 || out.Cursor == "" || len(out.Results) != len(changes) {
			t.Fatalf("push: %d %+v", st, out)
		}
		return out.Cursor
	}
	cur = pushWithCursor(cur, ann.note(c.uid("own1"), ct1, 1), ann.note(c.uid("own2"), ct1, 2))
	if got, _ := ann.pullAll(cur, 0); len(got) != 0 {
		t.Fatalf("own writes came back as news: %+v", got)
	}
	// Another device writes; this device's next push must not skip it.
	other := c.uid("other")
	ann.push(ann.note(other, ct1, 3))
	cur = pushWithCursor(cur, ann.note(c.uid("own3"), ct1, 4))
	got, _ := ann.pullAll(cur, 0)
	if len(got) != 2 || got[0].UID != other {
		t.Fatalf("after another device's write: %+v", got)
	}
	var ae cError
	if st := c.do(t, "POST", "/push", ann.Token, `{"cursor":"junk","changes":[]}`, &ae); st != 400 || ae.Error.Code != "invalid_cursor" {
		t.Fatalf("a junk cursor: %d %+v", st, ae)
	}
	// Without a cursor in the push, none in the answer.
	var out map[string]json.RawMessage
	if st := c.do(t, "POST", "/push", ann.Token, jsonBody(map[string]any{"changes": []any{ann.note(c.uid("own4"), ct1, 5)}}), &out); st != 200 || out["cursor"] != nil {
		t.Fatalf("a push without a cursor: %d %s", st, out["cursor"])
	}
}

func (c *conformance) roundTrip(t *testing.T) {
	// Whatever the server sends must be accepted back as it is: a device
	// that edits nothing but re-sends a record (or edits from the
	// server's state) must not be rejected.
	ann := c.newUser(t)
	ann.push(ann.note(c.uid("bare"), ct1, 1), ann.note(c.uid("gone"), ct1, 2))
	ann.push(deletion(c.Owned.Name, c.uid("gone"), ct2))
	if c.SelfOwned.Name != "" {
		ann.push(ann.self(1))
	}
	changes, _ := ann.pullAll("", 0)
	var back []map[string]any
	for _, r := range changes {
		back = append(back, map[string]any{"model": r.Model, "uid": r.UID, "modify_at": r.ModifyAt, "is_deleted": r.IsDeleted, "data": r.Data})
	}
	for i, r := range ann.push(back...) {
		if r.Status != "applied" || r.Record.Version != changes[i].Version {
			t.Fatalf("%s/%s pushed back: %s %v (answer %+v, was version %d)", r.Model, r.UID, r.Status, r.Errors, r.Record, changes[i].Version)
		}
	}
}

func (c *conformance) twoDevices(t *testing.T) {
	ann := c.newUser(t)
	shared, aOnly := c.uid("shared"), c.uid("a-only")
	// Both devices start from the same synced state.
	ann.push(ann.note(shared, ct0, 0), ann.note(aOnly, ct0, 1))
	stateA, curA := ann.pullAll("", 0)
	stateB, curB := ann.pullAll("", 0)
	devA, devB := latest(stateA), latest(stateB)
	// Offline: A edits "shared" at 11:00, B at 12:00; each makes a
	// record; B deletes a-only.
	offA := []map[string]any{ann.note(shared, ct1, 10), ann.note(c.uid("made-by-a"), ct1, 11)}
	offB := []map[string]any{ann.note(shared, ct2, 20), ann.note(c.uid("made-by-b"), ct1, 21), deletion(c.Owned.Name, aOnly, ct1)}
	// A syncs first, then B, then A again.
	for _, step := range []struct {
		dev     map[string]cRecord
		cur     *string
		pending []map[string]any
	}{{devA, &curA, offA}, {devB, &curB, offB}, {devA, &curA, nil}} {
		if len(step.pending) > 0 {
			for _, r := range ann.push(step.pending...) {
				if r.Status != "applied" && r.Status != "stale" {
					t.Fatalf("offline change %s: %s", r.UID, r.Status)
				}
				step.dev[r.Model+"/"+r.UID] = *r.Record
			}
		}
		var got []cRecord
		got, *step.cur = ann.pullAll(*step.cur, 2)
		for _, r := range got {
			step.dev[r.Model+"/"+r.UID] = r
		}
	}
	serverState, _ := ann.pullAll("", 0)
	want := latest(serverState)
	for name, dev := range map[string]map[string]cRecord{"A": devA, "B": devB} {
		if !reflect.DeepEqual(dev, want) {
			t.Fatalf("device %s\n%v\nserver\n%v", name, dev, want)
		}
	}
	if !holds(want[c.Owned.Name+"/"+shared].Data, c.Owned.Data(ann.User, 20)) || !want[c.Owned.Name+"/"+aOnly].IsDeleted {
		t.Fatalf("server state: %+v", want)
	}
}
