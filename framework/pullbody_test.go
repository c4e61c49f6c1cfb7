package framework_test

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/uptrace/bun"
)

// TestPullWithBody: a user in many spaces has a cursor no proxy takes in
// a URL; POST /sync/pull takes GET's parameters in a body and pages the
// same records, and refuses what GET refuses.
func TestPullWithBody(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		s := newSpaceServer(t, db, framework.Config{MaxSpaces: 1000})
		ann := s.device("ann")
		const spaces = 300
		var changes []map[string]any
		for i := range spaces {
			sp := fmt.Sprintf("%08x-1234-4abc-8def-%012x", i, i)
			changes = append(changes, s.change(sp, framework.SpaceModel, sp, map[string]any{}), s.change(sp, "test.Item", "x", itemN(i)))
		}
		for _, r := range ann.push(t, changes...) {
			if r.Status != "applied" {
				t.Fatalf("set-up: %+v", r)
			}
		}
		// Paging both ways gives the same pages and cursors.
		pageAll := func(viaBody bool) (pages []wire.PullResponse) {
			cursor := ""
			for {
				var page wire.PullResponse
				var st int
				if viaBody {
					st = ann.do(t, "POST", "/sync/pull", map[string]any{"cursor": cursor, "limit": 250, "spaces": []string{}, "device_id": "d1"}, &page)
				} else {
					st = ann.do(t, "GET", "/sync/pull?limit=250&device_id=d1&cursor="+url.QueryEscape(cursor), nil, &page)
				}
				if st != 200 {
					t.Fatalf("pull (body %v): %d", viaBody, st)
				}
				pages = append(pages, page)
				if cursor = page.Cursor; !page.HasMore {
					return pages
				}
			}
		}
		got, want := pageAll(true), pageAll(false)
		if len(want) < 3 || !reflect.DeepEqual(got, want) {
			t.Fatalf("POST pages differ from GET's (%d and %d pages)", len(got), len(want))
		}
		last := want[len(want)-1].Cursor
		if len(last) < 8<<10 {
			t.Fatalf("the cursor of %d spaces is only %d bytes: the test shows nothing", spaces, len(last))
		}
		var none wire.PullResponse
		if st := ann.do(t, "POST", "/sync/pull", map[string]any{"cursor": last}, &none); st != 200 || len(none.Changes) != 0 || none.Cursor != last {
			t.Fatalf("POST pull at the end: %d %d changes", st, len(none.Changes))
		}
		// The filters go in as lists, and they are part of the cursor as in GET.
		var filtered wire.PullResponse
		if st := ann.do(t, "POST", "/sync/pull", map[string]any{"spaces": []string{"00000001-1234-4abc-8def-000000000001"}, "models": []string{"test.Item"}}, &filtered); st != 200 || len(filtered.Changes) != 1 {
			t.Fatalf("a filtered POST pull: %d %+v", st, filtered.Changes)
		}
		var viaGet wire.PullResponse
		if st := ann.do(t, "GET", "/sync/pull?models=test.Item&spaces=00000001-1234-4abc-8def-000000000001&cursor="+url.QueryEscape(filtered.Cursor), nil, &viaGet); st != 200 {
			t.Fatalf("GET with the POST pull's cursor of the same filter: %d", st)
		}

		for _, c := range []struct {
			name, query, body, code, path string
			status                        int
		}{
			{"unknown field", "", `{"cursor":"","limits":5}`, "invalid", "", 400},
			{"limit a string", "", `{"limit":"5"}`, "invalid", "/limit", 400},
			{"limit zero", "", `{"limit":0}`, "invalid", "/limit", 400},
			{"limit fractional", "", `{"limit":2.5}`, "invalid", "/limit", 400},
			{"spaces a string", "", `{"spaces":"L,M"}`, "invalid", "/spaces", 400},
			{"not an object", "", `[]`, "invalid", "", 400},
			{"device id too long", "", `{"device_id":"` + strings.Repeat("d", 257) + `"}`, "invalid", "/device_id", 400},
			{"parameters in the URL too", "?limit=5", `{}`, "invalid", "", 400},
			{"a cursor of another filter", "", `{"cursor":"` + last + `","models":["test.Item"]}`, "invalid_cursor", "", 400},
			{"a forged cursor", "", `{"cursor":"AAAA"}`, "invalid_cursor", "", 400},
			{"a body past 512 KiB", "", `{"cursor":"` + strings.Repeat("A", 600<<10) + `"}`, "too_large", "", 413},
			{"a stranger's space", "", `{"spaces":["nobodys"]}`, "", "", 0},
		} {
			var e wire.ErrorBody
			st := ann.doRaw(t, "POST", "/sync/pull"+c.query, c.body, &e)
			if c.status == 0 { // answered as GET answers it
				var g wire.ErrorBody
				c.status, c.code = ann.do(t, "GET", "/sync/pull?spaces=nobodys", nil, &g), g.Error.Code
			}
			if st != c.status || e.Error.Code != c.code || c.path != "" && (len(e.Error.Details) == 0 || e.Error.Details[0].Path != c.path) {
				t.Errorf("%s: %d %+v, want %d %s at %q", c.name, st, e.Error, c.status, c.code, c.path)
			}
		}
		// A huge limit is capped, as in GET.
		var capped wire.PullResponse
		records := 0
		for _, p := range want {
			records += len(p.Changes)
		}
		if st := ann.do(t, "POST", "/sync/pull", map[string]any{"limit": 1e300}, &capped); st != 200 || len(capped.Changes) != records {
			t.Fatalf("limit 1e300: %d, %d changes", st, len(capped.Changes))
		}
	})
}
