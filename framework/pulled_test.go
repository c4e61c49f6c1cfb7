package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/uptrace/bun"
)

// TestDeviceIDsReachTheObservers: the push body's device_id reaches the
// results hook, GET /sync/pull?device_id= the pulled hook with each
// scope's position and head, and a too long one is refused.
func TestDeviceIDsReachTheObservers(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		app.SetAuthenticator(bearerUser)
		var mu sync.Mutex
		var pushed []string
		var pulls []framework.PulledEvent
		app.OnResults().BindFunc(func(e *framework.ResultsEvent) error {
			mu.Lock()
			pushed = append(pushed, e.DeviceID)
			mu.Unlock()
			return e.Next()
		})
		app.OnPulled().BindFunc(func(e *framework.PulledEvent) error {
			mu.Lock()
			pulls = append(pulls, *e)
			mu.Unlock()
			return e.Next()
		})
		base := serveApp(t, app)
		at := time.Now().UTC().Add(-time.Minute).Format(wire.TimeFormat)
		for i, dev := range []string{"phone", ""} {
			body := fmt.Sprintf(`{"device_id":%q,"changes":[{"model":"test.Item","uid":"i%d","modify_at":%q,"data":{"n":1}},{"model":"test.Item","uid":"j%d","modify_at":%q,"data":{"n":2}}]}`, dev, i, at, i, at)
			if st, b := postPush(t, base, body); st != 200 {
				t.Fatalf("push: %d %s", st, b)
			}
		}
		pull := func(q url.Values) (int, wire.PullResponse, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", base+"/sync/pull?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer user:ann")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var page wire.PullResponse
			_ = json.Unmarshal(b, &page)
			return resp.StatusCode, page, string(b)
		}
		// Two pages of a pull of the four versions, then none.
		st, page, _ := pull(url.Values{"device_id": {"tablet"}, "limit": {"3"}})
		if st != 200 || !page.HasMore {
			t.Fatalf("first page: %d %+v", st, page)
		}
		if st, page, _ = pull(url.Values{"device_id": {"tablet"}, "cursor": {page.Cursor}}); st != 200 || page.HasMore {
			t.Fatalf("second page: %d %+v", st, page)
		}
		if st, _, _ = pull(url.Values{}); st != 200 {
			t.Fatalf("a pull without device_id: %d", st)
		}
		st, _, body := pull(url.Values{"device_id": {strings.Repeat("é", 257)}})
		if st != 400 || !strings.Contains(body, `"invalid"`) || !strings.Contains(body, `"device_id"`) {
			t.Errorf("a device_id of 257 characters: %d %s", st, body)
		}
		if st, _, _ = pull(url.Values{"device_id": {strings.Repeat("é", 256)}}); st != 200 {
			t.Errorf("a device_id of 256 characters: %d", st)
		}
		mu.Lock()
		if len(pushed) != 2 || pushed[0] != "phone" || pushed[1] != "" {
			t.Errorf("results hook saw devices %q", pushed)
		}
		if len(pulls) != 4 {
			mu.Unlock()
			t.Fatalf("%d pulled events, want 4 (the refused pull has none)", len(pulls))
		}
		want := []struct {
			dev     string
			pos     int64
			records int
			more    bool
		}{{"tablet", 3, 3, true}, {"tablet", 4, 1, false}, {"", 4, 4, false}}
		for i, w := range want {
			e := pulls[i]
			if e.DeviceID != w.dev || e.Principal.UserID != "ann" || e.Records != w.records || e.HasMore != w.more ||
				!maps.Equal(e.Positions, map[string]int64{"ann": w.pos}) || !maps.Equal(e.Heads, map[string]int64{"ann": 4}) {
				t.Errorf("pull %d: %+v, want %+v", i, e, w)
			}
		}
		mu.Unlock()
		// App.Pull and App.PushWith carry theirs too.
		ctx := context.Background()
		if _, err := app.Pull(ctx, framework.Principal{UserID: "ann"}, framework.PullRequest{DeviceID: "go"}); err != nil {
			t.Fatal(err)
		}
		if _, err := app.PushWith(ctx, framework.Principal{UserID: "ann"}, []*framework.Change{item("k", time.Now().Add(-time.Second), 3)},
			framework.PushOptions{DeviceID: "go"}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if pulls[len(pulls)-1].DeviceID != "go" || pushed[len(pushed)-1] != "go" {
			t.Errorf("App.Pull / App.PushWith: %q %q", pulls[len(pulls)-1].DeviceID, pushed[len(pushed)-1])
		}
	})
}

// TestStatsTellTheLastPurge: Stats.LastPurgeAt and LastPurged are those of
// the last run.
func TestStatsTellTheLastPurge(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, now := newClockApp(t, db)
		if st := app.Stats(); !st.LastPurgeAt.IsZero() || st.LastPurged != 0 {
			t.Fatalf("before any run: %+v", st)
		}
		ann := framework.Principal{UserID: "ann"}
		at := time.UnixMicro(now.Load()).Add(-time.Minute)
		if _, err := app.Push(ctx, ann, []*framework.Change{item("a", at, 1), item("b", at, 2)}); err != nil {
			t.Fatal(err)
		}
		del := []*framework.Change{}
		for _, uid := range []string{"a", "b"} {
			del = append(del, &framework.Change{Model: "test.Item", UID: uid, ModifyAt: framework.Time{Time: at.Add(time.Second)}, IsDeleted: true})
		}
		if _, err := app.Push(ctx, ann, del); err != nil {
			t.Fatal(err)
		}
		now.Add((2 * time.Hour).Microseconds())
		if n, err := app.PurgeTombstones(ctx, time.Hour); err != nil || n != 2 {
			t.Fatalf("purge: %d %v", n, err)
		}
		st := app.Stats()
		if !st.LastPurgeAt.Equal(time.UnixMicro(now.Load())) || st.LastPurged != 2 || st.PurgedTombstones != 2 {
			t.Errorf("after a run of 2: %+v", st)
		}
		now.Add(time.Hour.Microseconds())
		if _, err := app.PurgeTombstones(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if st := app.Stats(); !st.LastPurgeAt.Equal(time.UnixMicro(now.Load())) || st.LastPurged != 0 || st.PurgedTombstones != 2 || st.PurgeRuns != 2 {
			t.Errorf("after a run of none: %+v", st)
		}
	})
}
