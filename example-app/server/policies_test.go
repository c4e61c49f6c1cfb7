package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/uptrace/bun"
)

// TestConfigPolicies: Config.Policies replaces a model's conflict
// policy (data.Note merging field by field instead of last writer wins),
// and a name that is not an example model is refused by name.
func TestConfigPolicies(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		cfg := servertest.Config(t)
		cfg.Policies = map[string]framework.ConflictPolicy{"data.Note": policies.FieldLWW{}}
		st := servertest.StartWith(t, db, cfg)
		e := &env{t: t, srv: st.Server, url: st.URL}
		u := e.signUp("Fields")
		edit := func(at, data, fields string) map[string]any {
			ch := map[string]any{"model": "data.Note", "uid": "n1", "modify_at": at, "data": json.RawMessage(data)}
			if fields != "" {
				ch["fields_modify_at"] = json.RawMessage(fields)
			}
			return ch
		}
		if r := u.push(edit("2026-03-01T12:00:00Z", `{"title":"draft","body":"empty"}`, "")); r[0].Status != "applied" {
			t.Fatalf("create: %+v", r[0])
		}
		// Two offline edits: the title at :10, then the body at :20 by a
		// device that had not seen the title's.
		u.push(edit("2026-03-01T12:00:10Z", `{"title":"A's title","body":"empty"}`, `{"body":"2026-03-01T12:00:00Z"}`))
		r := u.push(edit("2026-03-01T12:00:20Z", `{"title":"draft","body":"B's body"}`, `{"title":"2026-03-01T12:00:00Z"}`))
		if r[0].Status != "applied" || r[0].Record == nil || r[0].Record.Data["title"] != "A's title" || r[0].Record.Data["body"] != "B's body" {
			t.Fatalf("under FieldLWW both edits stand: %+v", r[0])
		}
	})
	cfg := servertest.Config(t)
	cfg.Policies = map[string]framework.ConflictPolicy{"data.Nope": policies.FieldLWW{}}
	_, err := server.New(context.Background(), cfg, synctest.OpenSQLite(t))
	if err == nil || !strings.Contains(err.Error(), `"data.Nope"`) {
		t.Fatalf("an unknown model in Config.Policies: %v", err)
	}
}
