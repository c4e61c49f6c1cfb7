package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

type rxPull struct {
	Documents  []map[string]any `json:"documents"`
	Checkpoint *struct {
		Seq int64 `json:"seq"`
	} `json:"checkpoint"`
}

func (u *user) rxPull(seq int64, limit int) rxPull {
	u.e.t.Helper()
	var out rxPull
	if st := u.e.do("GET", fmt.Sprintf("/sync/rxdb/tasks/pull?seq=%d&limit=%d", seq, limit), u.Token, "", &out); st != 200 {
		u.e.t.Fatalf("rxdb pull: status %d", st)
	}
	if out.Documents == nil || out.Checkpoint == nil {
		u.e.t.Fatalf("rxdb pull: documents and checkpoint must not be null: %+v", out)
	}
	return out
}

// rxPush pushes rows and returns the conflicts.
func (u *user) rxPush(rows ...map[string]any) []map[string]any {
	u.e.t.Helper()
	var out []map[string]any
	if st := u.e.do("POST", "/sync/rxdb/tasks/push", u.Token, jsonBody(rows), &out); st != 200 {
		u.e.t.Fatalf("rxdb push: status %d", st)
	}
	if out == nil {
		u.e.t.Fatal("rxdb push: the answer must be an array, not null")
	}
	return out
}

func rxDoc(id, title string, extra ...any) map[string]any {
	d := map[string]any{"id": id, "title": title, "body": "", "count": 0, "done": false, "_deleted": false}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i].(string)] = extra[i+1]
	}
	return d
}

func row(next map[string]any, assumed map[string]any) map[string]any {
	r := map[string]any{"newDocumentState": next}
	if assumed != nil {
		r["assumedMasterState"] = assumed
	}
	return r
}

func TestRxDB(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		t.Run("pull push conflicts tombstones", func(t *testing.T) {
			ann := e.signUp("rx-ann")
			empty := ann.rxPull(0, 10)
			if len(empty.Documents) != 0 || empty.Checkpoint.Seq != 0 {
				t.Fatalf("a new user: %+v", empty)
			}
			if c := ann.rxPush(row(rxDoc("rxA1", "one", "count", 2), nil), row(rxDoc("rxA2", "two"), nil)); len(c) != 0 {
				t.Fatalf("new documents conflicted: %+v", c)
			}
			p := ann.rxPull(0, 10)
			if len(p.Documents) != 2 || p.Documents[0]["_deleted"] != false || p.Documents[0]["id"] != "rxA1" || p.Documents[0]["count"] != float64(2) {
				t.Fatalf("pull: %+v", p)
			}
			seq := p.Checkpoint.Seq
			if again := ann.rxPull(seq, 10); len(again.Documents) != 0 || again.Checkpoint.Seq != seq {
				t.Fatalf("nothing newer must keep the request's checkpoint: %+v", again)
			}
			a1 := p.Documents[0]
			// A wrong assumed state conflicts and returns the server's document.
			c := ann.rxPush(row(rxDoc("rxA1", "mine"), rxDoc("rxA1", "not what the server has")))
			if len(c) != 1 || c[0]["title"] != "one" || c[0]["_deleted"] != false {
				t.Fatalf("conflict: %+v", c)
			}
			// No assumed state for an existing document conflicts too.
			if c := ann.rxPush(row(rxDoc("rxA1", "mine"), nil)); len(c) != 1 {
				t.Fatalf("no assumed state: %+v", c)
			}
			// The right assumed state (key order does not matter) is accepted.
			reordered := map[string]any{"_deleted": false, "done": false, "count": 2, "body": "", "title": "one", "id": "rxA1"}
			if c := ann.rxPush(row(rxDoc("rxA1", "mine", "count", 3), reordered)); len(c) != 0 {
				t.Fatalf("matching assumed state conflicted: %+v (pulled %+v)", c, a1)
			}
			// A deletion.
			if c := ann.rxPush(row(rxDoc("rxA2", "two", "_deleted", true), p.Documents[1])); len(c) != 0 {
				t.Fatalf("delete: %+v", c)
			}
			p2 := ann.rxPull(seq, 10)
			docs := byID(p2.Documents)
			if len(p2.Documents) != 2 || docs["rxA1"]["title"] != "mine" || docs["rxA2"]["_deleted"] != true || p2.Checkpoint.Seq <= seq {
				t.Fatalf("after update and delete: %+v", p2)
			}
			// Paging: one at a time, checkpoints ascending.
			var seen []string
			var cp int64
			for i := 0; i < 5; i++ {
				pg := ann.rxPull(cp, 1)
				if len(pg.Documents) == 0 {
					break
				}
				if pg.Checkpoint.Seq <= cp {
					t.Fatalf("checkpoint went from %d to %d", cp, pg.Checkpoint.Seq)
				}
				cp = pg.Checkpoint.Seq
				seen = append(seen, pg.Documents[0]["id"].(string))
			}
			if strings.Join(seen, ",") != "rxA1,rxA2" {
				t.Fatalf("paged: %v", seen)
			}
			// A checkpoint from the future (a replaced database) starts over.
			if future := ann.rxPull(1<<40, 10); len(future.Documents) != 2 || future.Checkpoint.Seq != p2.Checkpoint.Seq {
				t.Fatalf("future checkpoint: %+v", future)
			}
		})

		t.Run("refused rows come back as the server's state", func(t *testing.T) {
			ann := e.signUp("rx-invalid")
			ann.rxPush(row(rxDoc("rxI1", "good"), nil))
			good := ann.rxPull(0, 10).Documents[0]
			c := ann.rxPush(
				row(rxDoc("rxI1", "", "count", "many"), good), // invalid update
				row(rxDoc("rxI2", "new", "count", 1.5), nil),  // invalid create
				row(rxDoc("bad id!", "x"), nil),               // invalid uid
				row(rxDoc("rxI3", "fine"), nil),
			)
			got := byID(c)
			if len(c) != 3 || got["rxI1"]["title"] != "good" || got["rxI2"]["_deleted"] != true || got["bad id!"]["_deleted"] != true {
				t.Fatalf("refused rows: %+v", c)
			}
			docs := byID(ann.rxPull(0, 10).Documents)
			// The refused create was never stored: the answer told the
			// client it does not exist, and the pull has nothing of it.
			if docs["rxI3"]["title"] != "fine" || docs["rxI1"]["title"] != "good" || docs["rxI2"] != nil {
				t.Fatalf("after refused rows: %+v", docs)
			}
		})

		t.Run("another user sees nothing and has ids of their own", func(t *testing.T) {
			ann := e.signUp("rx-owner")
			bob := e.signUp("rx-bob")
			ann.rxPush(row(rxDoc("rxO1", "secret title"), nil))
			if p := bob.rxPull(0, 100); len(p.Documents) != 0 {
				t.Fatalf("bob sees %+v", p.Documents)
			}
			// The same id is Bob's own document: no conflict, nothing of
			// Ann's revealed.
			if c := bob.rxPush(row(rxDoc("rxO1", "bob's"), nil)); len(c) != 0 {
				t.Fatalf("bob's create of an id ann uses: %+v", c)
			}
			if d := bob.rxPull(0, 100).Documents; len(d) != 1 || d[0]["title"] != "bob's" {
				t.Fatalf("bob's documents: %+v", d)
			}
			if d := ann.rxPull(0, 100).Documents; len(d) != 1 || d[0]["title"] != "secret title" {
				t.Fatalf("ann's document changed: %+v", d)
			}
		})

		t.Run("bad input gets the error shape", func(t *testing.T) {
			ann := e.signUp("rx-bad")
			for _, c := range []struct {
				method, path, body string
				status             int
				code               string
			}{
				{"GET", "/sync/rxdb/tasks/pull?seq=abc", "", 400, "invalid"},
				{"GET", "/sync/rxdb/tasks/pull?seq=-1", "", 400, "invalid"},
				{"GET", "/sync/rxdb/tasks/pull?limit=0", "", 400, "invalid"},
				{"GET", "/sync/rxdb/nope/pull", "", 404, "not_found"},
				{"POST", "/sync/rxdb/nope/push", `[]`, 404, "not_found"},
				{"POST", "/sync/rxdb/tasks/push", `{}`, 400, "invalid"},
				{"POST", "/sync/rxdb/tasks/push", `[`, 400, "invalid"},
				{"POST", "/sync/rxdb/tasks/push", `[1]`, 400, "invalid"},
				{"POST", "/sync/rxdb/tasks/push", `[{"assumedMasterState":null}]`, 400, "invalid"},
				{"POST", "/sync/rxdb/tasks/push", `[{"newDocumentState":{"id":7}}]`, 400, "invalid"},
				{"POST", "/sync/rxdb/tasks/push", `[{"newDocumentState":{"id":"x"},"assumedMasterState":[]}]`, 400, "invalid"},
				{"DELETE", "/sync/rxdb/tasks/push", "", 405, "method_not_allowed"},
			} {
				var ae apiError
				if st := e.do(c.method, c.path, ann.Token, c.body, &ae); st != c.status || ae.Error.Code != c.code {
					t.Errorf("%s %s %s: %d %+v, want %d %s", c.method, c.path, c.body, st, ae, c.status, c.code)
				}
			}
			var ae apiError
			if st := e.do("GET", "/sync/rxdb/tasks/pull", "", "", &ae); st != 401 {
				t.Errorf("no token: %d", st)
			}
		})

		t.Run("stream", func(t *testing.T) {
			ann := e.signUp("rx-stream")
			bob := e.signUp("rx-stream-bob")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/sync/rxdb/tasks/pull/stream", nil)
			req.Header.Set("Authorization", "Bearer "+ann.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := bufio.NewScanner(resp.Body)
			next := func() string {
				for events.Scan() {
					if line := events.Text(); strings.HasPrefix(line, "data: ") {
						return strings.TrimPrefix(line, "data: ")
					}
				}
				t.Fatalf("stream ended: %v", events.Err())
				return ""
			}
			if ev := next(); ev != `"RESYNC"` {
				t.Fatalf("first event %s, want \"RESYNC\"", ev)
			}
			// Another user's write is not announced; ann's native write is.
			bob.rxPush(row(rxDoc("rxS-bob", "bob's"), nil))
			ann.push(map[string]any{"model": "data.Task", "uid": "rxS1", "modify_at": nowStamp(), "data": map[string]any{"title": "native"}})
			var ev rxPull
			if err := json.Unmarshal([]byte(next()), &ev); err != nil {
				t.Fatal(err)
			}
			if len(ev.Documents) != 1 || ev.Documents[0]["id"] != "rxS1" || ev.Documents[0]["_deleted"] != false || ev.Checkpoint == nil || ev.Checkpoint.Seq == 0 {
				t.Fatalf("event: %+v", ev)
			}
		})
	})
}

// TestAdaptersShareRecords: a record written through any protocol is read
// through the others.
func TestAdaptersShareRecords(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ann := e.signUp("share")
		ts := ann.wmPull(0, 0).Timestamp
		if r := ann.push(map[string]any{"model": "data.Task", "uid": "shN", "modify_at": nowStamp(), "data": map[string]any{"title": "native", "count": 1}})[0]; r.Status != "applied" {
			t.Fatalf("native: %+v", r)
		}
		ann.wmPush(ts, map[string]any{"created": []any{wmTask("shW", "watermelon", "count", 2)}})
		ann.rxPush(row(rxDoc("shR", "rxdb", "count", 3), nil))

		rx := byID(ann.rxPull(0, 100).Documents)
		wm := byID(ann.wmPull(0, 0).Changes["tasks"].Updated)
		changes, _ := ann.pullAll("", 0)
		native := latest(changes)
		for id, title := range map[string]string{"shN": "native", "shW": "watermelon", "shR": "rxdb"} {
			if rx[id]["title"] != title || wm[id]["title"] != title || native["data.Task/"+id].Data["title"] != title {
				t.Errorf("%s: rxdb %v, watermelon %v, native %v", id, rx[id], wm[id], native["data.Task/"+id].Data)
			}
		}
		// An RxDB update of the natively written record, assuming what RxDB
		// pulled, is accepted and reaches WatermelonDB.
		if c := ann.rxPush(row(rxDoc("shN", "edited in rxdb", "count", 1), rx["shN"])); len(c) != 0 {
			t.Fatalf("rxdb edit of a native record: %+v", c)
		}
		if got := byID(ann.wmPull(ts, 0).Changes["tasks"].Updated)["shN"]; got["title"] != "edited in rxdb" {
			t.Fatalf("watermelon sees %+v", got)
		}
	})
}
