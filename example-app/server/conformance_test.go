package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	t0 = "2026-11-25T10:00:00.000000Z"
	t1 = "2026-11-25T11:00:00.000000Z"
	t2 = "2026-11-25T12:00:00.000000Z"
)

func TestProtocolConformance(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		t.Run("create update stale equal", func(t *testing.T) {
			ann := e.signUp("ann-cu")
			st, s, _ := ann.sync(note("n1", t1, "first"))
			if st != 200 || s.Status != "applied" || s.Record.Version == 0 || s.Record.Owner != ann.ID || s.Record.ModifyAt != t1 {
				t.Fatalf("create: %d %+v", st, s)
			}
			v1 := s.Record.Version
			st, s, _ = ann.sync(note("n1", t2, "second"))
			if st != 200 || s.Status != "applied" || s.Record.Version <= v1 || s.Record.Data["title"] != "second" {
				t.Fatalf("update: %d %+v", st, s)
			}
			v2 := s.Record.Version
			st, s, _ = ann.sync(note("n1", t0, "older"))
			if st != 200 || s.Status != "stale" || s.Record.Data["title"] != "second" || s.Record.Version != v2 {
				t.Fatalf("stale update must lose and return the winner: %d %+v", st, s)
			}
			st, s, _ = ann.sync(note("n1", t2, "same time"))
			if st != 200 || s.Status != "applied" || s.Record.Data["title"] != "same time" {
				t.Fatalf("equal modify_at must apply: %d %+v", st, s)
			}
		})

		t.Run("idempotent retry", func(t *testing.T) {
			ann := e.signUp("ann-retry")
			c := note("r1", t1, "once")
			first := ann.push(c)[0]
			again := ann.push(c)[0]
			if first.Status != "applied" || again.Status != "applied" || again.Record.Version != first.Record.Version {
				t.Fatalf("retry made a new version: %+v then %+v", first.Record, again.Record)
			}
			changes, _ := ann.pullAll("", 0)
			if n := len(latest(changes)); n != 2 { // the user and the note
				t.Fatalf("pull after retry: %d records", n)
			}
		})

		t.Run("tombstone reaches another device", func(t *testing.T) {
			ann := e.signUp("ann-del")
			ann.push(note("d1", t1, "doomed"))
			_, cursorB := ann.pullAll("", 0)
			res := ann.push(map[string]any{"model": "data.Note", "uid": "d1", "modify_at": t2, "is_deleted": true})[0]
			if res.Status != "applied" || !res.Record.IsDeleted || res.Record.Data["title"] != "doomed" {
				t.Fatalf("delete: %+v", res)
			}
			changes, _ := ann.pullAll(cursorB, 0)
			if len(changes) != 1 || !changes[0].IsDeleted || changes[0].UID != "d1" {
				t.Fatalf("device B pulled %+v, want the tombstone", changes)
			}
		})

		t.Run("unknown model", func(t *testing.T) {
			ann := e.signUp("ann-unknown")
			st, _, ae := ann.sync(map[string]any{"model": "data.Nope", "uid": "x1", "modify_at": t1, "data": map[string]any{}})
			if st != 400 || ae.Error.Code != "unknown_model" {
				t.Fatalf("single: %d %+v", st, ae)
			}
			res := ann.push(map[string]any{"model": "data.Nope", "uid": "x1", "modify_at": t1, "data": map[string]any{}})[0]
			if res.Status != "rejected" || len(res.Errors) == 0 || res.Errors[0].Path != "/model" {
				t.Fatalf("push: %+v", res)
			}
			var ae2 apiError
			if st := e.do("GET", "/sync/pull?models=data.Nope", ann.Token, "", &ae2); st != 400 || ae2.Error.Code != "unknown_model" {
				t.Fatalf("pull filter: %d %+v", st, ae2)
			}
		})

		t.Run("invalid data has JSON pointers", func(t *testing.T) {
			ann := e.signUp("ann-invalid")
			st, _, ae := ann.sync(map[string]any{"model": "data.Note", "uid": "i1", "modify_at": t1,
				"data": map[string]any{"title": strings.Repeat("x", 201), "tags": []any{"ok", 7}}})
			if st != 400 || ae.Error.Code != "invalid" {
				t.Fatalf("%d %+v", st, ae)
			}
			paths := map[string]bool{}
			for _, d := range ae.Error.Details {
				paths[d.Path] = true
			}
			if !paths["/data/title"] || !paths["/data/tags/1"] {
				t.Fatalf("details %+v lack /data/title and /data/tags/1", ae.Error.Details)
			}
			res := ann.push(
				map[string]any{"model": "data.Note", "uid": "i2", "modify_at": t1, "data": map[string]any{}},
				note("i3", t1, "fine"),
				map[string]any{"model": "data.Note", "uid": "bad uid!", "modify_at": t1, "data": map[string]any{"title": "x"}},
			)
			if res[0].Status != "rejected" || res[0].Errors[0].Path != "/data" || res[1].Status != "applied" || res[2].Status != "rejected" || res[2].Errors[0].Path != "/uid" {
				t.Fatalf("one bad change must not block the rest: %+v", res)
			}
		})

		t.Run("modify_at forms", func(t *testing.T) {
			ann := e.signUp("ann-time")
			st, _, ae := ann.sync(note("m1", "2026-11-25T10:00:00+02:00", "x"))
			if st != 400 || ae.Error.Details[0].Path != "/modify_at" || ae.Error.Details[0].Message != "modify_at must be UTC" {
				t.Fatalf("non-UTC: %d %+v", st, ae)
			}
			st, s, _ := ann.sync(map[string]any{"model": "data.Note", "uid": "m2", "modify_at": 1764064800.25, "data": map[string]any{"title": "epoch"}})
			if st != 200 || s.Record.ModifyAt != "2025-11-25T10:00:00.250000Z" {
				t.Fatalf("epoch seconds: %d %+v", st, s)
			}
			st, s, _ = ann.sync(note("m3", "2026-11-25T10:00:00+00:00", "plus zero"))
			if st != 200 || s.Record.ModifyAt != t0 {
				t.Fatalf("+00:00: %d %+v", st, s)
			}
			future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			st, _, ae = ann.sync(note("m4", future, "from the future"))
			if st != 400 || ae.Error.Details[0].Path != "/modify_at" {
				t.Fatalf("far future: %d %+v", st, ae)
			}
			near := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
			if st, _, _ = ann.sync(note("m5", near, "slightly ahead")); st != 200 {
				t.Fatalf("a minute ahead is within the skew: %d", st)
			}
		})

		t.Run("another owner's record", func(t *testing.T) {
			ann, bob := e.signUp("ann-own"), e.signUp("bob-own")
			ann.push(note("secret", t1, "ann's secret"))
			// Records are identified by owner, model and uid: Bob's
			// "secret" is Bob's own record, and nothing tells him Ann
			// has one (not even a stale answer: his is older).
			st, s, _ := bob.sync(note("secret", t0, "bob was here"))
			if st != 200 || s.Status != "applied" || s.Record.Owner != bob.ID || s.Record.Data["title"] != "bob was here" {
				t.Fatalf("single: %d %+v", st, s)
			}
			res := bob.push(note("secret", t2, "bob again"), note("bobs", t1, "bob's own"))
			if res[0].Status != "applied" || res[0].Record.Data["title"] != "bob again" || res[1].Status != "applied" {
				t.Fatalf("push: %+v", res)
			}
			// Bob cannot write Ann's user record either.
			res = bob.push(map[string]any{"model": "data.User", "uid": ann.ID, "modify_at": t2, "data": map[string]any{"name": "x", "email": "x@example.com"}})
			if res[0].Status != "forbidden" {
				t.Fatalf("user proxy: %+v", res)
			}
			changes, _ := ann.pullAll("", 0)
			got := latest(changes)
			if got["data.Note/secret"].Data["title"] != "ann's secret" || len(got) != 2 {
				t.Fatalf("ann's data changed or leaked in: %+v", got)
			}
			changes, _ = bob.pullAll("", 0)
			for _, c := range changes {
				if c.Owner != bob.ID {
					t.Fatalf("bob pulled %+v", c)
				}
			}
			if got := latest(changes); got["data.Note/secret"].Data["title"] != "bob again" {
				t.Fatalf("bob's own secret: %+v", got)
			}
		})

		t.Run("user proxy", func(t *testing.T) {
			ann := e.signUp("ann-proxy")
			e.signUp("bob-proxy")
			changes, _ := ann.pullAll("", 0)
			u := latest(changes)["data.User/"+ann.ID]
			if u.Owner != ann.ID || u.Data["email"] != "ann-proxy@example.com" || u.Data["password_hash"] != nil || len(u.Data) != 2 {
				t.Fatalf("user record: %+v", u)
			}
			res := ann.push(map[string]any{"model": "data.User", "uid": ann.ID, "modify_at": time.Now().UTC().Format(time.RFC3339Nano),
				"data": map[string]any{"name": "Ann P.", "email": "Ann-Proxy@Example.com"}})[0]
			if res.Status != "applied" || res.Record.Data["name"] != "Ann P." || res.Record.Data["email"] != "ann-proxy@example.com" {
				t.Fatalf("rename: %+v", res)
			}
			res = ann.push(map[string]any{"model": "data.User", "uid": ann.ID, "modify_at": time.Now().UTC().Format(time.RFC3339Nano),
				"data": map[string]any{"name": "Ann", "email": "bob-proxy@example.com"}})[0]
			if res.Status != "rejected" || res.Errors[0].Path != "/data/email" || !strings.Contains(res.Errors[0].Message, "POST /auth/email") {
				t.Fatalf("taking bob's email: %+v", res)
			}
			// The password survived the sync update.
			var login struct {
				Token string `json:"token"`
			}
			if st := e.do("POST", "/auth/login", "", `{"email":"ann-proxy@example.com","password":"correct horse"}`, &login); st != 200 || login.Token == "" {
				t.Fatalf("login after sync update: %d", st)
			}
		})

		t.Run("accounts", func(t *testing.T) {
			e.signUp("carol")
			var ae apiError
			if st := e.do("POST", "/auth/register", "", `{"email":"CAROL@example.com","password":"whatever1","name":"C"}`, &ae); st != 409 || ae.Error.Code != "conflict" {
				t.Fatalf("duplicate email: %d %+v", st, ae)
			}
			if st := e.do("POST", "/auth/login", "", `{"email":"carol@example.com","password":"wrong password"}`, &ae); st != 401 {
				t.Fatalf("bad password: %d", st)
			}
			if st := e.do("POST", "/auth/register", "", `{"email":"nope","password":"short","name":""}`, &ae); st != 400 || len(ae.Error.Details) != 3 {
				t.Fatalf("bad sign-up: %d %+v", st, ae)
			}
		})

		t.Run("pull pagination and cursors", func(t *testing.T) {
			ann := e.signUp("ann-page")
			var changes []map[string]any
			for i := 0; i < 25; i++ {
				changes = append(changes, note(fmt.Sprintf("p%02d", i), t1, fmt.Sprint("note ", i)))
			}
			ann.push(changes...)
			var page pullAnswer
			if st := e.do("GET", "/sync/pull?limit=10", ann.Token, "", &page); st != 200 || len(page.Changes) != 10 || !page.HasMore {
				t.Fatalf("first page: %d %d %v", st, len(page.Changes), page.HasMore)
			}
			// A write between pages is not part of this pull…
			ann.push(note("late", t2, "late"))
			rest, final := ann.pullAll(page.Cursor, 10)
			all := append(page.Changes, rest...)
			if len(all) != 26 { // 25 notes and the user
				t.Fatalf("paged pull returned %d records", len(all))
			}
			for i := 1; i < len(all); i++ {
				if all[i].Version <= all[i-1].Version {
					t.Fatalf("not in version order at %d", i)
				}
			}
			// …but the next one.
			next, _ := ann.pullAll(final, 0)
			if len(next) != 1 || next[0].UID != "late" {
				t.Fatalf("after the last page: %+v", next)
			}
			var filtered pullAnswer
			e.do("GET", "/sync/pull?models=data.User", ann.Token, "", &filtered)
			if len(filtered.Changes) != 1 || filtered.Changes[0].Model != "data.User" {
				t.Fatalf("models filter: %+v", filtered.Changes)
			}
			var ae apiError
			for _, bad := range []string{"garbage", "eyJ2IjoyfQ", page.Cursor + "x"} {
				if st := e.do("GET", "/sync/pull?cursor="+bad, ann.Token, "", &ae); st != 400 || ae.Error.Code != "invalid_cursor" {
					t.Fatalf("cursor %q: %d %+v", bad, st, ae)
				}
			}
			if st := e.do("GET", "/sync/pull?models=data.Note&cursor="+final, ann.Token, "", &ae); st != 400 || ae.Error.Code != "invalid_cursor" {
				t.Fatalf("cursor of another filter: %d %+v", st, ae)
			}
			for _, bad := range []string{"0", "-1", "abc", "1.5"} {
				if st := e.do("GET", "/sync/pull?limit="+bad, ann.Token, "", &ae); st != 400 || ae.Error.Code != "invalid" {
					t.Fatalf("limit %q: %d %+v", bad, st, ae)
				}
			}
			if st := e.do("GET", "/sync/pull?limit=99999999999999999999", ann.Token, "", &page); st != 200 || len(page.Changes) != 27 {
				t.Fatalf("huge limit is capped, not refused: %d %d", st, len(page.Changes))
			}
		})

		t.Run("transport errors", func(t *testing.T) {
			ann := e.signUp("ann-transport")
			var ae apiError
			req, _ := http.NewRequest("POST", e.url+"/sync/push", strings.NewReader(`{"changes":[]}`))
			req.Header.Set("Authorization", "Bearer "+ann.Token)
			req.Header.Set("Content-Type", "text/plain")
			if st := e.send(req, &ae); st != 415 || ae.Error.Code != "unsupported_media_type" {
				t.Fatalf("content type: %d %+v", st, ae)
			}
			if st := e.do("POST", "/sync/push", "", `{"changes":[]}`, &ae); st != 401 || ae.Error.Code != "unauthenticated" {
				t.Fatalf("no token: %d", st)
			}
			if st := e.do("GET", "/sync/pull", ann.Token+"x", "", &ae); st != 401 {
				t.Fatalf("bad token: %d", st)
			}
			for _, body := range []string{`{"changes":`, `[1,2]`, `{"changes":"x"}`, `{"changes":[]} {}`} {
				if st := e.do("POST", "/sync/push", ann.Token, body, &ae); st != 400 || ae.Error.Code != "invalid" {
					t.Fatalf("body %q: %d %+v", body, st, ae)
				}
			}
			many := make([]map[string]any, 1001)
			for i := range many {
				many[i] = note(fmt.Sprint("big", i), t1, "x")
			}
			if st := e.do("POST", "/sync/push", ann.Token, jsonBody(map[string]any{"changes": many}), &ae); st != 413 || ae.Error.Code != "too_large" {
				t.Fatalf("1001 changes: %d %+v", st, ae)
			}
			if st := e.do("GET", "/sync/nowhere", ann.Token, "", &ae); st != 404 || ae.Error.Code != "not_found" {
				t.Fatalf("404: %d %+v", st, ae)
			}
			if st := e.do("DELETE", "/sync/push", ann.Token, "", &ae); st != 405 || ae.Error.Code != "method_not_allowed" {
				t.Fatalf("405: %d %+v", st, ae)
			}
		})

		t.Run("oversized body is refused unread", func(t *testing.T) {
			ann := e.signUp("ann-big")
			// Declared too large: refused before reading a byte.
			body := &countingReader{limit: 20 << 20}
			req := httptest.NewRequest("POST", "/sync/push", body)
			req.ContentLength = 20 << 20
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+ann.Token)
			rec := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != 413 || body.read != 0 {
				t.Fatalf("declared 20 MiB: status %d after reading %d bytes", rec.Code, body.read)
			}
			// Undeclared (chunked): reading stops just past the limit.
			body = &countingReader{limit: 20 << 20}
			req = httptest.NewRequest("POST", "/sync/push", body)
			req.ContentLength = -1
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+ann.Token)
			rec = httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != 413 || body.read > 11<<20 {
				t.Fatalf("chunked 20 MiB: status %d after reading %d bytes", rec.Code, body.read)
			}
		})

		t.Run("push moves the cursor past own writes only", func(t *testing.T) {
			ann := e.signUp("ann-pushcursor")
			_, cur := ann.pullAll("", 0)
			pushWithCursor := func(cursor string, changes ...map[string]any) string {
				var out struct {
					Cursor string `json:"cursor"`
				}
				body := jsonBody(map[string]any{"cursor": cursor, "changes": changes})
				if st := e.do("POST", "/sync/push", ann.Token, body, &out); st != 200 || out.Cursor == "" {
					t.Fatalf("push: %d %q", st, out.Cursor)
				}
				return out.Cursor
			}
			cur = pushWithCursor(cur, note("own1", t1, "mine"), note("own2", t1, "mine too"))
			if got, _ := ann.pullAll(cur, 0); len(got) != 0 {
				t.Fatalf("own writes came back as news: %+v", got)
			}
			// Another device writes; this device's next push must not skip it.
			ann.push(note("other", t1, "from the other device"))
			cur = pushWithCursor(cur, note("own3", t1, "mine"))
			got, _ := ann.pullAll(cur, 0)
			if len(got) != 2 || got[0].UID != "other" {
				t.Fatalf("after another device's write: %+v", got)
			}
			var ae apiError
			if st := e.do("POST", "/sync/push", ann.Token, `{"cursor":"junk","changes":[]}`, &ae); st != 400 || ae.Error.Code != "invalid_cursor" {
				t.Fatalf("junk cursor: %d %+v", st, ae)
			}
		})

		t.Run("pulled records push back unchanged", func(t *testing.T) {
			// Whatever the server sends must be accepted back as it is: a
			// device that edits nothing but re-sends a record (or edits from
			// the server's state) must not be rejected.
			ann := e.signUp("ann-roundtrip")
			ann.push(note("bare", t1, "no tags"), map[string]any{"model": "data.Setting", "uid": "s", "modify_at": t1, "data": map[string]any{"key": "k"}})
			changes, _ := ann.pullAll("", 0)
			var back []map[string]any
			for _, c := range changes {
				back = append(back, map[string]any{"model": c.Model, "uid": c.UID, "modify_at": c.ModifyAt, "is_deleted": c.IsDeleted, "data": c.Data})
			}
			for i, r := range ann.push(back...) {
				if r.Status != "applied" || r.Record.Version != changes[i].Version {
					t.Fatalf("%s pushed back: %s %v (answer %+v, was version %d)", r.UID, r.Status, r.Errors, r.Record, changes[i].Version)
				}
			}
		})

		t.Run("two devices edit offline", func(t *testing.T) {
			ann := e.signUp("ann-devices")
			// Both devices start from the same synced state.
			ann.push(note("shared", t0, "v0"), note("a-only", t0, "a0"))
			stateA, curA := ann.pullAll("", 0)
			stateB, curB := ann.pullAll("", 0)
			devA, devB := latest(stateA), latest(stateB)
			// Offline: A edits "shared" at 11:00, B at 12:00; each makes a note; B deletes a-only.
			offA := []map[string]any{note("shared", t1, "from A"), note("made-by-a", t1, "A's new")}
			offB := []map[string]any{note("shared", t2, "from B"), note("made-by-b", t1, "B's new"),
				{"model": "data.Note", "uid": "a-only", "modify_at": t1, "is_deleted": true}}
			// A syncs first, then B, then A again.
			for _, step := range []struct {
				dev     map[string]record
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
				var got []record
				got, *step.cur = ann.pullAll(*step.cur, 2)
				for _, c := range got {
					step.dev[c.Model+"/"+c.UID] = c
				}
			}
			serverState, _ := ann.pullAll("", 0)
			want := latest(serverState)
			for name, dev := range map[string]map[string]record{"A": devA, "B": devB} {
				if fmt.Sprint(dev) != fmt.Sprint(want) {
					t.Fatalf("device %s\n%v\nserver\n%v", name, dev, want)
				}
			}
			if want["data.Note/shared"].Data["title"] != "from B" || !want["data.Note/a-only"].IsDeleted {
				t.Fatalf("server state: %+v", want)
			}
		})
	})
}

type countingReader struct {
	limit, read int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.limit {
		return 0, io.EOF
	}
	n := min(len(p), r.limit-r.read)
	for i := range p[:n] {
		p[i] = ' '
	}
	r.read += n
	return n, nil
}
