package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// Times in the past, for records of the example's tests.
const (
	t0 = "2026-11-25T10:00:00.000000Z"
	t1 = "2026-11-25T11:00:00.000000Z"
	t2 = "2026-11-25T12:00:00.000000Z"
)

// conformanceTarget describes the example app served by st to the
// protocol's conformance suite: data.Note is its ordinary model, data.User
// its self-owned one (whose email is the account's, and stays it).
func conformanceTarget(st *servertest.Env) synctest.ConformanceTarget {
	var emails sync.Map // user id -> email
	return synctest.ConformanceTarget{
		URL:     st.URL,
		Handler: st.Server.Handler(),
		NewUser: func(t *testing.T) synctest.User {
			var raw [6]byte
			_, _ = rand.Read(raw[:])
			u := st.SignUp(t, "conformance-"+hex.EncodeToString(raw[:]))
			emails.Store(u.ID, u.Email)
			return synctest.User{ID: u.ID, Token: u.Token}
		},
		Owned: synctest.Model{
			Name: "data.Note",
			Data: func(_ synctest.User, n int) map[string]any { return map[string]any{"title": fmt.Sprint("note ", n)} },
			Invalid: []synctest.InvalidData{
				{Data: map[string]any{"title": strings.Repeat("x", 201), "tags": []any{"ok", 7}}, Paths: []string{"/data/title", "/data/tags/1"}},
				{Data: map[string]any{}, Paths: []string{"/data"}},
			},
		},
		SelfOwned: synctest.Model{
			Name: "data.User",
			Data: func(u synctest.User, n int) map[string]any {
				email, _ := emails.Load(u.ID)
				return map[string]any{"name": fmt.Sprint("User ", n), "email": email}
			},
		},
	}
}

func TestProtocolConformance(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		synctest.RunConformance(t, conformanceTarget(servertest.Start(t, db)))
	})
}

// What the conformance suite cannot know of: the example's accounts
// behind data.User, and its other models.
func TestExampleConformance(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
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

		t.Run("pulled records push back unchanged", func(t *testing.T) {
			// The suite's round trip covers data.Note and data.User; the
			// example's other models come back the same way.
			ann := e.signUp("ann-roundtrip")
			ann.push(note("bare", t1, "no tags"),
				map[string]any{"model": "data.Setting", "uid": "s", "modify_at": t1, "data": map[string]any{"key": "k"}},
				map[string]any{"model": "data.Task", "uid": "t", "modify_at": t1, "data": map[string]any{"title": "a task"}})
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
	})
}
