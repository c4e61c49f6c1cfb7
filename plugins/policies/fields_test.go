package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

func init() { gin.SetMode(gin.TestMode) }

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is base plus s seconds, in the protocol's form.
func at(s int) string { return base.Add(time.Duration(s) * time.Second).Format(framework.TimeFormat) }

// httpEnv is an App with one model per policy behind real HTTP.
type httpEnv struct{ url string }

func newHTTPEnv(t *testing.T, db *bun.DB) *httpEnv {
	t.Helper()
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{
			"doc.json": {Data: []byte(`{"type":"object","properties":{"n":{"type":"integer","minimum":0}}}`)},
			// Sets declared by the schema, through $ref and allOf.
			"sets.json": {Data: []byte(`{"type":"object","$defs":{"set":{"type":"array","uniqueItems":true}},
				"properties":{"tags":{"$ref":"#/$defs/set"},"labels":{"allOf":[{"uniqueItems":true}]},"list":{"type":"array"}}}`)},
		}})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]framework.ConflictPolicy{
		"p.FieldLWW":  policies.FieldLWW{},
		"p.EditWins":  policies.FieldLWW{Deletes: policies.EditWins},
		"p.Automerge": policies.Automerge{Arrays: map[string]policies.ArrayRule{"set": policies.ArraySet, "list": policies.ArrayReplace}},
		"p.Server":    policies.ServerWins{},
		"p.LWW":       nil,
		"p.Counter":   policies.Counter("counts"),
	} {
		app.MustRegisterSchema(name, framework.ModelOptions{Schema: "doc.json", Policy: p})
	}
	app.MustRegisterSchema("p.AutomergeSets", framework.ModelOptions{Schema: "sets.json",
		Policy: policies.Automerge{Arrays: map[string]policies.ArrayRule{"labels": policies.ArrayReplace}}})
	app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || id == "" {
			return framework.Principal{}, framework.ErrUnauthenticated
		}
		return framework.Principal{UserID: id}, nil
	}))
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	app.Mount(r.Group("/sync"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &httpEnv{url: srv.URL}
}

type result struct {
	Status string `json:"status"`
	Code   string `json:"code"`
	Errors []struct {
		Path, Message string
	} `json:"errors"`
	Resolution string            `json:"resolution"`
	Record     *framework.Record `json:"record"`
}

func (e *httpEnv) push(t *testing.T, user string, changes ...string) []result {
	t.Helper()
	body := `{"device_id":"d","changes":[` + strings.Join(changes, ",") + `]}`
	req, _ := http.NewRequest("POST", e.url+"/sync/push", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct{ Results []result }
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || len(out.Results) != len(changes) {
		t.Fatalf("push %s: %d %s", body, resp.StatusCode, raw)
	}
	return out.Results
}

func (e *httpEnv) pull(t *testing.T, user string) []*framework.Record {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/sync/pull", nil)
	req.Header.Set("Authorization", "Bearer "+user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Changes []*framework.Record }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page.Changes
}

// ch is a change of model/uid at offset s with data and field times
// "name@offset,…" (empty: none).
func ch(model, uid string, s int, deleted bool, data, fields string) string {
	f := ""
	if fields != "" {
		var parts []string
		for _, p := range strings.Split(fields, ",") {
			name, off, _ := strings.Cut(p, "@")
			var n int
			fmt.Sscan(off, &n)
			parts = append(parts, fmt.Sprintf("%q:%q", name, at(n)))
		}
		f = `,"fields_modify_at":{` + strings.Join(parts, ",") + `}`
	}
	d := ""
	if data != "" {
		d = `,"data":` + data
	}
	return fmt.Sprintf(`{"model":%q,"uid":%q,"modify_at":%q,"is_deleted":%v%s%s}`, model, uid, at(s), deleted, d, f)
}

// fieldsOf writes a record's field times as "name@offset,…", sorted.
func fieldsOf(r *framework.Record) string {
	var parts []string
	for name, t := range r.FieldsModifyAt {
		parts = append(parts, fmt.Sprintf("%s@%d", name, int(t.Sub(base)/time.Second)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func canon(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("data %s: %v", data, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// TestFieldPolicies runs every field-aware policy's cases over HTTP on
// both stores: the stored record, an incoming change, and the answer,
// then a retry of the change, which must answer the same without a new
// version.
func TestFieldPolicies(t *testing.T) {
	cases := []struct {
		name             string
		model            string
		stored, incoming string
		status           string
		data             string // the answer's record data, canonical
		deleted          bool
		fields           string // its fields_modify_at
		modifyAt         int
	}{
		{"two devices edit different fields (the original scenario)", "p.FieldLWW",
			ch("p.FieldLWW", "", 20, false, `{"title":"A's title","body":"old"}`, "body@0"),
			ch("p.FieldLWW", "", 10, false, `{"title":"old","body":"B's body"}`, "title@0"),
			"applied", `{"body":"B's body","title":"A's title"}`, false, "body@10", 20},
		{"an older field edit loses to a newer one", "p.FieldLWW",
			ch("p.FieldLWW", "", 20, false, `{"title":"new"}`, ""),
			ch("p.FieldLWW", "", 10, false, `{"title":"old"}`, ""),
			"stale", `{"title":"new"}`, false, "", 20},
		{"a field tie follows the record rule", "p.FieldLWW",
			ch("p.FieldLWW", "", 20, false, `{"a":1,"b":1}`, "a@5"),
			ch("p.FieldLWW", "", 30, false, `{"a":2,"b":2}`, "a@5,b@10"),
			"applied", `{"a":2,"b":1}`, false, "a@5,b@20", 30},
		{"a field named as removed, later, is removed", "p.FieldLWW",
			ch("p.FieldLWW", "", 10, false, `{"a":1,"b":1}`, ""),
			ch("p.FieldLWW", "", 20, false, `{"a":1}`, "a@10,b@20"),
			"applied", `{"a":1}`, false, "a@10,b@20", 20},
		{"a field left out and not named keeps its value", "p.FieldLWW",
			ch("p.FieldLWW", "", 10, false, `{"a":1,"b":1}`, ""),
			ch("p.FieldLWW", "", 20, false, `{"a":2}`, ""),
			"applied", `{"a":2,"b":1}`, false, "b@10", 20},
		{"a new field from an older change is kept", "p.FieldLWW",
			ch("p.FieldLWW", "", 20, false, `{"a":1}`, ""),
			ch("p.FieldLWW", "", 10, false, `{"a":0,"c":3}`, "a@0"),
			"applied", `{"a":1,"c":3}`, false, "c@10", 20},
		{"delete wins against a later field edit", "p.FieldLWW",
			ch("p.FieldLWW", "", 20, false, `{"a":1}`, ""),
			ch("p.FieldLWW", "", 10, true, `{"a":0}`, ""),
			"applied", `{"a":1}`, true, "", 20},
		{"a later delete keeps the fields' times (they were implied by the older modify_at)", "p.FieldLWW",
			ch("p.FieldLWW", "", 10, false, `{"a":1,"b":1}`, ""),
			ch("p.FieldLWW", "", 20, true, `{"a":1,"b":1}`, ""),
			"applied", `{"a":1,"b":1}`, true, "a@10,b@10", 20},
		{"EditWins: a later delete keeps the fields' times", "p.EditWins",
			ch("p.EditWins", "", 10, false, `{"a":1,"b":1}`, "b@5"),
			ch("p.EditWins", "", 20, true, `{"a":1,"b":1}`, ""),
			"applied", `{"a":1,"b":1}`, true, "a@10,b@5", 20},
		{"a tombstone stays deleted under DeleteWins", "p.FieldLWW",
			ch("p.FieldLWW", "", 10, true, `{"a":1}`, ""),
			ch("p.FieldLWW", "", 20, false, `{"a":2}`, ""),
			"stale", `{"a":1}`, true, "", 10},
		{"EditWins: a delete older than an edit loses", "p.EditWins",
			ch("p.EditWins", "", 20, false, `{"a":1}`, ""),
			ch("p.EditWins", "", 10, true, `{"a":0}`, ""),
			"stale", `{"a":1}`, false, "", 20},
		{"EditWins: a delete after every edit applies", "p.EditWins",
			ch("p.EditWins", "", 20, false, `{"a":1,"b":1}`, "a@5"),
			ch("p.EditWins", "", 20, true, `{"a":1}`, ""),
			"applied", `{"a":1,"b":1}`, true, "a@5", 20},
		{"EditWins: an edit after the delete revives, merged", "p.EditWins",
			ch("p.EditWins", "", 10, true, `{"a":1,"b":1}`, ""),
			ch("p.EditWins", "", 30, false, `{"a":0,"b":2}`, "a@0"),
			"applied", `{"a":1,"b":2}`, false, "a@10", 30},
		{"Automerge: objects merge key by key, sets unite, arrays concatenate", "p.Automerge",
			ch("p.Automerge", "", 20, false, `{"o":{"x":1,"y":{"p":1}},"set":["b","a"],"tags":["x","y"],"list":[1],"s":"old"}`, ""),
			ch("p.Automerge", "", 10, false, `{"o":{"x":2,"z":3,"y":{"q":2}},"set":["c","a"],"tags":["y","z"],"list":[2],"s":"mine"}`, "s@5"),
			"applied", `{"list":[1],"o":{"x":1,"y":{"p":1,"q":2},"z":3},"s":"old","set":["a","b","c"],"tags":["x","y","z"]}`, false, "", 20},
		{"Automerge: arrays the schema says are unique unite as sets; Arrays overrides the schema", "p.AutomergeSets",
			ch("p.AutomergeSets", "", 20, false, `{"tags":["b","a"],"list":[2,1],"labels":["x"]}`, ""),
			ch("p.AutomergeSets", "", 10, false, `{"tags":["c","a"],"list":[3,1],"labels":["y"]}`, ""),
			"applied", `{"labels":["x"],"list":[2,1,3],"tags":["a","b","c"]}`, false, "", 20},
		{"Automerge: a later scalar wins", "p.Automerge",
			ch("p.Automerge", "", 10, false, `{"s":"old","n":1}`, ""),
			ch("p.Automerge", "", 20, false, `{"s":"new","n":1}`, "n@10"),
			"applied", `{"n":1,"s":"new"}`, false, "n@10", 20},
		{"ServerWins keeps the stored record against a change that did not see it", "p.Server",
			ch("p.Server", "", 10, false, `{"n":1}`, ""),
			ch("p.Server", "", 20, false, `{"n":2}`, ""),
			"stale", `{"n":1}`, false, "", 10},
		{"a merge that breaks the schema is rejected", "p.Counter",
			ch("p.Counter", "", 10, false, `{"counts":{"a":1},"n":0}`, ""),
			ch("p.Counter", "", 20, false, `{"counts":{"b":2},"n":-1}`, ""),
			"rejected", "", false, "", 0},
		{"Counter: each device's count is kept, at its highest", "p.Counter",
			ch("p.Counter", "", 20, false, `{"counts":{"a":3,"b":1},"label":"x"}`, ""),
			ch("p.Counter", "", 10, false, `{"counts":{"a":2,"b":4},"label":"y"}`, ""),
			"applied", `{"counts":{"a":3,"b":4},"label":"x"}`, false, "", 20},
		{"LWW ignores field times", "p.LWW",
			ch("p.LWW", "", 20, false, `{"a":1,"b":1}`, ""),
			ch("p.LWW", "", 30, false, `{"a":2}`, "a@1"),
			"applied", `{"a":2}`, false, "", 30},
	}
	// The cases answered "resolution": "merged" (the first time; a retry
	// is answered applied with the merge already stored).
	merged := map[string]bool{
		"two devices edit different fields (the original scenario)":                               true,
		"a field tie follows the record rule":                                                     true,
		"a field left out and not named keeps its value":                                          true,
		"a new field from an older change is kept":                                                true,
		"delete wins against a later field edit":                                                  true,
		"a later delete keeps the fields' times (they were implied by the older modify_at)":       true,
		"EditWins: a later delete keeps the fields' times":                                        true,
		"EditWins: a delete after every edit applies":                                             true,
		"EditWins: an edit after the delete revives, merged":                                      true,
		"Automerge: objects merge key by key, sets unite, arrays concatenate":                     true,
		"Automerge: a later scalar wins":                                                          true,
		"Automerge: arrays the schema says are unique unite as sets; Arrays overrides the schema": true,
		"a field named as removed, later, is removed":                                             true,
		"Counter: each device's count is kept, at its highest":                                    true,
	}
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newHTTPEnv(t, db)
		for i, c := range cases {
			uid := fmt.Sprintf("r%d", i)
			fill := func(s string) string { return strings.Replace(s, `"uid":""`, fmt.Sprintf(`"uid":%q`, uid), 1) }
			user := fmt.Sprintf("u%d", i)
			if r := e.push(t, user, fill(c.stored))[0]; r.Status != "applied" {
				t.Fatalf("%s: storing: %+v", c.name, r)
			}
			var first result
			for try := 0; try < 2; try++ {
				r := e.push(t, user, fill(c.incoming))[0]
				if r.Status != c.status {
					t.Fatalf("%s (try %d): %+v, want %s", c.name, try, r, c.status)
				}
				if c.status == "rejected" {
					break
				}
				if got := canon(t, r.Record.Data); got != c.data || r.Record.IsDeleted != c.deleted ||
					fieldsOf(r.Record) != c.fields || !r.Record.ModifyAt.Equal(base.Add(time.Duration(c.modifyAt)*time.Second)) {
					t.Fatalf("%s (try %d): %s deleted=%v fields %q at %v\nwant %s deleted=%v fields %q at +%ds",
						c.name, try, got, r.Record.IsDeleted, fieldsOf(r.Record), r.Record.ModifyAt, c.data, c.deleted, c.fields, c.modifyAt)
				}
				wantRes := ""
				if try == 0 && merged[c.name] {
					wantRes = "merged"
				}
				if r.Resolution != wantRes {
					t.Fatalf("%s (try %d): resolution %q, want %q", c.name, try, r.Resolution, wantRes)
				}
				if try == 0 {
					first = r
				} else if r.Record.Version != first.Record.Version {
					t.Fatalf("%s: the retry made version %d after %d", c.name, r.Record.Version, first.Record.Version)
				}
			}
			if c.status == "rejected" {
				continue
			}
			// The pull gives what the answer said, field times included.
			recs := e.pull(t, user)
			if len(recs) != 1 || canon(t, recs[0].Data) != c.data || fieldsOf(recs[0]) != c.fields || recs[0].Version != first.Record.Version {
				t.Fatalf("%s: pulled %+v", c.name, recs)
			}
		}
	})
}

// TestFieldTimesInput: bad fields_modify_at is refused with a clear
// error, for every model (one that ignores field times too).
func TestFieldTimesInput(t *testing.T) {
	e := newHTTPEnv(t, synctest.OpenSQLite(t))
	many := make([]string, 1025)
	for i := range many {
		many[i] = fmt.Sprintf("f%d@0", i)
	}
	for _, model := range []string{"p.FieldLWW", "p.LWW"} {
		for _, c := range []struct{ change, path string }{
			{ch(model, "x", 10, false, `{"a":1}`, "a@11"), "/fields_modify_at/a"},
			{strings.Replace(ch(model, "x", 10, false, `{"a":1}`, "a@1"), at(1), "yesterday", 1), "/fields_modify_at/a"},
			{ch(model, "x", 10, false, `{"a":1}`, "a/b@11"), "/fields_modify_at/a~1b"},
			{ch(model, "x", 10, false, `{"a":1}`, strings.Join(many, ",")), "/fields_modify_at"},
			{ch(model, "x", 10, false, `{"a":1}`, strings.Repeat("n", 129)+"@1"), "/fields_modify_at"},
			{strings.Replace(ch(model, "x", 10, false, `{}`, ""), `"is_deleted"`, `"fields_modify_at":[],"is_deleted"`, 1), "/fields_modify_at"},
		} {
			r := e.push(t, "u", c.change)[0]
			if r.Status != "rejected" || r.Code != "invalid" || len(r.Errors) == 0 || !strings.HasPrefix(r.Errors[0].Path, c.path) {
				t.Fatalf("%s: %+v, want invalid at %s", c.change[:min(len(c.change), 160)], r, c.path)
			}
		}
	}
}

// TestRemovedFieldTimesCap: a record keeps the newest 64 entries of
// fields its data lacks, whatever a change names.
func TestRemovedFieldTimesCap(t *testing.T) {
	e := newHTTPEnv(t, synctest.OpenSQLite(t))
	var names []string
	for i := range 70 {
		names = append(names, fmt.Sprintf("r%02d@%d", i, i))
	}
	r := e.push(t, "u", ch("p.FieldLWW", "x", 100, false, `{"a":1}`, strings.Join(names, ",")))[0]
	if r.Status != "applied" || len(r.Record.FieldsModifyAt) != 64 {
		t.Fatalf("%+v with %d field times", r, len(r.Record.FieldsModifyAt))
	}
	for i := range 6 {
		if _, kept := r.Record.FieldsModifyAt[fmt.Sprintf("r%02d", i)]; kept {
			t.Fatalf("the oldest removal r%02d was kept over a newer one", i)
		}
	}
}

// TestDeleteOfEmptyTombstone: a record deleted before the server ever had
// it is a tombstone with the model's empty data, which the model's schema
// may refuse (here a required title). Deleting it again under a
// field-merging policy must still be applied: a delete is never refused
// over a field's value. (Found by the convergence simulation under
// FieldLWW: the merge kept the stored empty data and validated it.)
func TestDeleteOfEmptyTombstone(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Schemas: fstest.MapFS{"titled.json": {Data: []byte(`{"type":"object","required":["title"],"properties":{"title":{"type":"string","minLength":1}}}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		pols := map[string]framework.ConflictPolicy{
			"t.FieldLWW":  policies.FieldLWW{},
			"t.EditWins":  policies.FieldLWW{Deletes: policies.EditWins},
			"t.Automerge": policies.Automerge{},
		}
		for name, p := range pols {
			app.MustRegisterSchema(name, framework.ModelOptions{Schema: "titled.json", Policy: p})
		}
		app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
			return framework.Principal{UserID: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}, nil
		}))
		if err := app.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := gin.New()
		app.Mount(r.Group("/sync"))
		srv := httptest.NewServer(r)
		defer srv.Close()
		e := &httpEnv{url: srv.URL}
		for name := range pols {
			first := e.push(t, "ann", ch(name, "n1", 10, true, "", ""))
			if first[0].Status != framework.StatusApplied {
				t.Fatalf("%s: the first delete: %+v", name, first[0])
			}
			again := e.push(t, "ann", ch(name, "n1", 20, true, "", ""))
			if again[0].Status != framework.StatusApplied || again[0].Record == nil || !again[0].Record.IsDeleted {
				t.Errorf("%s: deleting the tombstone again: %+v", name, again[0])
			}
		}
	})
}

// TestBlindDeleteClaimsNoEdit: a delete of a record the server never held
// (created and deleted on a device before it synced, or purged since)
// carries no data; its field times name the device's edits, whose values
// the server never saw. The tombstone must claim no edit: a later change
// carrying older edits of those fields (another device's copy) keeps
// them instead of losing them to the tombstone's empty data.
func TestBlindDeleteClaimsNoEdit(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newHTTPEnv(t, db)
		for _, model := range []string{"p.EditWins", "p.Automerge"} {
			del := e.push(t, "ann", ch(model, "n1", 60, true, "", "title@50,body@50"))
			if del[0].Status != framework.StatusApplied || del[0].Record == nil || len(del[0].Record.FieldsModifyAt) != 0 {
				t.Fatalf("%s: blind delete: %+v, want applied with no field times", model, del[0])
			}
			if model == "p.Automerge" {
				continue // delete wins: the tombstone stays; its times are checked above
			}
			back := e.push(t, "ann", ch(model, "n1", 70, false, `{"title":"again","body":"kept"}`, "title@70,body@40"))
			if back[0].Status != framework.StatusApplied || back[0].Record == nil || back[0].Record.IsDeleted {
				t.Fatalf("%s: revival: %+v", model, back[0])
			}
			if got := canon(t, back[0].Record.Data); got != `{"body":"kept","title":"again"}` {
				t.Errorf("%s: revived as %s (field times %s), want both fields", model, got, fieldsOf(back[0].Record))
			}
		}
	})
}
