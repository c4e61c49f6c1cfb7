package client_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestPushCursorSkipsNothing: a push that carries the device's cursor
// must not answer a cursor past another device's change. Here the device's
// first push was applied but its answer lost; another device then writes;
// the device pushes again, the lost change (applied again, at its old
// version) together with a new one. The answered cursor must not skip the
// other device's write.
func TestPushCursorSkipsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	u := e.signUp("Cursor")
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	push := func(cursor string, changes ...map[string]any) string {
		t.Helper()
		raw, _ := json.Marshal(map[string]any{"device_id": "dev", "cursor": cursor, "changes": changes})
		req, _ := http.NewRequest("POST", e.url+"/sync/push", bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+u.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Results []struct {
				Status string `json:"status"`
			} `json:"results"`
			Cursor string `json:"cursor"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("push: %d, %v", resp.StatusCode, err)
		}
		for _, r := range out.Results {
			if r.Status != "applied" {
				t.Fatalf("push: %+v", out.Results)
			}
		}
		return out.Cursor
	}
	pull := func(cursor string) (uids []string, next string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+"/sync/pull?cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+u.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Changes []struct {
				UID string `json:"uid"`
			} `json:"changes"`
			Cursor string `json:"cursor"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("pull: %d, %v", resp.StatusCode, err)
		}
		for _, c := range out.Changes {
			uids = append(uids, c.UID)
		}
		return uids, out.Cursor
	}
	note := func(uid, title string, at time.Time) map[string]any {
		return map[string]any{"model": "data.Note", "uid": uid, "modify_at": at.Format(time.RFC3339Nano), "data": map[string]any{"title": title}}
	}
	_, c0 := pull("")
	x := note("x", "from A", at)
	push(c0, x)                                // applied, but A never sees the answer
	push("", note("z", "from B", at))          // another device
	c1 := push(c0, x, note("y", "from A", at)) // A retries x, with a new change y
	got, _ := pull(c1)
	for _, uid := range got {
		if uid == "z" {
			return
		}
	}
	t.Fatalf("the push answered a cursor past B's note z: a pull from it returns %v; the device would never receive z", got)
}
