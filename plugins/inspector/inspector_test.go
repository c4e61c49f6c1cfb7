package inspector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/plugins/conflictlog"
	"github.com/ferrysync/ferry/plugins/inspector"
	"github.com/gin-gonic/gin"
)

func init() { gin.SetMode(gin.TestMode) }

const token = "inspector-test-token-0123456789"

// bearer takes the bearer token as the user id: the sync routes' users.
var bearer = framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || id == "" {
		return framework.Principal{}, framework.ErrUnauthenticated
	}
	return framework.Principal{UserID: id}, nil
})

type env struct {
	app *framework.App
	url string
	now *atomic.Int64
	at  time.Time
}

type options struct {
	cfg         inspector.Config
	conflictOff bool
	usage       framework.UsageAccounting
}

// newEnv starts an App with the inspector on a fresh store of kind s.
func newEnv(t testing.TB, s synctest.Store, o options) *env {
	t.Helper()
	db := synctest.Open(t, s)
	now := &atomic.Int64{}
	now.Store(time.Now().UnixNano())
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"any.json": {Data: []byte(`{"type":"object"}`)}}, Spaces: true, UsageAccounting: o.usage,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Note", framework.ModelOptions{Schema: "any.json"})
	app.MustRegisterSchema("data.Tag", framework.ModelOptions{Schema: "any.json"})
	app.SetAuthenticator(bearer)
	if !o.conflictOff {
		lg, err := conflictlog.New(conflictlog.Config{PurgeEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		app.MustUse(lg)
	}
	cfg := o.cfg
	cfg.Token = token
	in, err := inspector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(in)
	ctx := context.Background()
	if err := app.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	r := gin.New()
	framework.UseProtocolErrors(r)
	app.MountRoot(r)
	app.Mount(r.Group("/sync"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{app: app, url: srv.URL, now: now, at: time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)}
}

// page GETs an inspector page with the admin credential as basic auth
// and returns its HTML.
func (e *env) page(t *testing.T, path string) string {
	t.Helper()
	st, body, _ := e.get(t, path, func(r *http.Request) { r.SetBasicAuth("admin", token) })
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, st, body)
	}
	return body
}

func (e *env) get(t testing.TB, path string, auth func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func userPage(id string, q ...string) string {
	v := url.Values{"id": {id}}
	for i := 0; i+1 < len(q); i += 2 {
		v.Set(q[i], q[i+1])
	}
	return "/inspector/user?" + v.Encode()
}

// change is one change of a push.
type change struct {
	model, uid, space string
	sec               int // modify_at: e.at plus this many seconds
	deleted           bool
	data              string
}

func (e *env) push(t *testing.T, user, device string, changes ...change) []wire.Result {
	t.Helper()
	body := wire.PushRequest{DeviceID: device}
	for _, c := range changes {
		data := c.data
		if data == "" {
			data = `{}`
		}
		body.Changes = append(body.Changes, wire.Change{Model: c.model, UID: c.uid, Space: c.space, IsDeleted: c.deleted,
			ModifyAt: wire.Time{Time: e.at.Add(time.Duration(c.sec) * time.Second)}, Data: json.RawMessage(data)})
	}
	b, _ := json.Marshal(body)
	var resp wire.PushResponse
	e.call(t, user, "POST", "/sync/push", string(b), &resp)
	return resp.Results
}

func (e *env) pull(t *testing.T, user, device, cursor string) wire.PullResponse {
	t.Helper()
	var page wire.PullResponse
	e.call(t, user, "GET", "/sync/pull?"+url.Values{"cursor": {cursor}, "device_id": {device}}.Encode(), "", &page)
	return page
}

func (e *env) call(t *testing.T, user, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// rows returns the opening tags of the elements with data-testid=id.
func rows(html, id string) []string {
	return regexp.MustCompile(`<[a-z]+ data-testid="`+id+`"[^>]*>`).FindAllString(html, -1)
}

// attr is an attribute of an opening tag.
func attr(tag, name string) string {
	m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return m[1]
}

func uidsOf(html string) []string {
	var out []string
	for _, r := range rows(html, "record") {
		out = append(out, attr(r, "data-uid"))
	}
	return out
}

func TestInspector(t *testing.T) {
	for _, db := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(db), func(t *testing.T) { inspectorCases(t, db) })
	}
}

func inspectorCases(t *testing.T, db synctest.Store) {
	{
		t.Run("shows a record written a moment ago, and only the user's", func(t *testing.T) {
			e := newEnv(t, db, options{})
			res := e.push(t, "ann", "ann-phone", change{model: "data.Note", uid: "n1", data: `{"title":"Buy oat milk"}`})
			if res[0].Status != wire.StatusApplied {
				t.Fatalf("push: %+v", res)
			}
			// Bob holds the same uid with other data.
			e.push(t, "bob", "bob-laptop", change{model: "data.Note", uid: "n1", data: `{"title":"Bob's secret"}`})

			html := e.page(t, userPage("ann"))
			recs := rows(html, "record")
			if len(recs) != 1 || attr(recs[0], "data-uid") != "n1" || attr(recs[0], "data-model") != "data.Note" {
				t.Fatalf("records: %v", recs)
			}
			for _, want := range []string{"Buy oat milk", fmt.Sprintf(`<dd data-testid="version">%d</dd>`, res[0].Record.Version),
				`data-device="ann-phone"`, `data-testid="change" data-uid="n1" data-status="applied"`} {
				if !strings.Contains(html, want) {
					t.Errorf("the user page lacks %q", want)
				}
			}
			if strings.Contains(html, "Bob's secret") || strings.Contains(html, "bob-laptop") {
				t.Error("ann's page shows bob's record or device")
			}
			// The record's own page has its whole data.
			rec := e.page(t, "/inspector/record?"+url.Values{"scope": {"ann"}, "model": {"data.Note"}, "uid": {"n1"}}.Encode())
			if !strings.Contains(rec, `&#34;title&#34;: &#34;Buy oat milk&#34;`) {
				t.Errorf("the record page lacks the data: %s", rec)
			}
			// The index lists both scopes, and ann among the active users.
			idx := e.page(t, "/inspector/")
			for _, want := range []string{`data-scope="ann"`, `data-scope="bob"`, `/inspector/user?id=ann`} {
				if !strings.Contains(idx, want) {
					t.Errorf("the index lacks %q", want)
				}
			}
		})

		t.Run("refuses without the admin credential", func(t *testing.T) {
			e := newEnv(t, db, options{})
			e.push(t, "ann", "d", change{model: "data.Note", uid: "n1", data: `{"title":"private"}`})
			for name, auth := range map[string]func(*http.Request){
				"no credential":        nil,
				"wrong password":       func(r *http.Request) { r.SetBasicAuth("admin", token+"x") },
				"empty password":       func(r *http.Request) { r.SetBasicAuth("admin", "") },
				"a user's sync token":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer ann") },
				"a prefix of it":       func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token[:20]) },
				"the token as a query": func(r *http.Request) { r.URL.RawQuery += "&token=" + token },
			} {
				for _, path := range []string{"/inspector/", userPage("ann"), "/inspector/record?scope=ann&model=data.Note&uid=n1"} {
					st, body, h := e.get(t, path, auth)
					var eb wire.ErrorBody
					if st != http.StatusUnauthorized || json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Code != wire.CodeUnauthenticated {
						t.Errorf("%s, %s: %d %s", name, path, st, body)
					}
					if strings.Contains(body, "private") || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
						t.Errorf("%s, %s: the refusal shows data or asks for no credential: %v %s", name, path, h, body)
					}
				}
			}
			st, _, _ := e.get(t, userPage("ann"), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
			if st != http.StatusOK {
				t.Errorf("the admin token as a bearer: %d", st)
			}
			// Read-only: no route takes a write.
			for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
				req, _ := http.NewRequest(m, e.url+userPage("ann"), strings.NewReader(`{}`))
				req.SetBasicAuth("admin", token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("%s: %d", m, resp.StatusCode)
				}
			}
		})

		t.Run("record data and device ids render inert", func(t *testing.T) {
			e := newEnv(t, db, options{})
			evil := `<script>alert("pwned")</script><img src=x onerror=alert(1)>`
			data, _ := json.Marshal(map[string]string{"title": evil, "x": `"><script>alert(2)</script>`})
			e.push(t, "ann", `<script>alert(3)</script>`, change{model: "data.Note", uid: "n1", data: string(data)})
			e.pull(t, "ann", `"><b onmouseover=alert(4)>`, "")
			for _, path := range []string{userPage("ann"), "/inspector/record?scope=ann&model=data.Note&uid=n1", "/inspector/"} {
				st, html, h := e.get(t, path, func(r *http.Request) { r.SetBasicAuth("admin", token) })
				if st != 200 {
					t.Fatalf("%s: %d", path, st)
				}
				for _, bad := range []string{"<script>alert", "<img src=x", `<b onmouseover`, `"><script>`} {
					if strings.Contains(html, bad) {
						t.Errorf("%s renders %q as markup", path, bad)
					}
				}
				if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
					t.Errorf("%s: Content-Security-Policy %q lets scripts run", path, csp)
				}
				if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
					t.Errorf("%s: headers %v", path, h)
				}
			}
			if html := e.page(t, userPage("ann")); !strings.Contains(html, "&lt;script&gt;alert(3)&lt;/script&gt;") ||
				!strings.Contains(html, `&lt;script&gt;alert(\&#34;pwned\&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;`) {
				t.Errorf("the escaped texts are not shown: %s", html)
			}
		})

		t.Run("a device's lag", func(t *testing.T) {
			e := newEnv(t, db, options{})
			e.push(t, "ann", "laptop", change{model: "data.Note", uid: "n1"}, change{model: "data.Note", uid: "n2"})
			cur := e.pull(t, "ann", "tablet", "").Cursor
			behind := func() map[string]string {
				out := map[string]string{}
				html := e.page(t, userPage("ann"))
				for _, d := range rows(html, "device") {
					out[attr(d, "data-device")] = ""
				}
				for _, l := range regexp.MustCompile(`data-device="([^"]*)">(?s:.*?)</tr>`).FindAllStringSubmatch(html, -1) {
					if m := regexp.MustCompile(`data-testid="behind">([^<]*)<`).FindStringSubmatch(l[0]); m != nil {
						out[l[1]] = m[1]
					}
				}
				return out
			}
			if got := behind(); got["tablet"] != "0" || got["laptop"] != "never pulled" {
				t.Fatalf("after the tablet's pull: %v", got)
			}
			// The laptop writes three more versions: the tablet is three behind.
			e.push(t, "ann", "laptop", change{model: "data.Note", uid: "n3"}, change{model: "data.Note", uid: "n4"},
				change{model: "data.Note", uid: "n1", sec: 1})
			if got := behind(); got["tablet"] != "3" {
				t.Fatalf("after three writes: %v", got)
			}
			// Another user's writes do not make ann's devices behind.
			e.push(t, "bob", "tablet", change{model: "data.Note", uid: "b1"})
			if got := behind(); got["tablet"] != "3" {
				t.Fatalf("after bob's write: %v", got)
			}
			e.pull(t, "ann", "tablet", cur)
			if got := behind(); got["tablet"] != "0" {
				t.Fatalf("after the tablet pulled again: %v", got)
			}
			// A pull without a device id is the device "(none)".
			e.pull(t, "ann", "", "")
			if got := behind(); got[""] != "0" {
				t.Fatalf("a pull without device id: %v", got)
			}
		})

		t.Run("records are paged newest first, each once, within the page size", func(t *testing.T) {
			e := newEnv(t, db, options{cfg: inspector.Config{PageSize: 7, MaxPageSize: 20}})
			var want []string
			for i := range 30 {
				ch := change{model: "data.Note", uid: fmt.Sprintf("n%02d", i)}
				if i%3 == 0 {
					ch.model = "data.Tag"
				}
				e.push(t, "ann", "d", ch)
				want = append(want, ch.uid)
			}
			// Rewrite some: their versions move to the top.
			e.push(t, "ann", "d", change{model: "data.Note", uid: "n01", sec: 1}, change{model: "data.Note", uid: "n02", sec: 1, deleted: true})
			seen := map[string]bool{}
			path, pages := userPage("ann"), 0
			var first []string
			for path != "" {
				html := e.page(t, path)
				uids := uidsOf(html)
				if len(uids) > 7 {
					t.Fatalf("a page of %d records", len(uids))
				}
				if pages == 0 {
					first = uids
				}
				for _, u := range uids {
					if seen[u] {
						t.Fatalf("%s shown twice", u)
					}
					seen[u] = true
				}
				path = ""
				if m := regexp.MustCompile(`data-testid="older" href="([^"]*)"`).FindStringSubmatch(html); m != nil {
					path = strings.ReplaceAll(m[1], "&amp;", "&")
				}
				pages++
			}
			if len(seen) != len(want) || pages < 5 {
				t.Fatalf("%d records over %d pages, want %d", len(seen), pages, len(want))
			}
			if first[0] != "n02" || first[1] != "n01" || first[2] != "n29" {
				t.Errorf("first page %v: want the rewritten ones, then the newest", first)
			}
			if !strings.Contains(e.page(t, userPage("ann")), `class="tomb"`) {
				t.Error("the tombstone is not marked")
			}
			// A model filter pages the model alone.
			tags := map[string]bool{}
			path = userPage("ann", "model", "data.Tag", "limit", "3")
			for path != "" {
				html := e.page(t, path)
				for _, r := range rows(html, "record") {
					if attr(r, "data-model") != "data.Tag" || tags[attr(r, "data-uid")] {
						t.Fatalf("filtered page: %v", rows(html, "record"))
					}
					tags[attr(r, "data-uid")] = true
				}
				path = ""
				if m := regexp.MustCompile(`data-testid="older" href="([^"]*)"`).FindStringSubmatch(html); m != nil {
					path = strings.ReplaceAll(m[1], "&amp;", "&")
				}
			}
			if len(tags) != 10 {
				t.Errorf("%d tags, want 10", len(tags))
			}
			// limit is capped at MaxPageSize.
			if n := len(uidsOf(e.page(t, userPage("ann", "limit", "1000")))); n != 20 {
				t.Errorf("limit=1000 shows %d records, want MaxPageSize 20", n)
			}
		})

		t.Run("bad parameters are invalid, in the protocol's error shape", func(t *testing.T) {
			e := newEnv(t, db, options{})
			for _, path := range []string{"/inspector/user", userPage("ann", "limit", "0"), userPage("ann", "limit", "x"),
				userPage("ann", "before", "-3"), userPage("ann", "model", "data.Nope"), userPage(strings.Repeat("u", 256)),
				"/inspector/user?id=%ff", "/inspector/record?scope=ann&model=data.Nope&uid=x", "/inspector/space",
				"/inspector/?after=" + strings.Repeat("s", 300)} {
				st, body, _ := e.get(t, path, func(r *http.Request) { r.SetBasicAuth("admin", token) })
				var eb wire.ErrorBody
				if st != 400 || json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Code != wire.CodeInvalid {
					t.Errorf("%s: %d %s", path, st, body)
				}
			}
			st, body, _ := e.get(t, "/inspector/record?scope=ann&model=data.Note&uid=none", func(r *http.Request) { r.SetBasicAuth("admin", token) })
			if st != 404 || !strings.Contains(body, `"not_found"`) {
				t.Errorf("a missing record: %d %s", st, body)
			}
			// A user nobody wrote for is a page that says so.
			if html := e.page(t, userPage("nobody")); !strings.Contains(html, "Nothing was ever written") {
				t.Errorf("an unknown user: %s", html)
			}
		})

		t.Run("memory is bounded", func(t *testing.T) {
			e := newEnv(t, db, options{cfg: inspector.Config{MaxUsers: 2, MaxPushesPerUser: 2, MaxChangesPerPush: 3, MaxDevicesPerUser: 2}})
			for i := range 3 {
				e.push(t, "ann", fmt.Sprintf("dev%d", i), change{model: "data.Note", uid: fmt.Sprintf("p%d", i)})
			}
			e.push(t, "ann", "dev2", change{model: "data.Note", uid: "a"}, change{model: "data.Note", uid: "b"},
				change{model: "data.Note", uid: "c"}, change{model: "data.Note", uid: "d"}, change{model: "Nope", uid: "e"})
			html := e.page(t, userPage("ann"))
			if n := len(rows(html, "push")); n != 2 {
				t.Errorf("%d pushes shown, want 2", n)
			}
			if n := len(rows(html, "change")); n != 4 { // 3 of the last push, 1 of the one before
				t.Errorf("%d changes shown, want 4", n)
			}
			if !strings.Contains(html, "3 of 5 changes shown") || !strings.Contains(html, "1 rejected") {
				t.Errorf("the cut push is not told: %s", html)
			}
			if devs := rows(html, "device"); len(devs) != 2 || attr(devs[0], "data-device") != "dev2" || attr(devs[1], "data-device") != "dev1" {
				t.Errorf("devices %v, want dev2 and dev1", devs)
			}
			// A long model name (client input) is kept clipped.
			long := strings.Repeat("M", 5000)
			if _, err := e.app.Push(context.Background(), framework.Principal{UserID: "dan"}, []*framework.Change{
				{Model: long, UID: "x", ModifyAt: framework.Time{Time: e.at}, Data: json.RawMessage(`{}`)}}); err != nil {
				t.Fatal(err)
			}
			if html := e.page(t, userPage("dan")); strings.Contains(html, long[:250]) || !strings.Contains(html, "<td>"+long[:128]+"…</td>") {
				t.Errorf("a long model name is not clipped")
			}
			e.push(t, "bob", "d", change{model: "data.Note", uid: "x"})
			e.push(t, "cid", "d", change{model: "data.Note", uid: "x"})
			if html := e.page(t, userPage("ann")); len(rows(html, "push")) != 0 || !strings.Contains(html, "forgotten") {
				t.Errorf("ann should be forgotten for the cap of 2 users")
			}
			if idx := e.page(t, "/inspector/"); !strings.Contains(idx, "2 users tracked") || !strings.Contains(idx, "2 less recently active ones forgotten") {
				t.Errorf("the index does not tell the cap: %s", idx)
			}
			// What the store holds is still shown whole.
			if n := len(uidsOf(e.page(t, userPage("ann")))); n != 7 {
				t.Errorf("%d records of ann, want 7", n)
			}
		})

		t.Run("the tombstone purge: horizon and last run", func(t *testing.T) {
			e := newEnv(t, db, options{})
			e.push(t, "ann", "d", change{model: "data.Note", uid: "n1"})
			res := e.push(t, "ann", "d", change{model: "data.Note", uid: "n1", sec: 1, deleted: true})
			html := e.page(t, userPage("ann"))
			if !strings.Contains(html, `<dd data-testid="horizon">0 `) || !strings.Contains(html, "<dt>last purge run</dt><dd>never</dd>") {
				t.Fatalf("before the purge: %s", html)
			}
			e.now.Add(int64(2 * time.Hour))
			n, err := e.app.PurgeTombstones(context.Background(), time.Hour)
			if err != nil || n != 1 {
				t.Fatalf("purge: %d %v", n, err)
			}
			html = e.page(t, userPage("ann"))
			if want := fmt.Sprintf(`<dd data-testid="horizon">%d `, res[0].Record.Version); !strings.Contains(html, want) {
				t.Errorf("the horizon: want %q in %s", want, html)
			}
			if !strings.Contains(html, ": 1 tombstones removed") || !strings.Contains(html, "1 tombstones removed in all") {
				t.Errorf("the last run is not shown: %s", html)
			}
			if len(uidsOf(html)) != 0 {
				t.Error("the purged tombstone is still listed")
			}
		})

		t.Run("conflicts, spaces, and the conflict log off", func(t *testing.T) {
			e := newEnv(t, db, options{})
			e.push(t, "ann", "d", change{model: "data.Note", uid: "n1", sec: 10, data: `{"title":"new"}`})
			if res := e.push(t, "ann", "old-phone", change{model: "data.Note", uid: "n1", data: `{"title":"old"}`}); res[0].Status != wire.StatusStale {
				t.Fatalf("want stale: %+v", res)
			}
			e.push(t, "ann", "d", change{model: "ferry.Space", uid: "L", space: "L", data: `{"name":"home"}`},
				change{model: "data.Note", uid: "s1", space: "L", data: `{"title":"shared note"}`})
			html := e.page(t, userPage("ann"))
			if !strings.Contains(html, `data-status="stale"`) || !regexp.MustCompile(`<td class="mono">n1</td><td class="mono">ann</td><td>ann</td>\s*<td>stale</td>`).MatchString(html) {
				t.Errorf("the conflict or the stale change is missing: %s", html)
			}
			if !strings.Contains(html, `/inspector/space?id=L`) {
				t.Error("the user's space is not listed")
			}
			sp := e.page(t, "/inspector/space?id=L")
			if got := uidsOf(sp); len(got) < 2 || !strings.Contains(sp, "shared note") || !strings.Contains(sp, `/inspector/user?id=ann`) {
				t.Errorf("the space page: %v %s", got, sp)
			}
			if st, _, h := e.get(t, userPage("s:L"), func(r *http.Request) { r.SetBasicAuth("admin", token) }); st != 200 {
				t.Errorf("a space's scope as a user: %d %v", st, h)
			}

			off := newEnv(t, db, options{conflictOff: true})
			if html := off.page(t, userPage("ann")); !strings.Contains(html, "Conflict log off") {
				t.Error("the page does not say the conflict log is off")
			}
		})
	}
}

// TestInspectorUsage: a scope's page shows its usage with accounting on
// (the counters) and off (counted); the list shows the counters only
// when they are kept.
func TestInspectorUsage(t *testing.T) {
	for _, s := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		for _, mode := range []framework.UsageAccounting{framework.UsageOn, framework.UsageOff} {
			t.Run(string(s)+"/"+mode.String(), func(t *testing.T) {
				e := newEnv(t, s, options{usage: mode})
				e.push(t, "ann", "d1", change{model: "data.Note", uid: "n1", data: `{"t":"abc"}`},
					change{model: "data.Note", uid: "n2", data: `{"t":"defg"}`})
				e.push(t, "ann", "d1", change{model: "data.Note", uid: "n1", sec: 1, deleted: true})
				u, err := e.app.Usage(context.Background(), "ann")
				if err != nil || u.Records != 2 {
					t.Fatalf("usage %+v %v", u, err)
				}
				want := fmt.Sprintf("%d records (tombstones included), %d bytes", u.Records, u.Bytes)
				if page := e.page(t, userPage("ann")); !strings.Contains(page, want) {
					t.Fatalf("the user page does not say %q", want)
				}
				index := e.page(t, "/inspector/")
				listed := strings.Contains(index, fmt.Sprintf(`<td class="n">%d</td><td class="n">%d</td></tr>`, u.Records, u.Bytes))
				if off := mode == framework.UsageOff; listed == off || off != strings.Contains(index, "Usage accounting is off") {
					t.Fatalf("%s: the list shows the counters: %v", mode, listed)
				}
			})
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, cfg := range []inspector.Config{{}, {Token: "short"}, {Token: token, Path: "inspector"}, {Token: token, Path: "/x/"},
		{Token: token, PageSize: -1}, {Token: token, PageSize: 600}, {Token: token, MaxUsers: -1}} {
		if _, err := inspector.New(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
