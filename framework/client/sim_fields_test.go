package client_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/plugins/policies"
)

// The simulation's policy dimension: data.Note merges by the policy of
// the run, and under a field-merging one the checker computes the
// expected state of every note field by field.

// simPolicy is data.Note's conflict policy in a run of the simulation
// (FERRY_SIM_POLICY).
type simPolicy string

const (
	simLWW       simPolicy = "lww"       // the example app's own: last writer wins
	simFieldLWW  simPolicy = "fieldlww"  // policies.FieldLWW
	simAutomerge simPolicy = "automerge" // policies.Automerge
)

var simPolicies = []simPolicy{simLWW, simFieldLWW, simAutomerge}

// merges reports whether the policy merges field by field.
func (p simPolicy) merges() bool { return p != simLWW }

// conflictPolicy is the note model's policy with deletes' rule (nil: the
// example app's).
func (p simPolicy) conflictPolicy(deletes policies.DeleteRule) framework.ConflictPolicy {
	switch p {
	case simFieldLWW:
		return policies.FieldLWW{Deletes: deletes}
	case simAutomerge:
		return policies.Automerge{Deletes: deletes}
	}
	return nil
}

// simPoliciesFromEnv reads FERRY_SIM_POLICY: lww, fieldlww, automerge or
// all (the default).
func simPoliciesFromEnv(t *testing.T) []simPolicy {
	t.Helper()
	s := os.Getenv("FERRY_SIM_POLICY")
	if s == "" || s == "all" {
		return simPolicies
	}
	if p := simPolicy(s); slices.Contains(simPolicies, p) {
		return []simPolicy{p}
	}
	t.Fatalf("FERRY_SIM_POLICY=%q must be lww, fieldlww, automerge or all", s)
	return nil
}

// deletesName names a delete rule in messages and stats.
func deletesName(r policies.DeleteRule) string {
	if r == policies.EditWins {
		return "edit wins"
	}
	return "delete wins"
}

// noteFields are data.Note's top-level fields. The note is a typed
// model: the server stores an absent field as its zero value.
var noteFields = []string{"title", "body", "tags", "pinned"}

var noteZero = map[string]string{"title": `""`, "body": `""`, "tags": `null`, "pinned": `false`}

// fieldValue is a note field's value as canonical JSON, the zero value
// when data lacks it.
func fieldValue(data map[string]json.RawMessage, field string) string {
	raw, ok := data[field]
	if !ok {
		return noteZero[field]
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// topFields decodes a record's data into its top-level fields.
func topFields(t *testing.T, data []byte) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("bad note %s: %v", data, err)
		}
	}
	return out
}

// fieldTime is when a field was last edited by the protocol's rule: its
// fields_modify_at entry, else modify_at when the data has the field.
func fieldTime(times map[string]time.Time, at time.Time, data map[string]json.RawMessage, field string) (time.Time, bool) {
	if ft, ok := times[field]; ok {
		return ft.UTC(), true
	}
	if _, has := data[field]; has {
		return at.UTC(), true
	}
	return time.Time{}, false
}

// fieldEdit is one edit of one field: when, and the value it set.
type fieldEdit struct {
	at    time.Time
	value string // canonical JSON
}

// fieldRecord is what the devices did to one note, field by field. A
// purge of its tombstone starts a new generation: the server then knows
// nothing of the record, and the next change creates it again.
type fieldRecord struct {
	gen int
	// all holds every edit of every generation, per field: the value and
	// time any field of the record may show.
	all map[string][]fieldEdit
	// latest holds, per field, this generation's latest edits (several
	// on a tie).
	latest map[string][]fieldEdit
	// lastEdit is this generation's latest field edit (any field),
	// lastWrite its latest write (edits and deletes).
	lastEdit, lastWrite time.Time
	// deleted says a delete of this generation reached the server,
	// deleteAt is the latest such.
	deleted  bool
	deleteAt time.Time
	written  bool // a device wrote the record in this generation
	// blind says a device deleted the note when the server may not have
	// held it (never acknowledged, or purged): the server's tombstone then
	// holds the model's empty data, no one's edit (framework's
	// UnEditedFieldTime), and a field a revival does not carry keeps it.
	blind bool
	// tags holds, in order of arrival, the tags of this generation's
	// changes the server applied (for Automerge's union).
	tags []fieldEdit
}

// fieldLog holds what the devices did to every note, keyed by
// owner/model/uid.
type fieldLog map[string]*fieldRecord

func (l fieldLog) rec(k string) *fieldRecord {
	r := l[k]
	if r == nil {
		r = &fieldRecord{all: map[string][]fieldEdit{}, latest: map[string][]fieldEdit{}}
		l[k] = r
	}
	return r
}

// wrote records a local write of a note (prev is the device's record
// before it, nil for a new one) and returns the fields it edited. A field
// is edited when the write changed, added or removed it, by the
// checker's own comparison; a new note (always written whole here) edits
// every field. It fails when the client's field times disagree: an
// edited field must be at the write's modify_at, another keeps its time.
func (l fieldLog) wrote(t *testing.T, name string, prev, rec *client.Record) []string {
	t.Helper()
	k := rec.Owner + "/" + rec.Model + "/" + rec.UID
	r := l.rec(k)
	r.written = true
	at := rec.ModifyAt.UTC()
	if at.After(r.lastWrite) {
		r.lastWrite = at
	}
	if rec.IsDeleted {
		return nil // a delete: it counts when it reaches the server
	}
	after := topFields(t, rec.Data)
	var before map[string]json.RawMessage
	if prev != nil {
		before = topFields(t, prev.Data)
	}
	var edited []string
	for _, f := range noteFields {
		_, had := before[f]
		_, has := after[f]
		changed := prev == nil || had != has || had && fieldValue(before, f) != fieldValue(after, f)
		got, ok := fieldTime(rec.FieldsModifyAt, rec.ModifyAt, after, f)
		if !changed {
			want, wok := fieldTime(prev.FieldsModifyAt, prev.ModifyAt, before, f)
			if ok != wok || !got.Equal(want) {
				t.Errorf("%s: %s: the client gave %s, which this write left alone, the time %v (%v), it had %v (%v)",
					name, rec.UID, f, got, ok, want, wok)
			}
			continue
		}
		if has && (!ok || !got.Equal(at)) || !has && ok && !got.Equal(at) {
			t.Errorf("%s: %s: the client gave %s, which this write edited at %v, the time %v (%v)", name, rec.UID, f, at, got, ok)
		}
		edited = append(edited, f)
		e := fieldEdit{at: at, value: fieldValue(after, f)}
		r.all[f] = append(r.all[f], e)
		switch old := r.latest[f]; {
		case len(old) == 0 || at.After(old[0].at):
			r.latest[f] = []fieldEdit{e}
		case at.Equal(old[0].at):
			r.latest[f] = append(old, e)
		}
		if at.After(r.lastEdit) {
			r.lastEdit = at
		}
	}
	return edited
}

// received notes a delete of k at at that reached the server.
func (l fieldLog) received(k string, at time.Time) {
	r := l.rec(k)
	r.deleted = true
	if at.After(r.deleteAt) {
		r.deleteAt = at.UTC()
	}
}

// arrived notes a change of k the server applied: its tags' value and
// time.
func (l fieldLog) arrived(t *testing.T, k string, at time.Time, times map[string]time.Time, data json.RawMessage) {
	t.Helper()
	fields := topFields(t, data)
	ft, ok := fieldTime(times, at, fields, "tags")
	if !ok {
		return // never edited: Automerge keeps the stored tags
	}
	r := l.rec(k)
	r.tags = append(r.tags, fieldEdit{at: ft, value: fieldValue(fields, "tags")})
}

// mergedTags returns the items Automerge must have merged into tags: on a
// note no delete reached, the latest edit's array and every array that
// arrived after it (each merged into the stored array, which no older
// null can replace). ok is false when that is not known.
func (r *fieldRecord) mergedTags() (items []string, ok bool) {
	latest := r.latest["tags"]
	if r.deleted || len(latest) == 0 {
		return nil, false
	}
	first := slices.IndexFunc(r.tags, func(e fieldEdit) bool { return e.at.Equal(latest[0].at) })
	if first < 0 {
		return nil, false
	}
	for _, e := range r.tags[first:] {
		var set []string
		if json.Unmarshal([]byte(e.value), &set) != nil || set == nil {
			if e.at.Equal(latest[0].at) {
				return nil, false // the latest edit (or one of a tie) set null
			}
			continue
		}
		for _, item := range set {
			if !slices.Contains(items, item) {
				items = append(items, item)
			}
		}
	}
	return items, true
}

// purged starts a new generation of k: the server purged its tombstone.
func (l fieldLog) purged(k string) {
	r := l.rec(k)
	*r = fieldRecord{gen: r.gen + 1, all: r.all, latest: map[string][]fieldEdit{}}
}

// fieldCheck counts what check compared.
type fieldCheck struct {
	notes, exact, weak, deleted int
}

// check fails for every note of owner whose state on the server (want,
// keyed by model/uid) is not what the protocol makes of the devices'
// edits:
//   - A note is deleted when a delete of it reached the server (deletes
//     win), or when the latest delete that did is at or after its latest
//     field edit (edit wins; a tie may go either way).
//   - A live note's modify_at is its latest field edit.
//   - A live note's field shows the latest edit of that field, value and
//     time, unless a delete at or after that edit reached the server
//     under edit wins (the edit lost to the delete, and a revival merges
//     the tombstone's fields, which depend on the order of arrival) or
//     the field was not edited since its tombstone was purged: then it
//     shows some edit of it, value and time together.
//   - Under Automerge, tags is the union of what was merged: it holds
//     every item of the latest edit (null when that set null), and only
//     items some edit set.
//   - A tombstone's modify_at is between its latest delete and its latest
//     write; its data depends on the order of arrival and is not checked.
func (l fieldLog) check(t *testing.T, owner string, want map[string]state, purged map[string]bool, pol simPolicy, deletes policies.DeleteRule) fieldCheck {
	t.Helper()
	var n fieldCheck
	how := fmt.Sprintf("%s, %s", pol, deletesName(deletes))
	for k, r := range l {
		o, mk, _ := strings.Cut(k, "/")
		if o != owner {
			continue
		}
		n.notes++
		s, ok := want[mk]
		switch {
		case !ok && purged[k] && !r.written:
			continue // purged, and not written since
		case !ok:
			t.Errorf("%s: written (latest at %s) but not on the server", mk, r.lastWrite.Format(time.RFC3339Nano))
			continue
		case !r.written:
			t.Errorf("%s: on the server, but not written since its tombstone was purged: %+v", mk, s)
			continue
		}
		wantDeleted, either := r.deleted, false
		if deletes == policies.EditWins && r.deleted && !r.lastEdit.IsZero() {
			wantDeleted = !r.deleteAt.Before(r.lastEdit)
			either = r.deleteAt.Equal(r.lastEdit)
		}
		if s.IsDeleted != wantDeleted && !either {
			t.Errorf("%s (%s): the server has deleted=%v; deletes that reached it: %v (latest at %s), latest field edit at %s",
				mk, how, s.IsDeleted, r.deleted, r.deleteAt.Format(time.RFC3339Nano), r.lastEdit.Format(time.RFC3339Nano))
			continue
		}
		if s.IsDeleted {
			n.deleted++
			if s.ModifyAt.Before(r.deleteAt) || s.ModifyAt.After(r.lastWrite) {
				t.Errorf("%s (%s): the tombstone has modify_at %s, outside its latest delete %s and latest write %s",
					mk, how, s.ModifyAt.Format(time.RFC3339Nano), r.deleteAt.Format(time.RFC3339Nano), r.lastWrite.Format(time.RFC3339Nano))
			}
			continue
		}
		if !s.ModifyAt.Equal(r.lastEdit) {
			t.Errorf("%s (%s): the server has modify_at %s, the latest field edit was at %s",
				mk, how, s.ModifyAt.Format(time.RFC3339Nano), r.lastEdit.Format(time.RFC3339Nano))
		}
		data := topFields(t, mustJSON(t, s.Data))
		times := parseFieldTimes(t, s.Fields)
		for _, f := range noteFields {
			v := fieldValue(data, f)
			at, _ := fieldTime(times, s.ModifyAt, data, f)
			latest := r.latest[f]
			exact := len(latest) > 0 && (deletes == policies.DeleteWins || !r.deleted || latest[0].at.After(r.deleteAt))
			union := pol == simAutomerge && f == "tags"
			if exact {
				n.exact++
				if !at.Equal(latest[0].at) || !slices.ContainsFunc(latest, func(e fieldEdit) bool { return fieldHolds(union, v, e.value) }) {
					t.Errorf("%s (%s): %s is %s edited at %s, but its latest edit set %s at %s",
						mk, how, f, v, at.Format(time.RFC3339Nano), editValues(latest), latest[0].at.Format(time.RFC3339Nano))
				}
			} else {
				n.weak++
				unEdited := r.blind && at.Equal(framework.UnEditedFieldTime) && v == noteZero[f]
				if !unEdited && !slices.ContainsFunc(r.all[f], func(e fieldEdit) bool { return e.at.Equal(at) && fieldHolds(union, v, e.value) }) {
					t.Errorf("%s (%s): %s is %s edited at %s, which no edit of it set", mk, how, f, v, at.Format(time.RFC3339Nano))
				}
			}
			if union && !itemsWritten(v, r.all[f]) {
				t.Errorf("%s (%s): tags is %s, with items no edit set", mk, how, v)
			}
			if items, ok := r.mergedTags(); union && ok && !fieldHolds(true, v, string(mustJSON(t, items))) {
				t.Errorf("%s (%s): tags is %s; the union of the latest edit and the arrays that arrived after it is %q", mk, how, v, items)
			}
		}
	}
	return n
}

// fieldHolds reports whether the field's value v shows the edit's value
// e: the same, or with union (Automerge's arrays) every item of it.
func fieldHolds(union bool, v, e string) bool {
	if v == e || !union {
		return v == e
	}
	var got, set []string
	if json.Unmarshal([]byte(v), &got) != nil || json.Unmarshal([]byte(e), &set) != nil || set == nil || got == nil {
		return false
	}
	for _, item := range set {
		if !slices.Contains(got, item) {
			return false
		}
	}
	return true
}

// itemsWritten reports whether every item of the array v was set by
// some edit.
func itemsWritten(v string, edits []fieldEdit) bool {
	var got []string
	if json.Unmarshal([]byte(v), &got) != nil {
		return false
	}
	for _, item := range got {
		if !slices.ContainsFunc(edits, func(e fieldEdit) bool {
			var set []string
			return json.Unmarshal([]byte(e.value), &set) == nil && slices.Contains(set, item)
		}) {
			return false
		}
	}
	return true
}

func editValues(edits []fieldEdit) string {
	var vs []string
	for _, e := range edits {
		vs = append(vs, e.value)
	}
	return strings.Join(vs, " or ")
}

// formatFieldTimes writes field times as sorted name@time pairs ("" for
// none), so that states compare with ==.
func formatFieldTimes(ft map[string]time.Time) string {
	var out []string
	for name, at := range ft {
		out = append(out, name+"@"+at.UTC().Format(time.RFC3339Nano))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func parseFieldTimes(t *testing.T, s string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	if s == "" {
		return out
	}
	for _, p := range strings.Split(s, ",") {
		name, at, _ := strings.Cut(p, "@")
		v, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			t.Fatalf("field time %q: %v", p, err)
		}
		out[name] = v
	}
	return out
}

func wireFieldTimes(ft map[string]framework.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(ft))
	for k, v := range ft {
		out[k] = v.Time
	}
	return out
}
