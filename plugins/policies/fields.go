package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ferrysync/ferry/framework"
)

// DeleteRule says how a record-level delete meets a field edit the
// deleting device had not seen.
type DeleteRule int

const (
	// DeleteWins: a delete wins against every field edit, earlier or later,
	// and a deleted record stays deleted (a later change to it is answered
	// stale with the tombstone; give a new record a new uid). Realm and
	// PowerSync decide so.
	DeleteWins DeleteRule = iota
	// EditWins: the later of the delete and the latest field edit wins. A
	// delete applies only when its modify_at is at or after every field
	// time of the stored record; a change whose latest field time is at
	// or after a tombstone's modify_at brings the record back, its fields
	// merged with the tombstone's.
	EditWins
)

// FieldLWW merges field by field: for every top-level field of the data,
// the side whose field time is later wins, the field's value or its
// absence alike. A field's time is its fields_modify_at entry, else the
// record's modify_at when the data has the field; a field neither side
// has a time for is absent. When both times are equal the record rule
// decides (the incoming change wins when its modify_at is at or after the
// stored one's, as with [framework.LastWriterWins]). The merged record
// takes the later modify_at of both and the winning field times; deletes
// follow Deletes.
//
// A client that sends no fields_modify_at gets record-level
// last-writer-wins for the fields it sends; a field it leaves out keeps
// the stored value (it names no edit), so to remove a field under
// FieldLWW a client names it in fields_modify_at (or sets it to null).
type FieldLWW struct {
	Deletes DeleteRule
}

var (
	_ framework.ConflictPolicy = FieldLWW{}
	_ framework.FieldTimesUser = FieldLWW{}
)

// UsesFieldTimes implements [framework.FieldTimesUser].
func (FieldLWW) UsesFieldTimes() bool { return true }

// Resolve implements [framework.ConflictPolicy].
func (p FieldLWW) Resolve(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
	return resolveFields(c, p.Deletes, nil)
}

// ArrayRule says how [Automerge] combines an array field both sides hold.
type ArrayRule int

const (
	// ArrayConcat keeps the stored items in order and appends the
	// incoming ones it lacks (JSON-equal items are one): concatenation
	// without duplicates. The default.
	ArrayConcat ArrayRule = iota
	// ArraySet treats the array as a set: the union of both, in a
	// canonical order (by JSON text), so the result does not depend on
	// which side arrived first.
	ArraySet
	// ArrayReplace takes the array of the side whose field time is later,
	// as [FieldLWW] does.
	ArrayReplace
)

// Automerge merges as AWS AppSync's AUTOMERGE does, on top of [FieldLWW]'s
// field times: scalars by field time; arrays both sides hold combined by
// Arrays' rule for the field (default [ArrayConcat]); objects both sides
// hold merged key by key, recursively, keys only one side has kept, and
// conflicting scalars inside taken from the side whose field time is
// later; fields only one side has kept when that side's time is later
// (absent fields follow FieldLWW). Deletes follow Deletes.
//
// A merge never removes array items: an item one device removed comes
// back while another side still holds it. Name such fields ArrayReplace
// (or use FieldLWW) when removals must propagate.
type Automerge struct {
	Deletes DeleteRule
	// Arrays sets the rule of top-level array fields by name. A field it
	// does not name is ArraySet when the model's schema says its items
	// are unique ("uniqueItems": true), else ArrayConcat.
	Arrays map[string]ArrayRule
}

var (
	_ framework.ConflictPolicy = Automerge{}
	_ framework.FieldTimesUser = Automerge{}
)

// UsesFieldTimes implements [framework.FieldTimesUser].
func (Automerge) UsesFieldTimes() bool { return true }

// Resolve implements [framework.ConflictPolicy].
func (p Automerge) Resolve(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
	return resolveFields(c, p.Deletes, func(field string, stored, incoming any, incomingWins bool) any {
		return combine(stored, incoming, incomingWins, p.arrayRule(c.Schema, field))
	})
}

// arrayRule is the rule of the top-level array field: Arrays', else the
// schema's.
func (p Automerge) arrayRule(schema *framework.ModelSchema, field string) ArrayRule {
	if rule, ok := p.Arrays[field]; ok {
		return rule
	}
	if f, _ := schema.Field(field); f.UniqueItems {
		return ArraySet
	}
	return ArrayConcat
}

// combineFunc merges the values both sides hold for a top-level field;
// incomingWins says which side's field time is later.
type combineFunc func(field string, stored, incoming any, incomingWins bool) any

// resolveFields is FieldLWW's merge, with combine (nil: the winner's
// value) for fields both sides hold.
func resolveFields(c *framework.Conflict, deletes DeleteRule, combine combineFunc) (framework.Resolution, error) {
	s, in := c.Stored, c.Incoming
	sd, err := decodeObject(s.Data)
	if err != nil {
		return framework.Resolution{}, fmt.Errorf("stored data: %w", err)
	}
	id, err := decodeObject(in.Data)
	if err != nil {
		return framework.Resolution{}, fmt.Errorf("incoming data: %w", err)
	}
	tie := !in.ModifyAt.Before(s.ModifyAt.Time) // the record rule
	at := s.ModifyAt.Time
	if in.ModifyAt.After(at) {
		at = in.ModifyAt.Time
	}
	switch {
	case s.IsDeleted && in.IsDeleted:
		// The record is deleted, as the change wants (a retry of a delete
		// that merged, too): applied, the stored tombstone kept at the
		// later modify_at.
		r := keepTombstone(s, sd)
		r.ModifyAt = at
		return r, nil
	case in.IsDeleted:
		if deletes == EditWins && in.ModifyAt.Before(latest(s, sd)) {
			return framework.Resolution{Outcome: framework.KeepStored}, nil
		}
		r := keepTombstone(s, sd)
		r.ModifyAt = at
		return r, nil
	case s.IsDeleted:
		if deletes == DeleteWins || latest(in, id).Before(s.ModifyAt.Time) {
			return framework.Resolution{Outcome: framework.KeepStored}, nil
		}
	}
	data, times, kept := mergeFields(s, in, sd, id, tie, combine)
	if !kept && !s.IsDeleted {
		// Nothing of the change is in the result: it lost. (A retry of a
		// change that merged finds its fields there and is answered
		// applied, with no new version.)
		return framework.Resolution{Outcome: framework.KeepStored}, nil
	}
	text, err := json.Marshal(data)
	if err != nil {
		return framework.Resolution{}, fmt.Errorf("encode merged data: %w", err)
	}
	live := false
	return framework.Resolution{Outcome: framework.Merge, Data: text, Deleted: &live, ModifyAt: at, FieldsModifyAt: times}, nil
}

// keepTombstone is a merge into s's data (decoded: sd) and field times,
// deleted. The times are written out: the tombstone's modify_at may be
// later than s's, which implied the time of every field it names none
// for, and a delete edits no field.
func keepTombstone(s *framework.Record, sd map[string]any) framework.Resolution {
	deleted := true
	times := make(map[string]framework.Time, len(s.FieldsModifyAt)+len(sd))
	for name, t := range s.FieldsModifyAt {
		times[name] = t
	}
	for name := range sd {
		if _, ok := times[name]; !ok {
			times[name] = s.ModifyAt
		}
	}
	return framework.Resolution{Outcome: framework.Merge, Data: s.Data, Deleted: &deleted, ModifyAt: s.ModifyAt.Time, FieldsModifyAt: times}
}

// mergeFields merges two records' top-level fields by field time. kept
// reports whether some field of the incoming change is in the result: its
// value (or absence) and time won, or it added to a combined value.
func mergeFields(s, in *framework.Record, sd, id map[string]any, tie bool, combine combineFunc) (data map[string]any, times map[string]framework.Time, kept bool) {
	names := map[string]struct{}{}
	for _, m := range []map[string]any{sd, id} {
		for k := range m {
			names[k] = struct{}{}
		}
	}
	for _, m := range []map[string]framework.Time{s.FieldsModifyAt, in.FieldsModifyAt} {
		for k := range m {
			names[k] = struct{}{}
		}
	}
	data = make(map[string]any, len(names))
	times = make(map[string]framework.Time, len(names))
	for name := range names {
		ts, okS := framework.EffectiveFieldTime(s, sd, name)
		ti, okI := framework.EffectiveFieldTime(in, id, name)
		takeIn := okI && (!okS || ti.After(ts) || ti.Equal(ts) && tie)
		win, winAt := sd, ts
		if takeIn {
			win, winAt = id, ti
		}
		if !okS && !okI {
			continue
		}
		times[name] = framework.Time{Time: winAt}
		sv, hasS := sd[name]
		iv, hasI := id[name]
		if combine != nil && hasS && hasI {
			v := combine(name, sv, iv, takeIn)
			data[name] = v
			kept = kept || takeIn || !sameJSON(v, sv) || containedIn(iv, v)
			continue
		}
		if v, ok := win[name]; ok {
			data[name] = v
		}
		_, winHas := win[name]
		kept = kept || takeIn || okI && ti.Equal(winAt) && hasI == winHas && sameJSON(iv, win[name])
	}
	return data, times, kept
}

// containedIn reports whether everything of value a is in b: equal
// scalars, every item of an array, every key of an object (recursively).
func containedIn(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range av {
			w, has := bv[k]
			if !has || !containedIn(v, w) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok {
			return false
		}
		for _, v := range av {
			if !slices.ContainsFunc(bv, func(w any) bool { return sameJSON(v, w) }) {
				return false
			}
		}
		return true
	}
	return sameJSON(a, b)
}

// sameJSON reports whether two decoded JSON values are equal.
func sameJSON(a, b any) bool {
	ta, errA := json.Marshal(a)
	tb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ta, tb)
}

// latest is the time of r's latest field edit (its modify_at when it
// names none later).
func latest(r *framework.Record, data map[string]any) time.Time {
	var out time.Time
	for name := range data {
		if t, _ := framework.EffectiveFieldTime(r, data, name); t.After(out) {
			out = t
		}
	}
	for _, t := range r.FieldsModifyAt {
		if t.After(out) {
			out = t.Time
		}
	}
	if out.IsZero() {
		return r.ModifyAt.Time
	}
	return out
}

// combine merges two JSON values by Automerge's rules.
func combine(stored, incoming any, incomingWins bool, arrays ArrayRule) any {
	switch sv := stored.(type) {
	case map[string]any:
		iv, ok := incoming.(map[string]any)
		if !ok {
			break
		}
		out := make(map[string]any, len(sv)+len(iv))
		for k, v := range sv {
			out[k] = v
		}
		for k, v := range iv {
			if old, both := sv[k]; both {
				out[k] = combine(old, v, incomingWins, ArrayConcat)
			} else {
				out[k] = v
			}
		}
		return out
	case []any:
		iv, ok := incoming.([]any)
		if !ok || arrays == ArrayReplace {
			break
		}
		return combineArrays(sv, iv, arrays)
	}
	if incomingWins {
		return incoming
	}
	return stored
}

// combineArrays is ArrayConcat's or ArraySet's union of two arrays.
func combineArrays(stored, incoming []any, rule ArrayRule) []any {
	seen := map[string]bool{}
	out := make([]any, 0, len(stored)+len(incoming))
	add := func(v any) {
		text, _ := json.Marshal(v)
		if seen[string(text)] {
			return
		}
		seen[string(text)] = true
		out = append(out, v)
	}
	for _, v := range stored {
		add(v)
	}
	for _, v := range incoming {
		add(v)
	}
	if rule == ArraySet {
		slices.SortStableFunc(out, func(a, b any) int {
			ta, _ := json.Marshal(a)
			tb, _ := json.Marshal(b)
			return bytes.Compare(ta, tb)
		})
	}
	return out
}

// decodeObject decodes record data (numbers kept exact).
func decodeObject(data json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	if len(data) == 0 {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
