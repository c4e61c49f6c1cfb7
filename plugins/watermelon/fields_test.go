package watermelon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/adapter"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/ferrysync/ferry/plugins/watermelon"
	"github.com/uptrace/bun"
)

// fieldsEnv serves table "docs" (data.Doc, FieldLWW) and "tasks"
// (data.Task, last-writer-wins) on db, with a server clock that moves a
// millisecond at every reading.
type fieldsEnv struct {
	url   string
	clock atomic.Int64
}

var clockBase = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func newFieldsEnv(t *testing.T, db *bun.DB) *fieldsEnv {
	t.Helper()
	e := &fieldsEnv{}
	schema := []byte(`{"type":"object","properties":{"title":{"type":"string","minLength":1},"body":{"type":"string"},"tags":{"type":"string"}}}`)
	_, hs := mountApp(t, framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"doc.json": {Data: schema}},
		Now:     func() time.Time { return clockBase.Add(time.Duration(e.clock.Add(1)) * time.Millisecond) }},
		map[string]framework.ModelOptions{"data.Doc": {Schema: "doc.json", Policy: policies.FieldLWW{}}, "data.Task": {Schema: "doc.json"}},
		map[string]string{"docs": "data.Doc", "tasks": "data.Task"})
	e.url = hs.URL
	return e
}

// wmPull pulls after since (0: first sync) and returns the docs and
// tasks by id (deleted ones as nil) and the timestamp.
func (e *fieldsEnv) wmPull(t *testing.T, since int64) (map[string]map[string]any, int64) {
	t.Helper()
	q := "null"
	if since > 0 {
		q = fmt.Sprint(since)
	}
	var p pulled
	if st := call(t, "GET", e.url+"/sync/watermelon?last_pulled_at="+q, "", &p); st != 200 {
		t.Fatalf("pull: %d", st)
	}
	out := map[string]map[string]any{}
	for table, tc := range p.Changes {
		for _, r := range tc.Updated {
			id := r["id"].(string)
			delete(r, "id")
			out[table+"/"+id] = r
		}
		for _, id := range tc.Deleted {
			out[table+"/"+id] = nil
		}
	}
	return out, p.Timestamp
}

type pushAnswer struct {
	Rejected []watermelon.Rejection `json:"rejected"`
	Error    framework.Error        `json:"error"`
}

func (e *fieldsEnv) wmPush(t *testing.T, since int64, body string) (int, pushAnswer) {
	t.Helper()
	var ans pushAnswer
	st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", e.url, since), body, &ans)
	return st, ans
}

// nativeRecord pulls model's record uid through the native protocol.
func (e *fieldsEnv) nativeRecord(t *testing.T, model, uid string) *framework.Record {
	t.Helper()
	var page struct{ Changes []*framework.Record }
	call(t, "GET", e.url+"/sync/pull?models="+model, "", &page)
	for _, r := range page.Changes {
		if r.UID == uid {
			return r
		}
	}
	t.Fatalf("%s/%s not on the server", model, uid)
	return nil
}

func row(id, title, body, changed string) string {
	return fmt.Sprintf(`{"id":%q,"title":%q,"body":%q,"tags":"x","_status":"updated","_changed":%q}`, id, title, body, changed)
}

// TestChangedMergesFieldByField: two devices that pulled one row edit
// different columns of it and push in turn, both from the same pull. Under
// FieldLWW both edits stand (the second push used to be a 409); under
// last-writer-wins the second push is still refused with 409 and applies
// nothing, also when it carries a doc beside.
func TestChangedMergesFieldByField(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newFieldsEnv(t, db)
		_, first := e.wmPull(t, 0)
		if st, _ := e.wmPush(t, first, `{"docs":{"created":[{"id":"d1","title":"t0","body":"b0","tags":"x","_status":"created","_changed":""}]},
			"tasks":{"created":[{"id":"k1","title":"t0","body":"b0","tags":"x","_status":"created","_changed":""}]}}`); st != 200 {
			t.Fatalf("create: %d", st)
		}
		_, seen := e.wmPull(t, first)
		created := e.nativeRecord(t, "data.Doc", "d1")
		if created.FieldsModifyAt != nil {
			t.Fatalf("a created row names no field times: %v", created.FieldsModifyAt)
		}

		// Device A edits the title, device B the body, both from `seen`.
		if st, ans := e.wmPush(t, seen, `{"docs":{"updated":[`+row("d1", "tA", "b0", "title")+`]}}`); st != 200 || len(ans.Rejected) != 0 {
			t.Fatalf("A's push: %d %+v", st, ans)
		}
		if st, ans := e.wmPush(t, seen, `{"docs":{"updated":[`+row("d1", "t0", "bB", "body")+`]}}`); st != 200 || len(ans.Rejected) != 0 {
			t.Fatalf("B's push from the same pull: %d %+v", st, ans)
		}
		got, _ := e.wmPull(t, seen)
		if d := got["docs/d1"]; d["title"] != "tA" || d["body"] != "bB" || d["tags"] != "x" {
			t.Fatalf("merged doc: %v", d)
		}
		rec := e.nativeRecord(t, "data.Doc", "d1")
		// title was last edited by A (before the record's modify_at, B's
		// push), tags at the creation; body at the record's modify_at.
		if len(rec.FieldsModifyAt) != 2 || !rec.FieldsModifyAt["tags"].Equal(created.ModifyAt.Time) ||
			!rec.FieldsModifyAt["title"].After(created.ModifyAt.Time) || !rec.FieldsModifyAt["title"].Before(rec.ModifyAt.Time) {
			t.Fatalf("field times %v (created at %s, modified at %s)", rec.FieldsModifyAt, created.ModifyAt, rec.ModifyAt)
		}
		for _, at := range rec.FieldsModifyAt {
			if at.Equal(adapter.Unedited) {
				t.Fatalf("an unedited column's time was stored: %v", rec.FieldsModifyAt)
			}
		}

		// B's push again (a retry after a lost answer): applied, nothing
		// changes.
		if st, ans := e.wmPush(t, seen, `{"docs":{"updated":[`+row("d1", "t0", "bB", "body")+`]}}`); st != 200 || len(ans.Rejected) != 0 {
			t.Fatalf("B's push again: %d %+v", st, ans)
		}
		if again := e.nativeRecord(t, "data.Doc", "d1"); !framework.JSONEqual(again.Data, rec.Data) {
			t.Fatalf("a retried push changed the doc: %s, was %s", again.Data, rec.Data)
		}

		// Another user pushing the same id writes a doc of their own and
		// leaves ann's alone.
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", e.url, seen),
			strings.NewReader(`{"docs":{"updated":[`+row("d1", "bob's", "b0", "title")+`]}}`))
		req.Header.Set("X-User", "bob")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("bob's push: %v %v", err, resp)
		}
		resp.Body.Close()
		if d := e.nativeRecord(t, "data.Doc", "d1"); !framework.JSONEqual(d.Data, rec.Data) {
			t.Fatalf("bob's push reached ann's doc: %s", d.Data)
		}

		// The same race on a last-writer-wins table: 409, nothing applied,
		// not even the doc edit beside it.
		if st, _ := e.wmPush(t, seen, `{"tasks":{"updated":[`+row("k1", "tA", "b0", "title")+`]}}`); st != 200 {
			t.Fatalf("A's task push: %d", st)
		}
		st, ans := e.wmPush(t, seen, `{"tasks":{"updated":[`+row("k1", "t0", "bB", "body")+`]},"docs":{"updated":[`+row("d1", "tA", "bB2", "body")+`]}}`)
		if st != 409 || len(ans.Error.Details) != 1 || ans.Error.Details[0].Path != "/tasks/k1" {
			t.Fatalf("B's task push from the same pull: %d %+v", st, ans)
		}
		got, now := e.wmPull(t, seen)
		if got["tasks/k1"]["body"] != "b0" || got["docs/d1"]["body"] != "bB" {
			t.Fatalf("a refused push applied something: %v", got)
		}

		// Retried from a fresh pull, both apply.
		if st, ans := e.wmPush(t, now, `{"tasks":{"updated":[`+row("k1", "tA", "bB", "body")+`]},"docs":{"updated":[`+row("d1", "tA", "bB2", "body")+`]}}`); st != 200 || len(ans.Rejected) != 0 {
			t.Fatalf("retry after pulling: %d %+v", st, ans)
		}
		got, _ = e.wmPull(t, now)
		if got["tasks/k1"]["body"] != "bB" || got["docs/d1"]["body"] != "bB2" || got["docs/d1"]["title"] != "tA" {
			t.Fatalf("after the retry: %v", got)
		}
	})
}

// TestChangedLosesAndIsCorrected: a device's edit that loses under the
// model's policy (a native write stamped later; a delete the device had
// not seen) is answered 200 with the record in "rejected", code conflict, and the
// device's next pull brings the server's state, whether or not it had
// pulled that state before. A bad _changed is refused for its record
// alone.
func TestChangedLosesAndIsCorrected(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newFieldsEnv(t, db)
		_, first := e.wmPull(t, 0)
		e.wmPush(t, first, `{"docs":{"created":[{"id":"d1","title":"t0","body":"b0","tags":"x"},{"id":"d2","title":"t0","body":"b0","tags":"x"}]}}`)
		// A native client whose clock is a minute ahead edits the title.
		future := clockBase.Add(time.Minute).Format(framework.TimeFormat)
		var res struct{ Results []struct{ Status string } }
		call(t, "POST", e.url+"/sync/push", `{"changes":[{"model":"data.Doc","uid":"d1","modify_at":"`+future+
			`","data":{"title":"native"},"fields_modify_at":{}}]}`, &res)
		if len(res.Results) != 1 || res.Results[0].Status != "applied" {
			t.Fatalf("native push: %+v", res)
		}
		_, seen := e.wmPull(t, first) // the device has seen the native title

		st, ans := e.wmPush(t, seen, `{"docs":{"updated":[`+row("d1", "mine", "b0", "title")+`]}}`)
		if st != 200 || len(ans.Rejected) != 1 || ans.Rejected[0].ID != "d1" || ans.Rejected[0].Code != "conflict" {
			t.Fatalf("a losing edit: %d %+v", st, ans)
		}
		got, after := e.wmPull(t, seen)
		if d, ok := got["docs/d1"]; !ok || d["title"] != "native" || d["body"] != "b0" {
			t.Fatalf("the next pull must bring the server's state back: %v", got)
		}
		// Sent again, the record keeps its field times: the native title
		// is still a minute ahead, not stamped with the resend's time.
		rec := e.nativeRecord(t, "data.Doc", "d1")
		var data map[string]any
		_ = json.Unmarshal(rec.Data, &data)
		if at, _ := framework.EffectiveFieldTime(rec, data, "title"); at.Format(framework.TimeFormat) != future {
			t.Fatalf("the resent title's time is %s, want %s (record %+v)", at, future, rec)
		}

		// Another device deletes d2; this one, which had not seen that,
		// edits it: stale, and its next pull brings the tombstone.
		if st, _ := e.wmPush(t, after, `{"docs":{"deleted":["d2"]}}`); st != 200 {
			t.Fatalf("delete: %d", st)
		}
		st, ans = e.wmPush(t, after, `{"docs":{"updated":[`+row("d2", "t0", "edited", "body")+`]}}`)
		if st != 200 || len(ans.Rejected) != 1 || ans.Rejected[0].ID != "d2" || ans.Rejected[0].Code != "conflict" {
			t.Fatalf("an edit of a deleted doc: %d %+v", st, ans)
		}
		got, after = e.wmPull(t, after)
		if d, ok := got["docs/d2"]; !ok || d != nil {
			t.Fatalf("the tombstone must come with the next pull: %v", got)
		}

		// _changed that is not a string: that record is refused (and its
		// server state sent again), the one beside it applies.
		st, ans = e.wmPush(t, after, `{"docs":{"updated":[{"id":"d1","title":"x","body":"b0","tags":"x","_changed":7},`+row("d3", "new", "", "title")+`]}}`)
		if st != 200 || len(ans.Rejected) != 1 || ans.Rejected[0].ID != "d1" || ans.Rejected[0].Code != "invalid" ||
			!strings.Contains(ans.Rejected[0].Errors[0].Message, "_changed must be a string") {
			t.Fatalf("bad _changed: %d %+v", st, ans)
		}
		got, _ = e.wmPull(t, after)
		if got["docs/d1"]["title"] != "native" || got["docs/d3"]["title"] != "new" {
			t.Fatalf("after a bad _changed: %v", got)
		}
		// d3 was pushed as updated but the server lacked it: it is created,
		// its unedited columns at the epoch, so they lose to any edit.
		rec = e.nativeRecord(t, "data.Doc", "d3")
		if !rec.FieldsModifyAt["body"].Equal(adapter.Unedited) || !rec.FieldsModifyAt["tags"].Equal(adapter.Unedited) {
			t.Fatalf("d3's field times: %v", rec.FieldsModifyAt)
		}
		if _, ok := rec.FieldsModifyAt["title"]; ok {
			t.Fatalf("the edited column takes the record's modify_at: %v", rec.FieldsModifyAt)
		}
		b, _ := json.Marshal(rec.FieldsModifyAt)
		if !strings.Contains(string(b), "1970-01-01T00:00:00") {
			t.Fatalf("wire form of the epoch: %s", b)
		}
	})
}

// TestChangedConcurrentDevices: devices that pulled one row push at once,
// each an edit of its own column, from the same pull: every edit stands.
func TestChangedConcurrentDevices(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newFieldsEnv(t, db)
		const n = 8
		cols := make([]string, n)
		for i := range cols {
			cols[i] = fmt.Sprintf(`"c%d":"old"`, i)
		}
		_, first := e.wmPull(t, 0)
		if st, _ := e.wmPush(t, first, `{"docs":{"created":[{"id":"d","title":"t",`+strings.Join(cols, ",")+`}]}}`); st != 200 {
			t.Fatalf("create: %d", st)
		}
		_, seen := e.wmPull(t, first)
		errs := make(chan string, n)
		for i := 0; i < n; i++ {
			go func() {
				mine := slices.Clone(cols)
				mine[i] = fmt.Sprintf(`"c%d":"new"`, i)
				body := fmt.Sprintf(`{"docs":{"updated":[{"id":"d","title":"t",%s,"_status":"updated","_changed":"c%d"}]}}`, strings.Join(mine, ","), i)
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", e.url, seen), strings.NewReader(body))
				req.Header.Set("X-User", "ann")
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				defer resp.Body.Close()
				var ans pushAnswer
				if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 || len(ans.Rejected) != 0 {
					errs <- fmt.Sprintf("device %d: %d %v %+v", i, resp.StatusCode, err, ans)
					return
				}
				errs <- ""
			}()
		}
		for i := 0; i < n; i++ {
			if msg := <-errs; msg != "" {
				t.Error(msg)
			}
		}
		got, _ := e.wmPull(t, seen)
		for i := 0; i < n; i++ {
			if v := got["docs/d"][fmt.Sprintf("c%d", i)]; v != "new" {
				t.Errorf("c%d is %v after every device pushed its edit: %v", i, v, got["docs/d"])
			}
		}
	})
}
