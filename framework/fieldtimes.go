package framework

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/internal/jsonvalue"
	"github.com/ferrysync/ferry/models"
)

// Limits of a change's fields_modify_at (schemas/protocol/change.json
// says the same).
const (
	// MaxFieldTimes caps the fields one change may name.
	MaxFieldTimes = 1024
	// MaxRemovedFieldTimes caps the entries a stored record keeps for
	// fields its data no longer has (the newest are kept): an edit older
	// than a forgotten removal could bring that field back.
	MaxRemovedFieldTimes = 64
	// MaxFieldNameLength caps a field name, in characters.
	MaxFieldNameLength = 128
)

// FieldTimesUser is an optional interface of a [ConflictPolicy] that
// decides by per-field edit times. The records of a model whose policy
// (the model's own or Config.DefaultPolicy; not a push's
// [PushOptions].Policy) says true keep their fields_modify_at: the
// server stores what changes send, gives them to the policy in
// [Conflict] and returns them in records. Other models ignore
// fields_modify_at. A policy that wraps another forwards it with
// [UsesFieldTimes].
type FieldTimesUser interface {
	UsesFieldTimes() bool
}

// UsesFieldTimes reports whether p decides by per-field edit times
// ([FieldTimesUser]).
func UsesFieldTimes(p ConflictPolicy) bool {
	u, ok := p.(FieldTimesUser)
	return ok && u.UsesFieldTimes()
}

// EffectiveFieldTime returns when r's field was last edited, by the
// protocol's rule: its fields_modify_at entry, else r's modify_at when
// r's data has the field; ok is false when the field was never edited
// (absent and unnamed). data is r.Data decoded.
func EffectiveFieldTime(r *Record, data map[string]any, field string) (t time.Time, ok bool) {
	if t, ok := r.FieldsModifyAt[field]; ok {
		return t.Time, true
	}
	if _, has := data[field]; has {
		return r.ModifyAt.Time, true
	}
	return time.Time{}, false
}

// checkFieldTimes checks a change's fields_modify_at against its
// modify_at (at, already in stored precision) and returns them in stored
// precision.
func checkFieldTimes(ch *Change, at time.Time) (models.FieldTimes, error) {
	if len(ch.FieldsModifyAt) == 0 {
		return nil, nil
	}
	if len(ch.FieldsModifyAt) > MaxFieldTimes {
		return nil, Invalid("/fields_modify_at", fmt.Sprintf("names more than %d fields", MaxFieldTimes))
	}
	out := make(models.FieldTimes, len(ch.FieldsModifyAt))
	for name, t := range ch.FieldsModifyAt {
		path := "/fields_modify_at/" + pointerToken(name)
		if name == "" || utf8.RuneCountInString(name) > MaxFieldNameLength || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
			return nil, Invalid(path, fmt.Sprintf("a field name must be 1 to %d characters", MaxFieldNameLength))
		}
		ft := t.UTC().Truncate(time.Microsecond)
		if ft.After(at) {
			return nil, Invalid(path, "is after the change's modify_at (a field cannot be edited after its record)")
		}
		out[name] = ft
	}
	return out, nil
}

// canonicalFieldTimes returns ft in stored form for a record with data
// (canonical JSON text) at modify_at at: entries the rule implies (a
// field data has, edited at the record's modify_at) are left out, so two
// writes of one state compare equal whichever way they named the times.
func canonicalFieldTimes(ft models.FieldTimes, data []byte, at time.Time) models.FieldTimes {
	if len(ft) == 0 {
		return nil
	}
	var obj map[string]any
	if v, ok := jsonvalue.Parse(data); ok {
		obj, _ = v.(map[string]any)
	}
	out := make(models.FieldTimes, len(ft))
	var removed []string
	for name, t := range ft {
		_, has := obj[name]
		if has && t.Equal(at) {
			continue
		}
		if !has {
			removed = append(removed, name)
		}
		out[name] = t
	}
	if len(removed) > MaxRemovedFieldTimes {
		// Newest first (then by name, for one answer everywhere).
		slices.SortFunc(removed, func(a, b string) int {
			if c := out[b].Compare(out[a]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		for _, name := range removed[MaxRemovedFieldTimes:] {
			delete(out, name)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// wireFieldTimes converts stored field times to the wire's.
func wireFieldTimes(ft models.FieldTimes) map[string]Time {
	if len(ft) == 0 {
		return nil
	}
	out := make(map[string]Time, len(ft))
	for k, t := range ft {
		out[k] = Time{Time: t}
	}
	return out
}

// storedFieldTimes converts a policy's field times to stored precision.
func storedFieldTimes(ft map[string]Time) models.FieldTimes {
	if len(ft) == 0 {
		return nil
	}
	out := make(models.FieldTimes, len(ft))
	for k, t := range ft {
		out[k] = t.UTC().Truncate(time.Microsecond)
	}
	return out
}

// fieldTimesShapeOK reports whether v surely satisfies the change
// schema's fields_modify_at (see envelopeOK).
func fieldTimesShapeOK(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) > MaxFieldTimes {
		return false
	}
	for name, t := range m {
		if name == "" || utf8.RuneCountInString(name) > MaxFieldNameLength {
			return false
		}
		switch t.(type) {
		case string, json.Number:
		default:
			return false
		}
	}
	return true
}

// pointerToken escapes a name for a JSON Pointer (RFC 6901).
func pointerToken(name string) string {
	if !strings.ContainsAny(name, "~/") {
		return name
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
}

// UnEditedFieldTime is the field time of a field nobody edited: the
// fields of the tombstone a delete leaves of a record the server never
// held (a blind delete). A delete edits no field, so its own
// fields_modify_at are dropped and the model's empty data it stores
// claims no edit: any edit of those fields, however old, wins against
// them, and a record brought back by a merge takes the reviving device's
// values rather than the empty ones.
var UnEditedFieldTime = time.Unix(0, 0).UTC()

// unEditedFieldTimes gives every top-level field of data (canonical JSON
// text) [UnEditedFieldTime].
func unEditedFieldTimes(data []byte) models.FieldTimes {
	v, _ := jsonvalue.Parse(data)
	obj, _ := v.(map[string]any)
	if len(obj) == 0 {
		return nil
	}
	out := make(models.FieldTimes, len(obj))
	for name := range obj {
		out[name] = UnEditedFieldTime
	}
	return out
}
