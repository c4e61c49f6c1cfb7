package framework

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/internal/jsonvalue"
	"github.com/ferrysync/ferry/schemas"
)

// FuzzWireChangeDecodes: a change as a client encodes it from the wire
// types (encoding/json) reads back through the server's own decoder as
// the same change.
func FuzzWireChangeDecodes(f *testing.F) {
	f.Add("data.Note", "n1", int64(1795600800123456), false, "op", `{"title":"Buy milk"}`)
	f.Add("m", "u", int64(0), true, "", ``)
	f.Add("é\u2028<m>", "a_b-C", int64(253402300799999999), false, "\x01", `{"a":[1,2.50,{"b":null}],"c":"\u0000"}`)
	app := &App{}
	ps, err := newSchemaSet(schemas.Protocol)
	if err != nil {
		f.Fatal(err)
	}
	if app.protocol.change, err = ps.compile("change.json"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, model, uid string, micros int64, deleted bool, op, data string) {
		if !utf8.ValidString(model) || !utf8.ValidString(uid) || !utf8.ValidString(op) || !utf8.ValidString(data) {
			return // encoding/json would send U+FFFD instead
		}
		at := time.UnixMicro(micros).UTC()
		if micros < 0 || at.After(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)) {
			return
		}
		w := wire.Change{Model: model, UID: uid, ModifyAt: Time{Time: at}, IsDeleted: deleted}
		if op != "" {
			w.OpID = &op
		}
		if data != "" {
			var obj map[string]any
			if json.Unmarshal([]byte(data), &obj) != nil {
				return
			}
			if obj != nil { // "data": null is a change without data
				w.Data = json.RawMessage(data)
			}
		}
		body, err := json.Marshal(&w)
		if err != nil {
			return // not valid JSON text in data, or not UTF-8
		}
		v, ok := jsonvalue.Parse(body)
		if !ok {
			t.Fatalf("the server's parser refuses %s", body)
		}
		got, errs := app.decodeChange(v)
		if len(errs) > 0 {
			// The envelope's own limits (model length, op_id length)
			// are the schema's to enforce.
			if len(model) == 0 || len([]rune(model)) > 128 || len([]rune(op)) > 128 {
				return
			}
			t.Fatalf("decode %s: %v", body, errs)
		}
		want := NewChange(&w)
		if got.Model != want.Model || got.UID != want.UID || !got.ModifyAt.Equal(want.ModifyAt.Time) || got.IsDeleted != want.IsDeleted ||
			(got.OpID == nil) != (want.OpID == nil) || got.OpID != nil && *got.OpID != *want.OpID ||
			(got.Data == nil) != (want.Data == nil) || got.Data != nil && !JSONEqual(got.Data, want.Data) {
			t.Fatalf("decode %s:\ngot  %+v\nwant %+v", body, got, want)
		}
		back := got.Wire()
		if again, _ := json.Marshal(&back); !JSONEqual(again, body) {
			t.Fatalf("Wire: %s, want %s", again, body)
		}
	})
}
