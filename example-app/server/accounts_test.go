package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// envWith is newEnv with the test's own configuration.
func envWith(t *testing.T, db *bun.DB, change func(*server.Config)) *env {
	t.Helper()
	cfg := servertest.Config(t)
	change(&cfg)
	st := servertest.StartWith(t, db, cfg)
	return &env{t: t, srv: st.Server, url: st.URL}
}

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    apiError
}

// raw sends a request with extra headers and returns the whole answer;
// every non-2xx answer must have the error shape.
func (e *env) raw(method, path, token, body string, header map[string]string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(b, &a.err); err != nil || a.err.Error.Code == "" || a.err.Error.Message == "" {
			e.t.Fatalf("%s %s: %d without the error shape: %s", method, path, resp.StatusCode, b)
		}
	}
	return a
}

func login(email, password string) string {
	return jsonBody(map[string]string{"email": email, "password": password})
}

// wantRateLimited checks a 429 rate_limited answer with a Retry-After of
// at least a second.
func wantRateLimited(t *testing.T, a answer, what string) {
	t.Helper()
	if a.status != http.StatusTooManyRequests || a.err.Error.Code != "rate_limited" {
		t.Fatalf("%s: %d %s, want 429 rate_limited", what, a.status, a.body)
	}
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Fatalf("%s: Retry-After %q", what, a.header.Get("Retry-After"))
	}
}

// TestLoginRateLimitPerAccount: the 11th wrong password for one account
// within a minute is refused 429 with Retry-After, whatever the password
// (the correct one too, until the bucket refills), while other accounts
// log in; correct passwords do not count.
func TestLoginRateLimitPerAccount(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := envWith(t, db, func(c *server.Config) {
			c.Auth.PerAccount = server.RateLimit{Requests: 10, Per: time.Minute}
		})
		e.signUp("ann-limited")
		e.signUp("bob-free")
		for i := range 10 {
			if a := e.raw("POST", "/auth/login", "", login("ann-limited@example.com", fmt.Sprintf("wrong %d!", i)), nil); a.status != 401 {
				t.Fatalf("wrong password %d: %d %s", i+1, a.status, a.body)
			}
		}
		a := e.raw("POST", "/auth/login", "", login("ann-limited@example.com", "wrong 11!"), nil)
		wantRateLimited(t, a, "11th wrong password")
		if !strings.Contains(a.err.Error.Message, "account") {
			t.Errorf("message %q does not say the account is limited", a.err.Error.Message)
		}
		// The email is normalised before it is counted.
		wantRateLimited(t, e.raw("POST", "/auth/login", "", login(" ANN-limited@Example.com", "correct horse"), nil), "correct password while limited")
		// Another account is not affected, and its correct logins do not
		// use its budget up.
		for i := range 15 {
			if a := e.raw("POST", "/auth/login", "", login("bob-free@example.com", "correct horse"), nil); a.status != 200 {
				t.Fatalf("bob's login %d: %d %s", i+1, a.status, a.body)
			}
		}
		// An unknown account is limited the same way (nothing tells it
		// apart from a known one).
		for range 10 {
			e.raw("POST", "/auth/login", "", login("nobody@example.com", "guess guess"), nil)
		}
		wantRateLimited(t, e.raw("POST", "/auth/login", "", login("nobody@example.com", "guess guess"), nil), "unknown account")
	})
}

// TestAuthRateLimitPerIP: one address is limited across accounts and
// routes; X-Forwarded-For is ignored unless the proxy is trusted.
func TestAuthRateLimitPerIP(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := envWith(t, db, func(c *server.Config) {
			c.Auth.PerIP = server.RateLimit{Requests: 5, Per: time.Minute}
		})
		for i := range 5 {
			// A spoofed header does not make another client.
			hdr := map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i)}
			if a := e.raw("POST", "/auth/login", "", login(fmt.Sprintf("rotating-%d@example.com", i), "guess guess"), hdr); a.status != 401 {
				t.Fatalf("attempt %d: %d %s", i+1, a.status, a.body)
			}
		}
		a := e.raw("POST", "/auth/login", "", login("rotating-6@example.com", "guess guess"), map[string]string{"X-Forwarded-For": "203.0.113.99"})
		wantRateLimited(t, a, "6th attempt from one address")
		if !strings.Contains(a.err.Error.Message, "address") {
			t.Errorf("message %q does not say the address is limited", a.err.Error.Message)
		}
		reg := jsonBody(map[string]string{"email": "new@example.com", "password": "correct horse", "name": "New"})
		wantRateLimited(t, e.raw("POST", "/auth/register", "", reg, nil), "sign-up from a limited address")

		// Behind a trusted proxy, the forwarded address is the client.
		p := envWith(t, db, func(c *server.Config) {
			c.Auth.PerIP = server.RateLimit{Requests: 2, Per: time.Minute}
			c.TrustedProxies = []string{"127.0.0.1", "::1"}
		})
		for i := range 2 {
			for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
				if a := p.raw("POST", "/auth/login", "", login(fmt.Sprintf("x%d@example.com", i), "guess guess"), map[string]string{"X-Forwarded-For": client}); a.status != 401 {
					t.Fatalf("proxied attempt %d of %s: %d %s", i+1, client, a.status, a.body)
				}
			}
		}
		wantRateLimited(t, p.raw("POST", "/auth/login", "", login("y@example.com", "guess guess"), map[string]string{"X-Forwarded-For": "198.51.100.1"}), "3rd proxied attempt")
		// One IPv6 subscriber (a /64) is one client.
		for i := range 2 {
			p.raw("POST", "/auth/login", "", login("v6@example.com", "guess guess"), map[string]string{"X-Forwarded-For": fmt.Sprintf("2001:db8:1:2::%x", i+1)})
		}
		wantRateLimited(t, p.raw("POST", "/auth/login", "", login("v6@example.com", "guess guess"), map[string]string{"X-Forwarded-For": "2001:db8:1:2:ffff::9"}), "another address of the same /64")
	})
}

func userChange(uid, name, email string) map[string]any {
	return map[string]any{"model": "data.User", "uid": uid, "modify_at": time.Now().UTC().Format(time.RFC3339Nano),
		"data": map[string]any{"name": name, "email": email}}
}

// TestSyncNeverRevealsEmails: a push of data.User changes with candidate
// emails gets the same answer for taken and free addresses; the email is
// changed through POST /auth/email only.
func TestSyncNeverRevealsEmails(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db)
		ann := e.signUp("ann-enum")
		e.signUp("bob-enum")
		candidates := []string{"bob-enum@example.com", "free-1@example.com", "BOB-ENUM@example.com", "free-2@example.com"}
		var changes []map[string]any
		for _, c := range candidates {
			changes = append(changes, userChange(ann.ID, "Ann", c))
		}
		res := ann.push(changes...)
		want, _ := json.Marshal(res[0].Errors)
		for i, r := range res {
			got, _ := json.Marshal(r.Errors)
			if r.Status != "rejected" || string(got) != string(want) || r.Record != nil {
				t.Fatalf("candidate %s: %s %s, want the same answer as for %s (%s)", candidates[i], r.Status, got, candidates[0], want)
			}
		}
		if len(res[0].Errors) != 1 || res[0].Errors[0].Path != "/data/email" || !strings.Contains(res[0].Errors[0].Message, "POST /auth/email") {
			t.Fatalf("errors: %s", want)
		}
		// The single-record endpoint answers alike too.
		var bodies []string
		for _, c := range []string{"bob-enum@example.com", "free-3@example.com"} {
			a := e.raw("POST", "/sync/", ann.Token, jsonBody(userChange(ann.ID, "Ann", c)), nil)
			if a.status != 400 {
				t.Fatalf("single %s: %d %s", c, a.status, a.body)
			}
			bodies = append(bodies, string(a.body))
		}
		if bodies[0] != bodies[1] {
			t.Fatalf("single-record answers differ: %s vs %s", bodies[0], bodies[1])
		}
		// A rename with the same address (any case) still syncs.
		if r := ann.push(userChange(ann.ID, "Ann E.", "Ann-Enum@Example.com"))[0]; r.Status != "applied" || r.Record.Data["name"] != "Ann E." {
			t.Fatalf("rename: %+v", r)
		}

		// POST /auth/email: password-checked, 409 for a taken address.
		change := func(password, email string) answer {
			return e.raw("POST", "/auth/email", ann.Token, jsonBody(map[string]string{"password": password, "email": email}), nil)
		}
		if a := change("wrong password", "ann-new@example.com"); a.status != 403 || a.err.Error.Code != "forbidden" {
			t.Fatalf("wrong password: %d %s", a.status, a.body)
		}
		if a := change("correct horse", "not an address"); a.status != 400 {
			t.Fatalf("bad address: %d %s", a.status, a.body)
		}
		if a := change("correct horse", "Bob-Enum@example.com"); a.status != 409 || a.err.Error.Code != "conflict" {
			t.Fatalf("taken address: %d %s", a.status, a.body)
		}
		if a := e.raw("POST", "/auth/email", "", `{"password":"correct horse","email":"x@example.com"}`, nil); a.status != 401 {
			t.Fatalf("no token: %d %s", a.status, a.body)
		}
		a := change("correct horse", "Ann-New@example.com")
		var out struct {
			User record `json:"user"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &out) != nil || out.User.Data["email"] != "ann-new@example.com" || out.User.Data["name"] != "Ann E." {
			t.Fatalf("change email: %d %s", a.status, a.body)
		}
		pulled, _ := ann.pullAll("", 0)
		if u := latest(pulled)["data.User/"+ann.ID]; u.Data["email"] != "ann-new@example.com" {
			t.Fatalf("devices pull %+v", u)
		}
		if a := e.raw("POST", "/auth/login", "", login("ann-new@example.com", "correct horse"), nil); a.status != 200 {
			t.Fatalf("login with the new address: %d %s", a.status, a.body)
		}
		if a := e.raw("POST", "/auth/login", "", login("ann-enum@example.com", "correct horse"), nil); a.status != 401 {
			t.Fatalf("login with the old address: %d %s", a.status, a.body)
		}
		// The old address is free again.
		e.signUp("ann-enum")
	})
}

// TestAccountDeletion: DELETE /auth/account ends every token at once on
// the replica that served it and within the revocation delay on another,
// login is refused, no sync write brings the account back (even from a
// replica that still trusts an old token), and the address is free.
func TestAccountDeletion(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		a := newEnv(t, db)
		// Replica b forgets known generations after 300 ms; replica c
		// trusts them for an hour, so its old token still gets to the
		// data.User guard.
		b := envWith(t, db, func(c *server.Config) { c.Auth.RevocationDelay = 300 * time.Millisecond })
		c := envWith(t, db, func(c *server.Config) { c.Auth.RevocationDelay = time.Hour })
		ann := a.signUp("ann-gone")
		second := a.raw("POST", "/auth/login", "", login("ann-gone@example.com", "correct horse"), nil)
		var tok2 struct {
			Token string `json:"token"`
		}
		if second.status != 200 || json.Unmarshal(second.body, &tok2) != nil {
			t.Fatalf("second login: %d %s", second.status, second.body)
		}
		ann.push(note("ann-note", t1, "kept but unreadable"))
		for _, e := range []*env{b, c} {
			if st := e.do("GET", "/sync/pull", ann.Token, "", nil); st != 200 {
				t.Fatalf("pull before deletion: %d", st)
			}
		}
		// Through sync, an account is not deleted.
		tomb := map[string]any{"model": "data.User", "uid": ann.ID, "modify_at": time.Now().UTC().Format(time.RFC3339Nano), "is_deleted": true}
		if r := ann.push(tomb)[0]; r.Status != "rejected" || r.Errors[0].Path != "/is_deleted" || !strings.Contains(r.Errors[0].Message, "DELETE /auth/account") {
			t.Fatalf("tombstone through sync: %+v", r)
		}
		del := func(token, password string) answer {
			return a.raw("DELETE", "/auth/account", token, jsonBody(map[string]string{"password": password}), nil)
		}
		if r := del(ann.Token, "wrong password"); r.status != 403 {
			t.Fatalf("wrong password: %d %s", r.status, r.body)
		}
		if r := del("", "correct horse"); r.status != 401 {
			t.Fatalf("no token: %d %s", r.status, r.body)
		}
		r := del(ann.Token, "correct horse")
		var out struct {
			User record `json:"user"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &out) != nil || !out.User.IsDeleted || out.User.Data["email"] == "ann-gone@example.com" {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		// Every token, at once, on the replica that deleted.
		for _, tok := range []string{ann.Token, tok2.Token} {
			if x := a.raw("GET", "/sync/pull", tok, "", nil); x.status != 401 || x.err.Error.Code != "unauthenticated" {
				t.Fatalf("token after deletion: %d %s", x.status, x.body)
			}
		}
		// Within the revocation delay on another replica.
		deadline := time.Now().Add(20 * time.Second)
		for {
			x := b.raw("GET", "/sync/pull", ann.Token, "", nil)
			if x.status == 401 {
				break
			}
			if x.status != 200 || time.Now().After(deadline) {
				t.Fatalf("replica b: %d %s", x.status, x.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if x := a.raw("POST", "/auth/login", "", login("ann-gone@example.com", "correct horse"), nil); x.status != 401 {
			t.Fatalf("login after deletion: %d %s", x.status, x.body)
		}
		// Replica c still takes the old token, but no write restores the
		// account, whatever its clock says.
		restore := userChange(ann.ID, "Ann", "ann-gone@example.com")
		restore["modify_at"] = time.Now().Add(4 * time.Minute).UTC().Format(time.RFC3339Nano)
		// The tombstone's own data, live again.
		same := userChange(ann.ID, out.User.Data["name"].(string), out.User.Data["email"].(string))
		same["modify_at"] = restore["modify_at"]
		var res pushAnswer
		if st := c.do("POST", "/sync/push", ann.Token, jsonBody(map[string]any{"device_id": "d", "changes": []any{restore, same}}), &res); st != 200 {
			t.Fatalf("push through c: %d", st)
		}
		for _, r := range res.Results {
			if r.Status != "rejected" || r.Errors[0].Path != "/is_deleted" {
				t.Fatalf("un-delete: %+v", r)
			}
		}
		var rec struct {
			IsDeleted bool `bun:"is_deleted"`
		}
		if err := db.NewSelect().Table("users").Column("is_deleted").Where("uid = ?", ann.ID).Scan(t.Context(), &rec.IsDeleted); err != nil || !rec.IsDeleted {
			t.Fatalf("stored account: deleted=%v %v", rec.IsDeleted, err)
		}
		// The address can be used again, by a new account.
		if again := a.signUp("ann-gone"); again.ID == ann.ID {
			t.Fatal("the new account got the deleted one's id")
		}
	})
}

// TestPasswordChange: POST /auth/password ends older tokens and answers a
// working new one.
func TestPasswordChange(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db)
		ann := e.signUp("ann-pw")
		change := func(token, old, next string) answer {
			return e.raw("POST", "/auth/password", token, jsonBody(map[string]string{"password": old, "new_password": next}), nil)
		}
		if a := change(ann.Token, "wrong password", "a new secret"); a.status != 403 {
			t.Fatalf("wrong password: %d %s", a.status, a.body)
		}
		if a := change(ann.Token, "correct horse", "short"); a.status != 400 || a.err.Error.Details[0].Path != "/new_password" {
			t.Fatalf("short new password: %d %s", a.status, a.body)
		}
		if st := e.do("GET", "/sync/pull", ann.Token, "", nil); st != 200 {
			t.Fatalf("token after refused changes: %d", st)
		}
		a := change(ann.Token, "correct horse", "a new secret")
		var out struct {
			Token string `json:"token"`
			User  record `json:"user"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &out) != nil || out.Token == "" || out.User.UID != ann.ID {
			t.Fatalf("change: %d %s", a.status, a.body)
		}
		if x := e.raw("GET", "/sync/pull", ann.Token, "", nil); x.status != 401 || !strings.Contains(x.err.Error.Message, "revoked") {
			t.Fatalf("old token: %d %s", x.status, x.body)
		}
		if st := e.do("GET", "/sync/pull", out.Token, "", nil); st != 200 {
			t.Fatalf("new token: %d", st)
		}
		if x := e.raw("POST", "/auth/login", "", login("ann-pw@example.com", "correct horse"), nil); x.status != 401 {
			t.Fatalf("old password: %d", x.status)
		}
		if x := e.raw("POST", "/auth/login", "", login("ann-pw@example.com", "a new secret"), nil); x.status != 200 {
			t.Fatalf("new password: %d %s", x.status, x.body)
		}
		// Log out everywhere: every token ends, logging in again works.
		if x := e.raw("POST", "/auth/logout", out.Token, "", nil); x.status != 204 {
			t.Fatalf("logout: %d %s", x.status, x.body)
		}
		if x := e.raw("GET", "/sync/pull", out.Token, "", nil); x.status != 401 {
			t.Fatalf("token after logout: %d", x.status)
		}
		if x := e.raw("POST", "/auth/logout", out.Token, "", nil); x.status != 401 {
			t.Fatalf("logout with an ended token: %d", x.status)
		}
		if x := e.raw("POST", "/auth/login", "", login("ann-pw@example.com", "a new secret"), nil); x.status != 200 {
			t.Fatalf("login after logout: %d %s", x.status, x.body)
		}
	})
}
