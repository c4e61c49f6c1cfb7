package adapter

import (
	"bytes"
	"encoding/json"
	"sort"
	"time"

	"github.com/ferrysync/ferry/framework"
)

// Unedited is the field time an adapter gives a field the device did not
// edit, for models whose policy merges field by field
// ([framework.UsesFieldTimes]): the Unix epoch, older than any edit the
// server holds, so such a field never wins against a value the server has
// a time for.
//
// Why not the time of the device's last pull: a pull position (a version,
// WatermelonDB's last_pulled_at) says which edits a device had seen, not
// when they were made. Edit times come from clocks that are not the
// server's (a native client's modify_at may lag real time by minutes) or
// are stamped before the write commits, so an edit the device never saw
// can carry a time before its pull. A field the device did not edit holds
// either the value the server holds (it saw it: taking either side gives
// the same value) or an older one (it did not): losing every time is right
// in both cases, and only the epoch loses against every real edit.
var Unedited = time.Unix(0, 0).UTC()

// FieldTimes returns a change's fields_modify_at for a device that edited
// the fields in edited (at the change's modify_at) and no other field of
// data (a JSON object): each field of data not in edited is named at
// [Unedited], and each edited field data lacks (the device removed it) at
// at. It returns nil, which leaves every field at the change's modify_at
// (record-level last-writer-wins), when data is not an object or the
// result would name more than [framework.MaxFieldTimes] fields.
func FieldTimes(data json.RawMessage, edited []string, at framework.Time) map[string]framework.Time {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil
	}
	isEdited := make(map[string]bool, len(edited))
	for _, f := range edited {
		isEdited[f] = true
	}
	out := map[string]framework.Time{}
	for f := range obj {
		if !isEdited[f] {
			out[f] = framework.Time{Time: Unedited}
		}
	}
	for f := range isEdited {
		if _, has := obj[f]; !has {
			out[f] = at
		}
	}
	if len(out) > framework.MaxFieldTimes {
		return nil
	}
	return out
}

// EditedFields returns the top-level fields in which next differs from
// assumed (both JSON objects): changed values ([framework.JSONEqual]: key
// order ignored, numbers compared as written), fields only one of them
// has, sorted. With RxDB's
// assumedMasterState as assumed, they are the fields the device edited
// since it last knew the server's document. It reports false when either
// is not an object.
func EditedFields(assumed, next json.RawMessage) ([]string, bool) {
	var a, n map[string]json.RawMessage
	if json.Unmarshal(orEmpty(assumed), &a) != nil || json.Unmarshal(orEmpty(next), &n) != nil {
		return nil, false
	}
	var out []string
	for f, v := range n {
		if w, has := a[f]; !has || !framework.JSONEqual(v, w) {
			out = append(out, f)
		}
	}
	for f := range a {
		if _, has := n[f]; !has {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, true
}

func orEmpty(data json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(data)) == 0 || bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return json.RawMessage(`{}`)
	}
	return data
}

// keptFieldTimes returns the change's fields_modify_at that keep rec's
// field times when rec is written again at a later modify_at: every field
// rec has a time for, by the protocol's rule ([framework.EffectiveFieldTime]).
// nil when rec's data is not an object or names too many fields (then the
// fields take the new modify_at).
func keptFieldTimes(rec *framework.Record) map[string]framework.Time {
	var data map[string]any
	if err := json.Unmarshal(orEmpty(rec.Data), &data); err != nil {
		return nil
	}
	out := make(map[string]framework.Time, len(data)+len(rec.FieldsModifyAt))
	for f := range data {
		if t, ok := framework.EffectiveFieldTime(rec, data, f); ok {
			out[f] = framework.Time{Time: t}
		}
	}
	for f, t := range rec.FieldsModifyAt {
		out[f] = t
	}
	if len(out) == 0 || len(out) > framework.MaxFieldTimes {
		return nil
	}
	return out
}
