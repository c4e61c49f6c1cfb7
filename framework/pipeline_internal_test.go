package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// pipeVoucher is a typed model with a unique column: a bulk or
// store-decided write that breaks it fails whole and is done again change
// by change.
type pipeVoucher struct {
	bun.BaseModel `bun:"table:pipe_vouchers"`
	models.Base
	Code string `bun:"code,notnull,unique" json:"code"`
	N    int    `bun:"n,notnull" json:"n"`
}

func (*pipeVoucher) ResourceType() string { return "pipe.Voucher" }
func (v *pipeVoucher) Validate() error {
	if v.N < 0 {
		return Invalid("/data/n", "must not be negative")
	}
	return nil
}

var pipeSchemas = fstest.MapFS{
	"item.json":    {Data: []byte(`{"type":"object","required":["n"],"properties":{"n":{"type":"integer"},"s":{"type":"string"}}}`)},
	"note.json":    {Data: []byte(`{"type":"object","required":["title"],"properties":{"title":{"type":"string"},"body":{"type":"string"}}}`)},
	"voucher.json": {Data: []byte(`{"type":"object","required":["code"],"properties":{"code":{"type":"string"},"n":{"type":"integer"}}}`)},
}

// longerTitle merges two notes: the incoming one, with the longer of the
// two titles. It is idempotent, so a retried change that merged merges to
// the stored record again. A title "break" merges to a number, which the
// schema refuses.
var longerTitle = PolicyFunc(func(_ context.Context, c *Conflict) (Resolution, error) {
	var stored, in map[string]any
	if err := json.Unmarshal(c.Stored.Data, &stored); err != nil {
		return Resolution{}, err
	}
	if err := json.Unmarshal(c.Incoming.Data, &in); err != nil {
		return Resolution{}, err
	}
	st, _ := stored["title"].(string)
	if t, _ := in["title"].(string); len(st) > len(t) {
		in["title"] = st
	}
	if in["title"] == "break" {
		in["title"] = 42
	}
	data, err := json.Marshal(in)
	return Resolution{Outcome: Merge, Data: data}, err
})

// laterField merges field by field, the later field time winning (ties
// to the change): the shape of plugins/policies.FieldLWW, which this
// package's tests cannot import.
type laterField struct{}

func (laterField) UsesFieldTimes() bool { return true }

func (laterField) Resolve(_ context.Context, c *Conflict) (Resolution, error) {
	var sd, id map[string]any
	if err := json.Unmarshal(c.Stored.Data, &sd); err != nil {
		return Resolution{}, err
	}
	if err := json.Unmarshal(c.Incoming.Data, &id); err != nil {
		return Resolution{}, err
	}
	out, times := map[string]any{}, map[string]Time{}
	for _, m := range []map[string]any{sd, id} {
		for name := range m {
			ts, okS := EffectiveFieldTime(c.Stored, sd, name)
			ti, okI := EffectiveFieldTime(c.Incoming, id, name)
			if okI && (!okS || !ti.Before(ts)) {
				out[name], times[name] = id[name], Time{Time: ti}
			} else {
				out[name], times[name] = sd[name], Time{Time: ts}
			}
		}
	}
	at := c.Stored.ModifyAt.Time
	if c.Incoming.ModifyAt.After(at) {
		at = c.Incoming.ModifyAt.Time
	}
	data, err := json.Marshal(out)
	return Resolution{Outcome: Merge, Data: data, ModifyAt: at, FieldsModifyAt: times}, err
}

// pipeStep is one push of a scenario and the statuses it must answer.
type pipeStep struct {
	changes []*Change
	want    string
}

type pipeScenario struct {
	name  string
	steps []pipeStep
	// storeDecided: the store-decided run must decide at least one push
	// of this scenario in the store.
	storeDecided bool
}

func pipeScenarios(t0 time.Time) []pipeScenario {
	us := time.Microsecond
	ch := func(model, uid string, at time.Time, data string) *Change {
		c := &Change{Model: model, UID: uid, ModifyAt: Time{Time: at}}
		if data != "" {
			c.Data = json.RawMessage(data)
		}
		op := model + "/" + uid
		c.OpID = &op
		return c
	}
	field := func(uid string, at time.Time, data string, times map[string]time.Time) *Change {
		c := ch("pipe.Field", uid, at, data)
		for k, t := range times {
			if c.FieldsModifyAt == nil {
				c.FieldsModifyAt = map[string]Time{}
			}
			c.FieldsModifyAt[k] = Time{Time: t}
		}
		return c
	}
	item := func(uid string, at time.Time, n int) *Change {
		return ch("test.Item", uid, at, fmt.Sprintf(`{"n":%d}`, n))
	}
	other := func(uid string, at time.Time, n int) *Change {
		return ch("test.Other", uid, at, fmt.Sprintf(`{"n":%d,"s":"other"}`, n))
	}
	voucher := func(uid, code string, at time.Time) *Change {
		return ch("pipe.Voucher", uid, at, fmt.Sprintf(`{"code":%q,"n":1}`, code))
	}
	note := func(uid, title string, at time.Time) *Change {
		return ch("pipe.Note", uid, at, fmt.Sprintf(`{"title":%q,"body":"b"}`, title))
	}
	del := func(c *Change) *Change { c.IsDeleted = true; return c }
	return []pipeScenario{
		{name: "creates", storeDecided: true, steps: []pipeStep{
			{[]*Change{item("a", t0, 1), item("b", t0, 2), item("c", t0, 3)}, "applied applied applied"},
		}},
		{name: "older newer equal", storeDecided: true, steps: []pipeStep{
			{[]*Change{item("a", t0, 1), item("b", t0, 1), item("c", t0, 1), item("d", t0, 1)}, "applied applied applied applied"},
			{[]*Change{
				item("a", t0.Add(-us), 2), // one microsecond older: stale
				item("b", t0.Add(us), 2),  // one microsecond newer
				item("c", t0, 3),          // same time, other content: the tie goes to the change
				item("d", t0, 1),          // same time, same content: a retry
				item("e", t0, 5),          // new
			}, "stale applied applied applied applied"},
		}},
		{name: "stale first", storeDecided: true, steps: []pipeStep{
			{[]*Change{item("a", t0, 1)}, "applied"},
			{[]*Change{item("a", t0.Add(-time.Second), 2), item("b", t0, 2)}, "stale applied"},
			{[]*Change{item("a", t0.Add(-time.Second), 3)}, "stale"},
		}},
		{name: "exact retries", storeDecided: true, steps: []pipeStep{
			{[]*Change{item("a", t0, 1), item("b", t0, 2)}, "applied applied"},
			{[]*Change{item("a", t0, 1), item("b", t0, 2)}, "applied applied"},
			{[]*Change{item("b", t0, 2), item("c", t0, 3), item("a", t0, 1)}, "applied applied applied"},
		}},
		{name: "tombstones", storeDecided: true, steps: []pipeStep{
			{[]*Change{item("a", t0, 1), item("b", t0, 2), item("c", t0, 3)}, "applied applied applied"},
			{[]*Change{
				del(item("a", t0.Add(time.Second), 1)),  // with data
				del(item("c", t0.Add(-time.Second), 9)), // older: stale
			}, "applied stale"},
			{[]*Change{
				del(ch("test.Item", "b", t0.Add(time.Second), "")), // without data: keeps the stored data
				del(ch("test.Item", "n", t0, "")),                  // a tombstone of a record never seen
				del(item("m", t0, 4)),                              // a new tombstone with data
			}, "applied applied applied"},
			{[]*Change{
				del(item("a", t0.Add(time.Second), 1)),             // a retry
				del(ch("test.Item", "b", t0.Add(time.Second), "")), // a retry without data
				item("a", t0.Add(2*time.Second), 7),                // restored
			}, "applied applied applied"},
		}},
		{name: "retried merge", steps: []pipeStep{
			{[]*Change{note("n", "a long title", t0), note("m", "m", t0)}, "applied applied"},
			{[]*Change{note("n", "short", t0.Add(time.Second))}, "applied"},                              // merged: the long title stays
			{[]*Change{note("n", "short", t0.Add(time.Second))}, "applied"},                              // retried: no new version
			{[]*Change{note("n", "a long title", t0.Add(time.Second))}, "applied"},                       // merges to the stored record too
			{[]*Change{note("m", "break", t0.Add(time.Second)), note("o", "o", t0)}, "rejected applied"}, // an invalid merge
			{[]*Change{del(ch("pipe.Note", "n", t0.Add(2*time.Second), ""))}, "applied"},
		}},
		{name: "models interleaved", storeDecided: true, steps: []pipeStep{
			{[]*Change{item("x", t0, 1), other("x", t0, 1), voucher("x", "mi-1", t0), item("y", t0, 2), other("y", t0, 2), voucher("y", "mi-2", t0)},
				"applied applied applied applied applied applied"},
			{[]*Change{other("x", t0.Add(-us), 3), item("x", t0.Add(us), 3), voucher("y", "mi-2", t0), voucher("x", "mi-3", t0.Add(time.Second)), other("z", t0, 4)},
				"stale applied applied applied applied"},
		}},
		{name: "same uid twice", steps: []pipeStep{
			{[]*Change{item("a", t0, 1), item("b", t0, 1), item("a", t0.Add(time.Second), 2), item("a", t0.Add(-time.Second), 3), item("a", t0.Add(time.Second), 2)},
				"applied applied applied stale applied"},
		}},
		{name: "invalid mixed in", storeDecided: true, steps: []pipeStep{
			{[]*Change{
				item("a", t0, 1),
				item("bad uid!", t0, 1),
				ch("test.Nope", "x", t0, `{"n":1}`),
				ch("test.Item", "s", t0, `{"n":"one"}`),
				ch("test.Item", "d", t0, ""),
				ch("test.Item", "arr", t0, `[1]`),
				item("future", t0.Add(48*time.Hour), 1),
				ch("pipe.Voucher", "neg", t0, `{"code":"neg","n":-1}`),
				item("b", t0, 2),
			}, "applied rejected rejected rejected rejected rejected rejected rejected applied"},
		}},
		{name: "field times", steps: []pipeStep{
			{[]*Change{field("f1", t0, `{"title":"a","body":"b"}`, nil), field("f2", t0, `{"title":"a"}`, map[string]time.Time{"gone": t0.Add(-time.Second)})},
				"applied applied"},
			{[]*Change{
				field("f1", t0.Add(time.Second), `{"title":"new","body":"old"}`, map[string]time.Time{"body": t0.Add(-time.Second)}),
				field("f2", t0.Add(-time.Second), `{"title":"older","body":"added"}`, map[string]time.Time{"title": t0.Add(-2 * time.Second)}),
				field("f1", t0.Add(time.Second), `{"title":"new","body":"old"}`, map[string]time.Time{"body": t0.Add(-time.Second)}), // a retry
				field("f3", t0, `{"title":"x"}`, map[string]time.Time{"title": t0.Add(time.Second)}),                                 // after modify_at
			}, "applied applied applied rejected"},
		}},
		{name: "quota", steps: []pipeStep{
			{[]*Change{item("a", t0, 1), item("b", t0, 2)}, "applied applied"},
			{[]*Change{item("c", t0, 3), item("a", t0.Add(time.Second), 4), item("d", t0, 5), item("e", t0, 6)}, "applied applied rejected rejected"},
		}},
		{name: "unique conflict", steps: []pipeStep{
			{[]*Change{voucher("v1", "uq-A", t0), voucher("v2", "uq-A", t0), voucher("v3", "uq-B", t0)}, "applied rejected applied"},
			{[]*Change{voucher("v3", "uq-A", t0.Add(time.Second)), voucher("v4", "uq-C", t0)}, "rejected applied"},
		}},
	}
}

// pipeRun is one way of running the scenarios.
type pipeRun struct {
	store   synctest.Store
	fastest route
}

func (r pipeRun) String() string { return string(r.store) + "/" + r.fastest.String() }

// TestWriteRoutesAgree is the differential test of the write pipeline: the
// same pushes, through every route (store-decided on PostgreSQL, bulk,
// change by change, on both stores), answer the same statuses, records and
// versions, vouch for the same versions (the push cursor), and leave the
// same stored state.
func TestWriteRoutesAgree(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	now := t0.Add(time.Hour)
	runs := []pipeRun{
		{synctest.Postgres, routeStore}, {synctest.Postgres, routeBulk}, {synctest.Postgres, routeCareful},
		{synctest.SQLite, routeBulk}, {synctest.SQLite, routeCareful},
	}
	var ref []string // the first run's transcript, a scenario per entry
	var refRun pipeRun
	for _, run := range runs {
		t.Run(run.String(), func(t *testing.T) {
			db := synctest.Open(t, run.store)
			ctx := context.Background()
			app, err := New(Config{DB: db, Schemas: pipeSchemas, Now: func() time.Time { return now },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				QuotaFor: func(_ context.Context, user string) (Quota, error) {
					if user == "u-quota" {
						return Quota{MaxRecords: 3}, nil
					}
					return Quota{}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			app.fastestRoute = run.fastest
			app.MustRegisterSchema("test.Item", ModelOptions{Schema: "item.json"})
			app.MustRegisterSchema("test.Other", ModelOptions{Schema: "item.json"})
			app.MustRegisterSchema("pipe.Note", ModelOptions{Schema: "note.json", Policy: longerTitle})
			app.MustRegisterSchema("pipe.Field", ModelOptions{Schema: "note.json", Policy: laterField{}})
			MustRegister[pipeVoucher](app, ModelOptions{Schema: "voucher.json"})
			if err := app.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			decided := 0
			app.afterNewerWrite = func() { decided++ }
			var got []string
			for _, sc := range pipeScenarios(t0) {
				p := Principal{UserID: "u-" + strings.ReplaceAll(sc.name, " ", "-")}
				before := decided
				var lines []string
				for k, step := range sc.steps {
					res, out, err := app.push(ctx, p, step.changes, PushOptions{})
					if err != nil {
						t.Fatalf("%s, push %d: %v", sc.name, k, err)
					}
					var statuses []string
					for i, r := range res {
						statuses = append(statuses, r.Status)
						line, _ := json.Marshal(r)
						lines = append(lines, fmt.Sprintf("push %d: %s slot %d", k, line, out[i].slot))
					}
					if s := strings.Join(statuses, " "); s != step.want {
						t.Errorf("%s, push %d: statuses %s, want %s", sc.name, k, s, step.want)
					}
				}
				if run.fastest == routeStore && sc.storeDecided && decided == before {
					t.Errorf("%s: no push was decided by the store", sc.name)
				}
				page, err := app.Pull(ctx, p, PullRequest{Limit: 5000})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page.Changes {
					line, _ := json.Marshal(r)
					lines = append(lines, "stored: "+string(line))
				}
				since, err := app.ReadSince(ctx, p, SinceRequest{})
				if err != nil {
					t.Fatal(err)
				}
				usage, err := app.Usage(ctx, p.UserID)
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, fmt.Sprintf("scope version %d, %d records", since.Version, usage.Records))
				got = append(got, strings.Join(lines, "\n"))
			}
			if run.fastest == routeStore && decided == 0 {
				t.Fatal("the store decided nothing")
			}
			if testing.Verbose() {
				t.Log("\n" + strings.Join(got, "\n\n"))
			}
			if ref == nil {
				ref, refRun = got, run
				return
			}
			for i, sc := range pipeScenarios(t0) {
				if got[i] != ref[i] {
					t.Errorf("%s differs from %s:\n%s", sc.name, refRun, lineDiff(ref[i], got[i]))
				}
			}
		})
	}
}

// lineDiff shows the lines of a and b that differ, side by side.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}
