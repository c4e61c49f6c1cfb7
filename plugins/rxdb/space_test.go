package rxdb_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/rxdb"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

var testSecret = []byte("rxdb-space-test-secret-0123456789abcdef")

// spaceEnv is an App with spaces and the RxDB plugin over real HTTP; the
// bearer token is the user id.
type spaceEnv struct {
	t   *testing.T
	app *framework.App
	rx  *rxdb.Plugin
	url string
	at  time.Time // modify_at of the last native write
}

func newSpaceEnv(t *testing.T, db *bun.DB, secret []byte) *spaceEnv {
	t.Helper()
	app, err := framework.New(framework.Config{DB: db, Spaces: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"task.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string","minLength":1}}}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
		user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || user == "" {
			return framework.Principal{}, framework.ErrUnauthenticated
		}
		return framework.Principal{UserID: user}, nil
	}))
	rx, err := rxdb.New(rxdb.Config{Collections: map[string]string{"tasks": "data.Task"}, CheckpointSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(rx)
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	router := gin.New()
	app.Mount(router.Group("/sync"))
	hs := httptest.NewServer(router)
	t.Cleanup(func() { rx.Close(); hs.Close() })
	return &spaceEnv{t: t, app: app, rx: rx, url: hs.URL, at: time.Now().UTC().Add(-time.Minute)}
}

// native writes changes through the core as user and wants them applied.
func (e *spaceEnv) native(user string, changes ...*framework.Change) {
	e.t.Helper()
	for _, ch := range changes {
		e.at = e.at.Add(time.Millisecond)
		if now := time.Now().UTC(); now.After(e.at) {
			e.at = now // after the adapter's writes too
		}
		ch.ModifyAt = framework.Time{Time: e.at}
	}
	res, err := e.app.Push(context.Background(), framework.Principal{UserID: user}, changes)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != framework.StatusApplied {
			e.t.Fatalf("native push of %s: %+v", user, r)
		}
	}
}

func member(space, user, role string) *framework.Change {
	return &framework.Change{Model: framework.MemberModel, UID: user, Space: space, Data: json.RawMessage(`{"role":"` + role + `"}`)}
}

// do sends a request as user and returns the status, headers and body.
func (e *spaceEnv) do(user, method, path, body string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

type spaceBatch struct {
	Documents  []map[string]any `json:"documents"`
	Checkpoint rxdb.Checkpoint  `json:"checkpoint"`
}

// query is a pull's query for a checkpoint.
func query(space string, cp rxdb.Checkpoint, limit int) string {
	q := url.Values{"seq": {fmt.Sprint(cp.Seq)}, "limit": {fmt.Sprint(limit)}}
	if space != "" {
		q.Set("space", space)
	}
	if cp.Sig != "" {
		q.Set("sig", cp.Sig)
	}
	if cp.UpTo != nil {
		q.Set("upto", fmt.Sprint(*cp.UpTo))
	}
	if cp.Drop != nil {
		q.Set("drop", fmt.Sprint(*cp.Drop))
	}
	return q.Encode()
}

// pull pulls one page and wants 200.
func (e *spaceEnv) pull(user, space string, cp rxdb.Checkpoint, limit int) spaceBatch {
	e.t.Helper()
	status, _, raw := e.do(user, "GET", "/sync/rxdb/tasks/pull?"+query(space, cp, limit), "")
	if status != 200 {
		e.t.Fatalf("pull of %s in %s: %d %s", user, space, status, raw)
	}
	var b spaceBatch
	if err := json.Unmarshal(raw, &b); err != nil {
		e.t.Fatal(err)
	}
	return b
}

// pullAll pulls pages until one is short, as RxDB does, and returns the
// documents by id (the last state of each) and the last checkpoint.
func (e *spaceEnv) pullAll(user, space string, cp rxdb.Checkpoint, limit int) (map[string]map[string]any, rxdb.Checkpoint, int) {
	e.t.Helper()
	docs := map[string]map[string]any{}
	pages := 0
	for {
		b := e.pull(user, space, cp, limit)
		pages++
		for _, d := range b.Documents {
			docs[d["id"].(string)] = d
		}
		cp = b.Checkpoint
		if len(b.Documents) < limit {
			return docs, cp, pages
		}
		if pages > 100 {
			e.t.Fatal("the pull never ends")
		}
	}
}

func (e *spaceEnv) push(user, space, rows string) ([]map[string]any, http.Header) {
	e.t.Helper()
	status, h, raw := e.do(user, "POST", "/sync/rxdb/tasks/push?space="+space, rows)
	if status != 200 {
		e.t.Fatalf("push of %s to %s: %d %s", user, space, status, raw)
	}
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatal(err)
	}
	return out, h
}

func ids(docs map[string]map[string]any) []string {
	out := make([]string, 0, len(docs))
	for id := range docs {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// TestSpaceCollection: a shared space's collection through ?space= on both
// stores: members read and write it, a reader's write is refused with the
// reason, a stranger is answered as for a space that does not exist, and
// a removed member's signed checkpoint (only a signed one) pages the ids
// to delete, then nothing.
func TestSpaceCollection(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newSpaceEnv(t, db, testSecret)
		e.native("ann", &framework.Change{Model: framework.SpaceModel, UID: "L", Space: "L", Data: json.RawMessage(`{"name":"home"}`)})
		e.native("ann", member("L", "bob", "writer"))
		// Ann's personal task t1 is another record than the space's t1.
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t1", Data: json.RawMessage(`{"title":"mine"}`)})
		var rows []string
		for i := 1; i <= 5; i++ {
			rows = append(rows, fmt.Sprintf(`{"newDocumentState":{"id":"t%d","title":"task %d","_deleted":false}}`, i, i))
		}
		if c, _ := e.push("ann", "L", "["+strings.Join(rows, ",")+"]"); len(c) != 0 {
			t.Fatalf("ann's push: %v", c)
		}

		// Bob's device pulls the space in pages of 2; checkpoints are signed.
		docs, cp, pages := e.pullAll("bob", "L", rxdb.Checkpoint{}, 2)
		if got := ids(docs); strings.Join(got, ",") != "t1,t2,t3,t4,t5" || pages != 3 || cp.Sig == "" || cp.Drop != nil {
			t.Fatalf("bob's pull: %v in %d pages, checkpoint %+v", got, pages, cp)
		}
		if docs["t1"]["title"] != "task 1" {
			t.Fatalf("the space's t1: %v", docs["t1"])
		}
		personal, _, _ := e.pullAll("bob", "", rxdb.Checkpoint{}, 50)
		if len(personal) != 0 {
			t.Fatalf("bob's personal collection holds the space's documents: %v", personal)
		}
		annPersonal, _, _ := e.pullAll("ann", "", rxdb.Checkpoint{}, 50)
		if len(annPersonal) != 1 || annPersonal["t1"]["title"] != "mine" {
			t.Fatalf("ann's personal collection: %v", annPersonal)
		}

		// A stranger: every route answers as for a space that does not exist,
		// with a member's signed checkpoint too.
		_, _, nowhere := e.do("cat", "GET", "/sync/rxdb/tasks/pull?space=NOPE", "")
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/sync/rxdb/tasks/pull?space=L", ""},
			{"GET", "/sync/rxdb/tasks/pull?" + query("L", cp, 10), ""},
			{"GET", "/sync/rxdb/tasks/pull?" + query("NOPE", cp, 10), ""},
			{"POST", "/sync/rxdb/tasks/push?space=L", `[{"newDocumentState":{"id":"x","title":"x"}}]`},
			{"GET", "/sync/rxdb/tasks/pull/stream?space=L", ""},
		} {
			status, _, raw := e.do("cat", c.method, c.path, c.body)
			if status != 403 || string(raw) != string(nowhere) {
				t.Errorf("stranger %s %s: %d %s, want 403 %s", c.method, c.path, status, raw, nowhere)
			}
		}
		if !strings.Contains(string(nowhere), `"code":"forbidden"`) {
			t.Fatalf("a space that does not exist: %s", nowhere)
		}

		// Bob writes; Ann reads it.
		if c, _ := e.push("bob", "L", `[{"newDocumentState":{"id":"t6","title":"from bob","_deleted":false}}]`); len(c) != 0 {
			t.Fatalf("bob's push: %v", c)
		}
		annDocs, _, _ := e.pullAll("ann", "L", rxdb.Checkpoint{}, 50)
		if annDocs["t6"]["title"] != "from bob" {
			t.Fatalf("ann's pull: %v", annDocs)
		}
		docs, cp, _ = e.pullAll("bob", "L", cp, 50)
		if len(docs) != 1 {
			t.Fatalf("bob's incremental pull: %v", docs)
		}

		// Demoted to reader: Bob's write is refused, with the reason, and
		// answered with the server's state.
		e.native("ann", member("L", "bob", "reader"))
		c, h := e.push("bob", "L", `[{"newDocumentState":{"id":"t1","title":"bob's edit","_deleted":false},"assumedMasterState":{"id":"t1","title":"task 1","_deleted":false}}]`)
		if len(c) != 1 || c[0]["title"] != "task 1" {
			t.Fatalf("a reader's push: %v", c)
		}
		var why []rxdb.Refusal
		if err := json.Unmarshal([]byte(h.Get(rxdb.RefusedHeader)), &why); err != nil || len(why) != 1 ||
			why[0].ID != "t1" || why[0].Status != "forbidden" || len(why[0].Errors) != 1 || why[0].Errors[0].Path != "/space" ||
			!strings.Contains(why[0].Errors[0].Message, "reader") || h.Get(rxdb.RefusedCountHeader) != "1" {
			t.Fatalf("%s: %q (%v)", rxdb.RefusedHeader, h.Get(rxdb.RefusedHeader), why)
		}

		// While Bob's device is offline: t2 changes, t3 is deleted, Bob is
		// removed, and t7 is made after the removal.
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t2", Space: "L", Data: json.RawMessage(`{"title":"changed"}`)})
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t3", Space: "L", IsDeleted: true})
		removal := member("L", "bob", "reader")
		removal.IsDeleted = true
		e.native("ann", removal)
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t7", Space: "L", Data: json.RawMessage(`{"title":"after"}`)})
		// t4 existed before the removal and changes after it: the device
		// may hold it in its old state.
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t4", Space: "L", Data: json.RawMessage(`{"title":"edited after"}`)})
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t9", Space: "L", Data: json.RawMessage(`{"title":"after too"}`)})

		// Unsigned, forged, or signed for another seq, user or space: 403,
		// the answer of a space that does not exist.
		forged := cp
		forged.Sig = strings.Repeat("A", len(cp.Sig))
		other := cp
		other.Seq--
		for _, q := range []string{
			"space=L", "space=L&seq=" + fmt.Sprint(cp.Seq), query("L", forged, 10), query("L", other, 10),
			query("L", rxdb.Checkpoint{Seq: cp.Seq, Sig: cp.Sig + "x"}, 10),
		} {
			status, _, raw := e.do("bob", "GET", "/sync/rxdb/tasks/pull?"+q, "")
			if status != 403 || string(raw) != string(nowhere) {
				t.Errorf("removed member's pull ?%s: %d %s", q, status, raw)
			}
		}
		if status, _, _ := e.do("cat", "GET", "/sync/rxdb/tasks/pull?"+query("L", cp, 10), ""); status != 403 {
			t.Errorf("bob's checkpoint in cat's hands: %d", status)
		}

		// The signed checkpoint: every document the device may hold, as
		// deleted ids alone, in pages, t2 (changed after the checkpoint,
		// before the removal) and t4 (changed after the removal) included,
		// t7 and t9 (made after the removal) never.
		first := e.pull("bob", "L", cp, 2)
		if first.Checkpoint.UpTo == nil || first.Checkpoint.Drop == nil {
			t.Fatalf("the listing's first checkpoint: %+v", first.Checkpoint)
		}
		// Its bound is signed: a wider one, or none, is the 403.
		wider := first.Checkpoint
		far := *wider.UpTo + 100
		wider.UpTo = &far
		noBound := first.Checkpoint
		noBound.UpTo = nil
		for _, bad := range []rxdb.Checkpoint{wider, noBound} {
			if status, _, raw := e.do("bob", "GET", "/sync/rxdb/tasks/pull?"+query("L", bad, 2), ""); status != 403 || string(raw) != string(nowhere) {
				t.Errorf("listing checkpoint %+v: %d %s", bad, status, raw)
			}
		}
		lost, done, pages := e.pullAll("bob", "L", cp, 2)
		if got := ids(lost); strings.Join(got, ",") != "t1,t2,t3,t4,t5,t6" || pages < 3 {
			t.Fatalf("the removed member's pull: %v in %d pages", got, pages)
		}
		for id, d := range lost {
			if len(d) != 2 || d["_deleted"] != true {
				t.Errorf("%s: %v, want the id and _deleted alone", id, d)
			}
		}
		if done.Drop == nil || done.UpTo == nil || *done.Drop != *done.UpTo || done.Sig == "" || done.Seq != cp.Seq {
			t.Fatalf("final checkpoint %+v", done)
		}
		// Then nothing, however often it pulls.
		for range 2 {
			if b := e.pull("bob", "L", done, 2); len(b.Documents) != 0 {
				t.Fatalf("after the removal: %v", b.Documents)
			}
		}
		// A later write in the space changes nothing for Bob, nor does an
		// edit of a document he held.
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t8", Space: "L", Data: json.RawMessage(`{"title":"later"}`)})
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t5", Space: "L", Data: json.RawMessage(`{"title":"edited later"}`)})
		if b := e.pull("bob", "L", done, 2); len(b.Documents) != 0 {
			t.Fatalf("a write after the removal reached bob: %v", b.Documents)
		}

		// Added again, Bob's device (which dropped everything) reads the
		// space whole from its drop checkpoint.
		e.native("ann", member("L", "bob", "reader"))
		again, cp2, _ := e.pullAll("bob", "L", done, 50)
		if got := ids(again); strings.Join(got, ",") != "t1,t2,t3,t4,t5,t6,t7,t8,t9" || again["t3"]["_deleted"] != true || cp2.Drop != nil || cp2.UpTo != nil {
			t.Fatalf("back-fill after re-adding: %v, %+v", got, cp2)
		}
	})
}

// TestSpaceStream: a member's stream of a space hears its writes, with
// signed checkpoints; the removal of the member sends "RESYNC" and ends the
// stream, so nothing later reaches it.
func TestSpaceStream(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newSpaceEnv(t, db, testSecret)
		e.native("ann", &framework.Change{Model: framework.SpaceModel, UID: "L", Space: "L", Data: json.RawMessage(`{}`)})
		e.native("ann", member("L", "bob", "writer"))
		req, _ := http.NewRequest("GET", e.url+"/sync/rxdb/tasks/pull/stream?space=L", nil)
		req.Header.Set("Authorization", "Bearer bob")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("bob's stream: %v %v", resp, err)
		}
		defer resp.Body.Close()
		s := &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
		if ev := s.next(); ev != `"RESYNC"` {
			t.Fatalf("first event %s", ev)
		}
		// Ann's personal write is not the space's.
		e.native("ann", &framework.Change{Model: "data.Task", UID: "p1", Data: json.RawMessage(`{"title":"personal"}`)})
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t1", Space: "L", Data: json.RawMessage(`{"title":"shared"}`)})
		var b spaceBatch
		if err := json.Unmarshal([]byte(s.next()), &b); err != nil || len(b.Documents) != 1 || b.Documents[0]["id"] != "t1" || b.Checkpoint.Sig == "" {
			t.Fatalf("event: %+v %v", b, err)
		}
		// The signed checkpoint of the event is good for a pull.
		if got := e.pull("bob", "L", b.Checkpoint, 10); len(got.Documents) != 0 {
			t.Fatalf("pull after the event's checkpoint: %v", got.Documents)
		}
		removal := member("L", "bob", "writer")
		removal.IsDeleted = true
		e.native("ann", removal)
		if ev := s.next(); ev != `"RESYNC"` {
			t.Fatalf("after the removal: %s", ev)
		}
		e.native("ann", &framework.Change{Model: "data.Task", UID: "t2", Space: "L", Data: json.RawMessage(`{"title":"secret"}`)})
		rest, _ := io.ReadAll(s.r)
		if strings.Contains(string(rest), "data:") {
			t.Fatalf("the stream sent more after the removal: %q", rest)
		}
		for start := time.Now(); e.rx.Streams() != 0; time.Sleep(20 * time.Millisecond) {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("%d streams open", e.rx.Streams())
			}
		}
	})
}

// TestSpaceNeedsSecret: without Config.CheckpointSecret, ?space= is 400 on
// every route, and the personal collection works.
func TestSpaceNeedsSecret(t *testing.T) {
	t.Parallel()
	e := newSpaceEnv(t, synctest.OpenSQLite(t), nil)
	for _, c := range []struct{ method, path string }{
		{"GET", "/sync/rxdb/tasks/pull?space=L"}, {"POST", "/sync/rxdb/tasks/push?space=L"}, {"GET", "/sync/rxdb/tasks/pull/stream?space=L"},
	} {
		status, _, raw := e.do("ann", c.method, c.path, "[]")
		if status != 400 || !strings.Contains(string(raw), "CheckpointSecret") {
			t.Errorf("%s %s: %d %s", c.method, c.path, status, raw)
		}
	}
	if status, _, raw := e.do("ann", "GET", "/sync/rxdb/tasks/pull?space=a%2Fb", ""); status != 400 {
		t.Errorf("bad space: %d %s", status, raw)
	}
	if status, _, raw := e.do("ann", "GET", "/sync/rxdb/tasks/pull", ""); status != 200 {
		t.Errorf("personal pull: %d %s", status, raw)
	}
}
