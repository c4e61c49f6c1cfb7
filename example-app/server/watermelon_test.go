package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// wmTable is one table of a WatermelonDB changes object.
type wmTable struct {
	Created []map[string]any `json:"created"`
	Updated []map[string]any `json:"updated"`
	Deleted []string         `json:"deleted"`
}

type wmPull struct {
	Changes   map[string]wmTable `json:"changes"`
	Timestamp int64              `json:"timestamp"`
	HasMore   bool               `json:"has_more"`
}

type wmRejection struct {
	Table  string       `json:"table"`
	ID     string       `json:"id"`
	Errors []fieldError `json:"errors"`
}

type wmPush struct {
	OK       bool          `json:"ok"`
	Rejected []wmRejection `json:"rejected"`
}

// wmPull pulls once; since 0 is the first sync (last_pulled_at=null).
func (u *user) wmPull(since int64, limit int) wmPull {
	u.e.t.Helper()
	q := url.Values{"schema_version": {"1"}, "migration": {"null"}, "last_pulled_at": {"null"}}
	if since > 0 {
		q.Set("last_pulled_at", fmt.Sprint(since))
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var out wmPull
	if st := u.e.do("GET", "/sync/watermelon?"+q.Encode(), u.Token, "", &out); st != 200 {
		u.e.t.Fatalf("watermelon pull: status %d", st)
	}
	tasks, ok := out.Changes["tasks"]
	if !ok || tasks.Created == nil || tasks.Updated == nil || tasks.Deleted == nil || len(tasks.Created) != 0 {
		u.e.t.Fatalf("watermelon pull: tasks must have created (empty), updated and deleted arrays: %+v", out.Changes)
	}
	if out.Timestamp <= 0 {
		u.e.t.Fatalf("watermelon pull: timestamp %d", out.Timestamp)
	}
	return out
}

// wmPush pushes a changes object and returns the status and answer.
func (u *user) wmPush(since int64, tasks map[string]any) (int, wmPush, apiError) {
	u.e.t.Helper()
	body := jsonBody(map[string]any{"tasks": tasks})
	var raw map[string]any
	st := u.e.do("POST", fmt.Sprintf("/sync/watermelon?last_pulled_at=%d", since), u.Token, body, &raw)
	var ok wmPush
	var ae apiError
	if st == 200 {
		_ = remarshal(raw, &ok)
	} else {
		_ = remarshal(raw, &ae)
	}
	return st, ok, ae
}

func ids(docs []map[string]any) []string {
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		out = append(out, d["id"].(string))
	}
	sort.Strings(out)
	return out
}

func byID(docs []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, d := range docs {
		out[d["id"].(string)] = d
	}
	return out
}

func wmTask(id, title string, extra ...any) map[string]any {
	d := map[string]any{"id": id, "title": title, "body": "", "count": 0, "done": false, "_status": "created", "_changed": ""}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i].(string)] = extra[i+1]
	}
	return d
}

func TestWatermelon(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		t.Run("first sync, push, pull, tombstones", func(t *testing.T) {
			ann := e.signUp("wm-ann")
			first := ann.wmPull(0, 0)
			if n := len(first.Changes["tasks"].Updated); n != 0 {
				t.Fatalf("a new user has %d tasks", n)
			}
			st, res, _ := ann.wmPush(first.Timestamp, map[string]any{
				"created": []any{wmTask("wmA1", "one", "count", 3), wmTask("wmA2", "two", "done", true)},
				"updated": []any{}, "deleted": []any{},
			})
			if st != 200 || !res.OK || len(res.Rejected) != 0 {
				t.Fatalf("push: %d %+v", st, res)
			}
			p := ann.wmPull(first.Timestamp, 0)
			got := byID(p.Changes["tasks"].Updated)
			if len(got) != 2 || got["wmA1"]["count"] != float64(3) || got["wmA2"]["done"] != true || got["wmA1"]["title"] != "one" {
				t.Fatalf("own pushes must come back as updated: %+v", p.Changes["tasks"])
			}
			if _, leaked := got["wmA1"]["_status"]; leaked {
				t.Fatal("_status was stored")
			}
			if p.Timestamp <= first.Timestamp {
				t.Fatalf("timestamp did not advance: %d then %d", first.Timestamp, p.Timestamp)
			}
			st, _, _ = ann.wmPush(p.Timestamp, map[string]any{"deleted": []any{"wmA2"}})
			if st != 200 {
				t.Fatalf("delete: %d", st)
			}
			// A first sync sends no deletions; an incremental one does.
			if f := ann.wmPull(0, 0); len(f.Changes["tasks"].Deleted) != 0 || strings.Join(ids(f.Changes["tasks"].Updated), ",") != "wmA1" {
				t.Fatalf("first sync: %+v", f.Changes["tasks"])
			}
			if inc := ann.wmPull(p.Timestamp, 0); strings.Join(inc.Changes["tasks"].Deleted, ",") != "wmA2" || len(inc.Changes["tasks"].Updated) != 0 {
				t.Fatalf("incremental: %+v", inc.Changes["tasks"])
			}
			// The native protocol sees the same records.
			changes, _ := ann.pullAll("", 0)
			recs := latest(changes)
			if r := recs["data.Task/wmA1"]; r.Data["count"] != float64(3) || r.Owner != ann.ID || r.IsDeleted {
				t.Fatalf("native view of wmA1: %+v", r)
			}
			if !recs["data.Task/wmA2"].IsDeleted {
				t.Fatal("native view of wmA2 is not a tombstone")
			}
		})

		t.Run("upserts and missing deletes", func(t *testing.T) {
			ann := e.signUp("wm-upsert")
			ts := ann.wmPull(0, 0).Timestamp
			ann.wmPush(ts, map[string]any{"created": []any{wmTask("wmU1", "exists")}})
			ts = ann.wmPull(ts, 0).Timestamp
			st, res, _ := ann.wmPush(ts, map[string]any{
				"created": []any{wmTask("wmU1", "created again")}, // exists: an update
				"updated": []any{wmTask("wmU2", "never created")}, // missing: a create
				"deleted": []any{"wmU3"},                          // missing: a tombstone
			})
			if st != 200 || len(res.Rejected) != 0 {
				t.Fatalf("push: %d %+v", st, res)
			}
			p := ann.wmPull(ts, 0)
			got := byID(p.Changes["tasks"].Updated)
			if got["wmU1"]["title"] != "created again" || got["wmU2"]["title"] != "never created" || strings.Join(p.Changes["tasks"].Deleted, ",") != "wmU3" {
				t.Fatalf("pull: %+v", p.Changes["tasks"])
			}
		})

		t.Run("conflict is 409 and applies nothing", func(t *testing.T) {
			ann := e.signUp("wm-conflict")
			ts := ann.wmPull(0, 0).Timestamp
			ann.wmPush(ts, map[string]any{"created": []any{wmTask("wmC1", "base"), wmTask("wmC2", "other")}})
			ts = ann.wmPull(ts, 0).Timestamp
			// Another device changes wmC1 natively after this device pulled.
			if r := ann.push(map[string]any{"model": "data.Task", "uid": "wmC1", "modify_at": nowStamp(), "data": map[string]any{"title": "native"}})[0]; r.Status != "applied" {
				t.Fatalf("native write: %+v", r)
			}
			st, _, ae := ann.wmPush(ts, map[string]any{
				"updated": []any{wmTask("wmC1", "mine"), wmTask("wmC2", "also mine")},
				"created": []any{wmTask("wmC3", "new")},
			})
			if st != http.StatusConflict || ae.Error.Code != "conflict" || len(ae.Error.Details) != 1 || ae.Error.Details[0].Path != "/tasks/wmC1" {
				t.Fatalf("want 409 listing wmC1: %d %+v", st, ae)
			}
			p := ann.wmPull(ts, 0)
			if got := ids(p.Changes["tasks"].Updated); strings.Join(got, ",") != "wmC1" || p.Changes["tasks"].Updated[0]["title"] != "native" {
				t.Fatalf("nothing of the refused push may be applied: %+v", p.Changes["tasks"])
			}
			// After pulling, the same push goes through.
			st, _, _ = ann.wmPush(p.Timestamp, map[string]any{"updated": []any{wmTask("wmC1", "mine")}})
			if st != 200 {
				t.Fatalf("push after pull: %d", st)
			}
		})

		t.Run("invalid records are refused and reverted", func(t *testing.T) {
			ann := e.signUp("wm-invalid")
			ts := ann.wmPull(0, 0).Timestamp
			ann.wmPush(ts, map[string]any{"created": []any{wmTask("wmI1", "good")}})
			ts = ann.wmPull(ts, 0).Timestamp
			st, res, _ := ann.wmPush(ts, map[string]any{
				"created": []any{wmTask("wmI2", "", "count", "many"), wmTask("wmI3", "fine"), wmTask("bad id!", "x"), "not an object"},
				"updated": []any{wmTask("wmI1", "good", "count", 1.5)},
			})
			if st != 200 || len(res.Rejected) != 4 {
				t.Fatalf("push: %d %+v", st, res)
			}
			rejected := map[string]wmRejection{}
			for _, r := range res.Rejected {
				if r.Table != "tasks" || len(r.Errors) == 0 {
					t.Fatalf("rejection without table or errors: %+v", r)
				}
				rejected[r.ID] = r
			}
			if _, ok := rejected["wmI2"]; !ok {
				t.Fatalf("wmI2 not rejected: %+v", res.Rejected)
			}
			p := ann.wmPull(ts, 0)
			got := byID(p.Changes["tasks"].Updated)
			if got["wmI3"]["title"] != "fine" {
				t.Fatalf("the valid record was not applied: %+v", p.Changes["tasks"])
			}
			if got["wmI1"]["title"] != "good" || got["wmI1"]["count"] != float64(0) {
				t.Fatalf("the refused update must be corrected by the server's state: %+v", got["wmI1"])
			}
			if !strings.Contains(strings.Join(p.Changes["tasks"].Deleted, ","), "wmI2") {
				t.Fatalf("the refused create must be corrected by a deletion: %+v", p.Changes["tasks"])
			}
		})

		t.Run("paging and timestamps", func(t *testing.T) {
			ann := e.signUp("wm-page")
			ts := ann.wmPull(0, 0).Timestamp
			var created []any
			for i := 0; i < 7; i++ {
				created = append(created, wmTask(fmt.Sprintf("wmP%d", i), fmt.Sprint("task ", i)))
			}
			ann.wmPush(ts, map[string]any{"created": created})
			var seen []string
			since := int64(0)
			for pages := 1; ; pages++ {
				p := ann.wmPull(since, 3)
				seen = append(seen, ids(p.Changes["tasks"].Updated)...)
				if p.Timestamp <= since {
					t.Fatalf("timestamp went from %d to %d", since, p.Timestamp)
				}
				since = p.Timestamp
				if !p.HasMore {
					if pages != 3 {
						t.Fatalf("7 tasks in pages of 3 took %d pages", pages)
					}
					break
				}
			}
			sort.Strings(seen)
			if len(seen) != 7 {
				t.Fatalf("paged through %v", seen)
			}
		})

		t.Run("migration sync sends migrated tables whole", func(t *testing.T) {
			ann := e.signUp("wm-migrate")
			ts := ann.wmPull(0, 0).Timestamp
			ann.wmPush(ts, map[string]any{"created": []any{wmTask("wmM1", "old"), wmTask("wmM2", "gone")}})
			ts = ann.wmPull(ts, 0).Timestamp
			ann.wmPush(ts, map[string]any{"deleted": []any{"wmM2"}, "updated": []any{wmTask("wmM1", "newer")}})
			for _, migration := range []string{
				`{"from":1,"tables":["tasks"],"columns":[]}`,
				`{"from":1,"tables":[],"columns":[{"table":"tasks","columns":["done"]}]}`,
			} {
				q := url.Values{"last_pulled_at": {fmt.Sprint(ts)}, "schema_version": {"2"}, "migration": {migration}}
				var out wmPull
				if st := e.do("GET", "/sync/watermelon?"+q.Encode(), ann.Token, "", &out); st != 200 {
					t.Fatalf("migration pull: %d", st)
				}
				tasks := out.Changes["tasks"]
				if strings.Join(ids(tasks.Updated), ",") != "wmM1" || tasks.Updated[0]["title"] != "newer" || strings.Join(tasks.Deleted, ",") != "wmM2" {
					t.Fatalf("migration %s: %+v", migration, tasks)
				}
			}
		})

		t.Run("another user sees nothing and has ids of their own", func(t *testing.T) {
			ann := e.signUp("wm-owner")
			bob := e.signUp("wm-bob")
			ts := ann.wmPull(0, 0).Timestamp
			ann.wmPush(ts, map[string]any{"created": []any{wmTask("wmO1", "ann's"), wmTask("wmO2", "ann's too")}})
			bts := bob.wmPull(0, 0)
			if len(bts.Changes["tasks"].Updated) != 0 {
				t.Fatalf("bob sees %+v", bts.Changes["tasks"])
			}
			// The same ids are Bob's own records.
			st, res, _ := bob.wmPush(bts.Timestamp, map[string]any{"created": []any{wmTask("wmO1", "bob's")}})
			if st != 200 || len(res.Rejected) != 0 {
				t.Fatalf("bob's create: %d %+v", st, res)
			}
			st, res, _ = bob.wmPush(bob.wmPull(bts.Timestamp, 0).Timestamp, map[string]any{"deleted": []any{"wmO1", "wmO2"}})
			if st != 200 || len(res.Rejected) != 0 {
				t.Fatalf("bob's delete: %d %+v", st, res)
			}
			p := ann.wmPull(0, 0)
			if got := byID(p.Changes["tasks"].Updated); got["wmO1"]["title"] != "ann's" || got["wmO2"]["title"] != "ann's too" {
				t.Fatalf("ann's tasks changed: %+v", got)
			}
			p = bob.wmPull(bts.Timestamp, 0)
			if len(p.Changes["tasks"].Updated) != 0 || strings.Join(p.Changes["tasks"].Deleted, ",") != "wmO1,wmO2" && strings.Join(p.Changes["tasks"].Deleted, ",") != "wmO1" {
				t.Fatalf("bob's own changes: %+v", p.Changes["tasks"])
			}
		})

		t.Run("bad input gets the error shape", func(t *testing.T) {
			ann := e.signUp("wm-bad")
			for _, c := range []struct {
				method, path, body string
				status             int
				code               string
			}{
				{"GET", "/sync/watermelon?last_pulled_at=abc", "", 400, "invalid"},
				{"GET", "/sync/watermelon?last_pulled_at=-3", "", 400, "invalid"},
				{"GET", "/sync/watermelon?last_pulled_at=null&limit=0", "", 400, "invalid"},
				{"GET", "/sync/watermelon?last_pulled_at=null&migration=%7Bnope", "", 400, "invalid"},
				{"GET", "/sync/watermelon?last_pulled_at=null&schema_version=x", "", 400, "invalid"},
				{"GET", "/sync/watermelon?last_pulled_at=999999999", "", 410, "reset_required"},
				{"POST", "/sync/watermelon?last_pulled_at=1", `{"tasks":`, 400, "invalid"},
				{"POST", "/sync/watermelon?last_pulled_at=1", `[]`, 400, "invalid"},
				{"POST", "/sync/watermelon?last_pulled_at=1", `{"nope":{"created":[]}}`, 400, "invalid"},
				{"POST", "/sync/watermelon?last_pulled_at=1", `{"tasks":"x"}`, 400, "invalid"},
				{"POST", "/sync/watermelon?last_pulled_at=1", `{"tasks":{"created":{}}}`, 400, "invalid"},
				{"POST", "/sync/watermelon?last_pulled_at=x", `{}`, 400, "invalid"},
				{"PUT", "/sync/watermelon", `{}`, 405, "method_not_allowed"},
			} {
				var ae apiError
				if st := e.do(c.method, c.path, ann.Token, c.body, &ae); st != c.status || ae.Error.Code != c.code {
					t.Errorf("%s %s %s: %d %+v, want %d %s", c.method, c.path, c.body, st, ae, c.status, c.code)
				}
			}
			var ae apiError
			if st := e.do("GET", "/sync/watermelon?last_pulled_at=null", "", "", &ae); st != 401 || ae.Error.Code != "unauthenticated" {
				t.Errorf("no token: %d %+v", st, ae)
			}
			req, _ := http.NewRequest("POST", e.url+"/sync/watermelon?last_pulled_at=1", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+ann.Token)
			req.Header.Set("Content-Type", "text/plain")
			if st := e.send(req, &ae); st != 415 {
				t.Errorf("text/plain: %d", st)
			}
		})
	})
}

// remarshal converts a decoded JSON value into out.
func remarshal(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// nowStamp is the current time as a native client writes modify_at; the
// adapters stamp the server's receive time, so a native write meant to win
// under last-writer-wins must be at least as recent.
func nowStamp() string { return time.Now().UTC().Format(time.RFC3339Nano) }
