package adapter

import (
	"encoding/json"
	"testing"

	"github.com/ferrysync/ferry/framework"
)

func TestFlattenAndSplit(t *testing.T) {
	t.Parallel()
	doc, err := Flatten(&framework.Record{Model: "m", UID: "u1", Data: json.RawMessage(`{"title":"x","id":"spoofed","n":1.50}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(doc["id"]) != `"u1"` || string(doc["n"]) != "1.50" {
		t.Fatalf("flatten: %s", doc)
	}
	for _, data := range []string{``, `null`, `{}`} {
		doc, err := Flatten(&framework.Record{UID: "u2", Data: json.RawMessage(data)})
		if err != nil || len(doc) != 1 {
			t.Fatalf("flatten %q: %v %s", data, err, doc)
		}
	}
	if _, err := Flatten(&framework.Record{UID: "u3", Data: json.RawMessage(`[1]`)}); err == nil {
		t.Fatal("flatten of an array must fail")
	}

	id, data, msg := Split(map[string]any{"id": "a", "title": "t", "_status": "created", "n": json.Number("2")}, "_status")
	if id != "a" || msg != "" || !framework.JSONEqual(data, json.RawMessage(`{"title":"t","n":2}`)) {
		t.Fatalf("split: %q %s %q", id, data, msg)
	}
	for _, bad := range []any{nil, "x", []any{}, map[string]any{"id": 7}, map[string]any{"id": ""}, map[string]any{}} {
		if _, _, msg := Split(bad); msg == "" {
			t.Errorf("split %v: no message", bad)
		}
	}
}

func TestNameRE(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{"tasks": true, "_t-1": true, "1tasks": false, "-x": false, "": false, "a/b": false, "a b": false} {
		if NameRE.MatchString(name) != ok {
			t.Errorf("%q: want %v", name, ok)
		}
	}
}
