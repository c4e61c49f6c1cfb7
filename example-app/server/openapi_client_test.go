package server_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/getkin/kin-openapi/openapi3"
)

// tsField is a field of a TypeScript interface in clients/js/src/wire.ts.
type tsField struct {
	name     string
	optional bool
}

var (
	tsInterface = regexp.MustCompile(`(?s)export interface (\w+) \{\n(.*?)\n\}`)
	tsLine      = regexp.MustCompile(`^\s*(\w+)(\??):\s*(.+?);?\s*$`)
	tsInline    = regexp.MustCompile(`(\w+)(\??):\s*[^;{}]+`)
	tsStatus    = regexp.MustCompile(`export type Status = (.+)`)
	tsCode      = regexp.MustCompile(`(?m)^\s*\w+: '(\w+)',$`)
)

// parseWireTS reads the interfaces of wire.ts: name → fields. An inline
// object type (ErrorBody's error) is its own entry, "ErrorBody.error".
func parseWireTS(t *testing.T, src string) map[string][]tsField {
	t.Helper()
	out := map[string][]tsField{}
	for _, m := range tsInterface.FindAllStringSubmatch(src, -1) {
		for _, line := range strings.Split(m[2], "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "/*") || strings.HasPrefix(strings.TrimSpace(line), "*") || strings.TrimSpace(line) == "" {
				continue
			}
			f := tsLine.FindStringSubmatch(line)
			if f == nil {
				t.Fatalf("wire.ts: interface %s: cannot read %q", m[1], line)
			}
			out[m[1]] = append(out[m[1]], tsField{f[1], f[2] == "?"})
			if typ := f[3]; strings.HasPrefix(typ, "{") {
				inner := strings.Trim(typ, "{} ")
				for _, g := range tsInline.FindAllStringSubmatch(inner, -1) {
					out[m[1]+"."+f[1]] = append(out[m[1]+"."+f[1]], tsField{g[1], g[2] == "?"})
				}
			}
		}
	}
	return out
}

// TestOpenAPIMatchesJSClient checks the JS client's wire types
// (clients/js/src/wire.ts) against /sync/openapi.json: every field the
// client knows is described, with the same name; a field the client reads
// as always there (not optional) in an answer is required by the
// description; statuses and error codes are the described ones. Fields
// the description has and the client does not use are listed in ignored,
// with the reason.
func TestOpenAPIMatchesJSClient(t *testing.T) {
	src, err := os.ReadFile("../../clients/js/src/wire.ts")
	if err != nil {
		t.Fatal(err)
	}
	ts := parseWireTS(t, string(src))
	// The description does not depend on the store (TestOpenAPI checks
	// it against the handlers on both).
	{
		e := newEnv(t, synctest.OpenSQLite(t))
		doc := synctest.LoadOpenAPI(t, e.url, "/sync")
		schemaOf := func(name string) *openapi3.Schema {
			s := doc.Components.Schemas[name]
			if s == nil {
				t.Fatalf("no component %s", name)
			}
			return s.Value
		}
		pairs := []struct {
			ts, schema string
			answer     bool // the client reads it from the server
		}{
			{"WireRecord", "Record", true},
			{"WireChange", "Change", false},
			{"FieldError", "FieldError", true},
			{"WireResult", "Result", true},
			{"PushRequest", "PushRequest", false},
			{"PushResponse", "PushAnswer", true},
			{"PullRequest", "PullRequest", false},
			{"PullResponse", "PullAnswer", true},
			{"StreamToken", "StreamToken", true},
			{"ErrorBody", "Error", true},
		}
		// What the client leaves alone, and why.
		ignored := map[string]string{
			"Record.gone":               "the client subscribes to nothing",
			"Change.owner":              "the server's; a change may carry it back as pulled, and it is ignored",
			"Change.version":            "the server's; a change may carry it back as pulled, and it is ignored",
			"Result.missing_blobs":      "the client uploads no blobs",
			"PullRequest.models":        "the client pulls every model",
			"PullRequest.spaces":        "the client pulls every space the user reads",
			"PullRequest.subscriptions": "the client subscribes to nothing",
		}
		// An ignored field the client has since learnt is a stale reason.
		for _, p := range pairs {
			for _, f := range ts[p.ts] {
				if why, ok := ignored[p.schema+"."+f.name]; ok {
					t.Errorf("wire.ts %s has %s, yet it is ignored (%q): drop the entry", p.ts, f.name, why)
				}
			}
		}
		seenTS := map[string]bool{}
		for _, p := range pairs {
			fields, ok := ts[p.ts]
			if !ok {
				t.Errorf("wire.ts has no interface %s", p.ts)
				continue
			}
			seenTS[p.ts] = true
			checkFields(t, p.ts, fields, p.schema, props(schemaOf(p.schema), doc), p.answer, ignored)
		}
		errObj := props(schemaOf("Error"), doc)["error"]
		checkFields(t, "ErrorBody.error", ts["ErrorBody.error"], "Error.error", props(errObj, doc), true, ignored)
		seenTS["ErrorBody.error"] = true
		for name := range ts {
			if !seenTS[name] {
				t.Errorf("wire.ts interface %s is checked against nothing: add it to the pairs", name)
			}
		}

		// Statuses and codes.
		m := tsStatus.FindStringSubmatch(string(src))
		if m == nil {
			t.Fatal("wire.ts has no Status type")
		}
		var statuses []string
		for _, s := range strings.Split(m[1], "|") {
			statuses = append(statuses, strings.Trim(strings.TrimSpace(s), "'"))
		}
		want := enumOf(props(schemaOf("Result"), doc)["status"])
		if sort.Strings(statuses); strings.Join(statuses, ",") != strings.Join(want, ",") {
			t.Errorf("wire.ts Status = %v, the description's = %v", statuses, want)
		}
		var codes []string
		for _, c := range tsCode.FindAllStringSubmatch(string(src), -1) {
			codes = append(codes, c[1])
		}
		described := map[string]bool{}
		for _, c := range enumOf(schemaOf("ErrorCode")) {
			described[c] = true
		}
		for _, c := range codes {
			if !described[c] {
				t.Errorf("wire.ts Codes has %q, which the description does not", c)
			}
			delete(described, c)
		}
		delete(described, "hash_mismatch") // the blobs plugin's, which the client does not use
		if len(described) > 0 {
			t.Errorf("wire.ts Codes lacks described codes %v", described)
		}
	}
}

func checkFields(t *testing.T, tsName string, fields []tsField, schema string, described map[string]*openapi3.Schema, answer bool, ignored map[string]string) {
	t.Helper()
	known := map[string]bool{}
	for _, f := range fields {
		known[f.name] = true
		s, ok := described[f.name]
		switch {
		case !ok:
			t.Errorf("wire.ts %s.%s: %s describes no such field", tsName, f.name, schema)
		case answer && !f.optional && !s.Extensions["x-required"].(bool):
			t.Errorf("wire.ts %s.%s is not optional, but %s does not require it: mark it optional", tsName, f.name, schema)
		}
	}
	for name := range described {
		if !known[name] && ignored[schema+"."+name] == "" {
			t.Errorf("wire.ts %s lacks %s.%s (or list it as ignored, with why)", tsName, schema, name)
		}
	}
}

// props returns s's properties, through allOf, each marked with
// x-required when s requires it.
func props(s *openapi3.Schema, doc *openapi3.T) map[string]*openapi3.Schema {
	out := map[string]*openapi3.Schema{}
	req := map[string]bool{}
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		for _, a := range s.AllOf {
			walk(a.Value)
		}
		for _, r := range s.Required {
			req[r] = true
		}
		for name, p := range s.Properties {
			if out[name] == nil {
				out[name] = p.Value
			}
		}
	}
	walk(s)
	marked := map[string]*openapi3.Schema{}
	for name, p := range out {
		c := *p
		c.Extensions = map[string]any{"x-required": req[name]}
		marked[name] = &c
	}
	return marked
}

func enumOf(s *openapi3.Schema) []string {
	var out []string
	for _, v := range s.Enum {
		out = append(out, v.(string))
	}
	sort.Strings(out)
	return out
}
