package adapter

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
)

func TestFieldTimes(t *testing.T) {
	t.Parallel()
	at := framework.Time{Time: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	epoch := framework.Time{Time: Unedited}
	for _, c := range []struct {
		name   string
		data   string
		edited []string
		want   map[string]framework.Time
	}{
		{"one of three edited", `{"a":1,"b":2,"c":3}`, []string{"b"}, map[string]framework.Time{"a": epoch, "c": epoch}},
		{"all edited", `{"a":1}`, []string{"a"}, map[string]framework.Time{}},
		{"none edited", `{"a":1,"b":null}`, nil, map[string]framework.Time{"a": epoch, "b": epoch}},
		{"an edited field the data lacks was removed", `{"a":1}`, []string{"gone"}, map[string]framework.Time{"a": epoch, "gone": at}},
		{"not an object", `[1]`, nil, nil},
		{"null", `null`, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := FieldTimes(json.RawMessage(c.data), c.edited, at)
			if (got == nil) != (c.want == nil) || len(got) != len(c.want) {
				t.Fatalf("FieldTimes = %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if !got[k].Equal(v.Time) {
					t.Fatalf("FieldTimes = %v, want %v", got, c.want)
				}
			}
		})
	}
	// More unedited fields than a change may name: none are named (the
	// row falls back to record-level last-writer-wins rather than being
	// refused).
	fields := make([]string, framework.MaxFieldTimes+1)
	for i := range fields {
		fields[i] = fmt.Sprintf(`"f%d":0`, i)
	}
	if got := FieldTimes(json.RawMessage("{"+strings.Join(fields, ",")+"}"), nil, at); got != nil {
		t.Fatalf("%d unedited fields named %d times", len(fields), len(got))
	}
	if got := FieldTimes(json.RawMessage("{"+strings.Join(fields, ",")+"}"), []string{"f0"}, at); len(got) != framework.MaxFieldTimes {
		t.Fatalf("%d fields, one edited: %d times", len(fields), len(got))
	}
}

func TestEditedFields(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		assumed, next string
		want          []string
		ok            bool
	}{
		{`{"a":1,"b":"x"}`, `{"b":"x","a":1}`, nil, true},
		{`{"a":1,"b":"x"}`, `{"a":2,"b":"x"}`, []string{"a"}, true},
		{`{"a":{"k":[1,2]}}`, `{"a":{"k":[1,2]}}`, nil, true},
		{`{"a":{"k":[1,2]}}`, `{"a":{"k":[2,1]}}`, []string{"a"}, true},
		{`{"a":1}`, `{"a":1,"new":null}`, []string{"new"}, true},
		{`{"a":1,"gone":0}`, `{"a":1}`, []string{"gone"}, true},
		{`{"n":1.0}`, `{"n":1}`, []string{"n"}, true}, // numbers compare as written (framework.JSONEqual)
		{``, `{"a":1}`, []string{"a"}, true},
		{`[1]`, `{"a":1}`, nil, false},
		{`{"a":1}`, `"x"`, nil, false},
	} {
		got, ok := EditedFields(json.RawMessage(c.assumed), json.RawMessage(c.next))
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("EditedFields(%s, %s) = %v %v, want %v %v", c.assumed, c.next, got, ok, c.want, c.ok)
		}
	}
}

func TestKeptFieldTimes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	older := framework.Time{Time: at.Add(-time.Hour)}
	rec := &framework.Record{ModifyAt: framework.Time{Time: at}, Data: json.RawMessage(`{"a":1,"b":2}`),
		FieldsModifyAt: map[string]framework.Time{"b": older, "removed": older}}
	got := keptFieldTimes(rec)
	if len(got) != 3 || !got["a"].Equal(at) || !got["b"].Equal(older.Time) || !got["removed"].Equal(older.Time) {
		t.Fatalf("keptFieldTimes = %v", got)
	}
	if got := keptFieldTimes(&framework.Record{Data: json.RawMessage(`{}`)}); got != nil {
		t.Fatalf("no fields: %v", got)
	}
}
