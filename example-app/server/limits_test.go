package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPullModelsFilterIsBounded: a models filter repeating one name
// thousands of times (each copy used to add a table to one UNION ALL: 97 s
// of PostgreSQL CPU for 5,000 copies, a 500 on SQLite) is refused at once,
// and a repeated name within the cap counts once.
func TestPullModelsFilterIsBounded(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("ann")
		if res := u.push(note("n1", "2026-11-25T10:00:00Z", "one")); res[0].Status != "applied" {
			t.Fatalf("push: %+v", res)
		}
		var ae apiError
		filter := strings.TrimSuffix(strings.Repeat("data.Note,", 5000), ",")
		start := time.Now()
		if status := e.do("GET", "/sync/pull?limit=50&models="+filter, u.Token, "", &ae); status != 400 || ae.Error.Code != "invalid" {
			t.Fatalf("5,000 copies: status %d %+v, want 400 invalid", status, ae)
		}
		t.Logf("5,000 copies of a model in the filter refused in %s", time.Since(start))
		var page pullAnswer
		if status := e.do("GET", "/sync/pull?limit=50&models=data.Note,data.Note,data.Note", u.Token, "", &page); status != 200 {
			t.Fatalf("three copies: status %d", status)
		}
		if len(page.Changes) != 1 || page.Changes[0].UID != "n1" {
			t.Fatalf("three copies of the filter gave %+v, want the note once", page.Changes)
		}
		// The cursor is the filter's, deduplicated: it pages on with one copy.
		var next pullAnswer
		if status := e.do("GET", "/sync/pull?models=data.Note&cursor="+page.Cursor, u.Token, "", &next); status != 200 || len(next.Changes) != 0 {
			t.Fatalf("cursor of the deduplicated filter: status %d %+v", status, next)
		}
	})
}

// TestNULCharacterIsTheChangesRejection: PostgreSQL cannot store U+0000,
// and a store's refusal used to fail the whole push with a 500 (on both
// stores), losing the valid changes of the same batch. Now it is that
// change's rejection with its JSON pointer, on both stores alike, and the
// six characters `\u0000` (a backslash and "u0000") round-trip unchanged.
func TestNULCharacterIsTheChangesRejection(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("ann")
		at := "2026-11-25T10:00:00Z"
		withTags := func(uid string, tags ...string) map[string]any {
			c := note(uid, at, "tagged")
			c["data"].(map[string]any)["tags"] = tags
			return c
		}
		literal := `a\u0000b` // six characters between a and b, no NUL
		keyed := map[string]any{"model": "data.Setting", "uid": "s1", "modify_at": at, "data": map[string]any{"key": "k", "value": map[string]any{"x\x00": 1}}}
		res := u.push(note("bad", at, "a\x00b"), note("good", at, "fine"), withTags("badtag", "ok", "x\x00"), withTags("lit", literal), keyed)
		want := []struct{ status, path string }{
			{"rejected", "/data/title"}, {"applied", ""}, {"rejected", "/data/tags/1"}, {"applied", ""}, {"rejected", "/data/value/x\x00"},
		}
		for i, w := range want {
			if res[i].Status != w.status || w.path != "" && (len(res[i].Errors) != 1 || res[i].Errors[0].Path != w.path) {
				t.Errorf("change %d: %+v, want %s at %q", i, res[i], w.status, w.path)
			}
		}
		status, _, ae := u.sync(note("bad2", at, "\x00"))
		if status != 400 || ae.Error.Code != "invalid" || len(ae.Error.Details) != 1 || ae.Error.Details[0].Path != "/data/title" {
			t.Errorf("single NUL: status %d %+v", status, ae)
		}
		all, _ := u.pullAll("", 0)
		got := latest(all)
		if _, ok := got["data.Note/bad"]; ok {
			t.Error("the NUL note was stored")
		}
		tags, _ := got["data.Note/lit"].Data["tags"].([]any)
		if len(tags) != 1 || tags[0] != literal {
			t.Errorf("the text %q came back as %#v", literal, got["data.Note/lit"].Data["tags"])
		}
		if got["data.Note/good"].Data["title"] != "fine" {
			t.Errorf("the valid neighbour: %+v", got["data.Note/good"])
		}
	})
}

// TestDataSizeIsCapped: a change whose data is over 1 MiB is rejected on
// its own; its neighbours apply.
func TestDataSizeIsCapped(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("ann")
		at := "2026-11-25T10:00:00Z"
		res := u.push(setting("big", at, strings.Repeat("x", 1<<20)), note("small", at, "fine"))
		if res[0].Status != "rejected" || len(res[0].Errors) != 1 || res[0].Errors[0].Path != "/data" || res[1].Status != "applied" {
			t.Fatalf("got %+v", res)
		}
		if res := u.push(setting("under", at, strings.Repeat("x", 1<<20-100))); res[0].Status != "applied" {
			t.Fatalf("a note just under the cap: %+v", res[0].Errors)
		}
	})
}

// TestPullPagesAreCappedInBytes: ten records of 900 KB used to make one
// 9 MB page; a page now ends near 4 MiB with has_more, holds at least one
// record, and paging delivers every record once.
func TestPullPagesAreCappedInBytes(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		u := e.signUp("ann")
		var changes []map[string]any
		for i := range 10 {
			changes = append(changes, setting(fmt.Sprintf("n%d", i), "2026-11-25T10:00:00Z", strings.Repeat("x", 900_000)))
		}
		for _, r := range u.push(changes...) {
			if r.Status != "applied" {
				t.Fatalf("push: %+v", r)
			}
		}
		seen := map[string]int{}
		cursor, pages := "", 0
		for more := true; more; pages++ {
			var page pullAnswer
			if status := e.do("GET", "/sync/pull?limit=100&cursor="+cursor, u.Token, "", &page); status != 200 {
				t.Fatalf("pull: status %d", status)
			}
			size := 0
			for _, c := range page.Changes {
				seen[c.UID]++
				if t, ok := c.Data["value"].(string); ok {
					size += len(t)
				}
			}
			if len(page.Changes) == 0 && page.HasMore {
				t.Fatal("an empty page with has_more")
			}
			if size > 4<<20+1_000_000 {
				t.Fatalf("page %d holds %d bytes of values", pages, size)
			}
			cursor, more = page.Cursor, page.HasMore
		}
		if pages < 3 {
			t.Errorf("9 MB of notes came in %d pages, want at least 3", pages)
		}
		for i := range 10 {
			if n := seen[fmt.Sprintf("n%d", i)]; n != 1 {
				t.Errorf("n%d came %d times", i, n)
			}
		}
		// The user record too (it is small), once.
		if seen[u.ID] != 1 {
			t.Errorf("the user record came %d times", seen[u.ID])
		}
	})
}

func setting(uid, at, value string) map[string]any {
	return map[string]any{"model": "data.Setting", "uid": uid, "modify_at": at, "data": map[string]any{"key": uid, "value": value}}
}
