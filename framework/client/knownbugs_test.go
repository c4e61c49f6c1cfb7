package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
)

// Tests of server bugs the client's tests found; all fixed in the server.

// TestFullPullAfterPurgeInPages: after a purge, a device pulls from the
// start in pages smaller than its history. Every page after the first
// carries a cursor below the purge horizon, and the server answers 410
// reset_required to it, although this pull began after the purge and
// misses nothing: such a device can never finish a sync again.
//
// Was a server bug: framework/pull.go checked a continuation cursor
// against the purge horizon like a stored one.
func TestFullPullAfterPurgeInPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Pages")
	a := e.device(u)
	ctx := context.Background()
	for _, uid := range []string{"a", "b", "c", "d", "e"} {
		a.put(uid, note{uid})
	}
	a.sync()
	for _, uid := range []string{"b", "c"} {
		if err := a.Delete(ctx, "data.Note", uid); err != nil {
			t.Fatal(err)
		}
	}
	a.put("f", note{"f"})
	a.sync()
	e.purgeTombstones(2)
	fresh := e.device(u, func(c *client.Config) { c.PullLimit = 2 })
	if _, err := fresh.Sync(ctx); err != nil {
		t.Fatalf("a new device pulling in pages of 2 after a purge: %v", err)
	}
	e.assertConverged(u, fresh)
}

// TestPushAnswerIsTheStoredRecord: the push answer's record is "the stored
// state with its new version" (DESIGN.md), so a device that does not pull
// its own write back (a push carrying its cursor) holds what every other
// device pulls. For a typed model's tombstone pushed without data (a
// record deleted before it was ever synced), the answer says "data": {}
// while a pull returns the stored zero values ({"title": "", "body": "",
// "tags": null, "pinned": false}). The Go client does not send its cursor
// with pushes until this holds.
//
// Was a server bug: the push answer of such a write was built from the
// incoming change, not from the stored row.
func TestPushAnswerIsTheStoredRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Answer")
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	body := `{"changes":[{"model":"data.Note","uid":"t1","modify_at":"` + at + `","is_deleted":true}]}`
	req, _ := http.NewRequest("POST", e.url+"/sync/push", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+u.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Record struct {
				Data json.RawMessage `json:"data"`
			} `json:"record"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Results) != 1 {
		t.Fatalf("push: %v %+v", err, out)
	}
	pulled := e.serverState(u)["data.Note/t1"]
	if got := normJSON(t, out.Results[0].Record.Data); !reflect.DeepEqual(got, pulled.Data) {
		t.Fatalf("the push answered data %v; a pull returns %v", got, pulled.Data)
	}
}

// TestPurgeResetsACursorAtZero: a device pulled while its user had no
// changes (its cursor stands at position 0), then pushed a record but its
// pull failed. Another device deletes the record and the server purges
// the tombstone. The device's next pull must be told to reset (410), or it
// keeps the record forever: the server exempts position 0 from the purge
// check, as if it were no cursor at all (found by the long simulation).
//
// Was a server bug: framework/pull.go checked `pos > 0 && pos <
// PurgedVersion`; a cursor that names a position, even 0, is now checked.
func TestPurgeResetsACursorAtZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	// A user without a data.User record, so its first pull is empty.
	tok, err := e.srv.JWT.Issue("user-at-zero")
	if err != nil {
		t.Fatal(err)
	}
	u := account{ID: "user-at-zero", Token: tok}
	a := e.device(u, func(c *client.Config) { c.Retry.MaxAttempts = 1 })
	b := e.device(u)
	ctx := context.Background()
	a.sync() // nothing to pull: the cursor is at position 0
	b.put("first", note{"B's note"})
	b.sync()
	a.put("gone", note{"to be deleted and purged"})
	a.tr.setBefore(func(_ int, req *http.Request) (*http.Response, error) {
		if strings.HasSuffix(req.URL.Path, "/pull") {
			return nil, errors.New("connection reset (injected)")
		}
		return nil, nil
	})
	if res, err := a.Sync(ctx); err == nil || res.Applied != 1 {
		t.Fatalf("sync with a failing pull: %+v, %v", res, err)
	}
	a.tr.setBefore(nil)
	b.sync()
	if err := b.Delete(ctx, "data.Note", "gone"); err != nil {
		t.Fatal(err)
	}
	b.sync()
	e.purgeTombstones(1)
	res := a.sync()
	if _, err := a.Get(ctx, "data.Note", "gone"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the purged record is still on the device (sync %+v): %v", res, err)
	}
	// B keeps its own synced tombstone of "gone" (the server purged it
	// after B had it), so only A is compared with the server here.
	e.assertConverged(u, a)
}
