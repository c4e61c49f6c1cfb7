package framework

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// keywordCase is a schema using one keyword. routes says whether the fast
// check must leave the schema to jsonschema.
type keywordCase struct {
	keyword string
	schema  string
	draft   string // $schema of the root; "" is 2020-12, the compiler's default
	routes  bool
}

const (
	draft7    = "http://json-schema.org/draft-07/schema#"
	draft2019 = "https://json-schema.org/draft/2019-09/schema"
)

// keywordCases are the keywords of JSON Schema draft 2020-12 by
// vocabulary (core, applicator, unevaluated, validation, meta-data,
// format-annotation, content), the older ones jsonschema still reads, and
// keys no vocabulary defines.
var keywordCases = []keywordCase{
	// core
	{keyword: "$id", schema: `{"type":"object","properties":{"a":{"$id":"sub/a.json","type":"string"}}}`},
	{keyword: "$schema", schema: `{"type":"string","maxLength":2}`, draft: "https://json-schema.org/draft/2020-12/schema"},
	{keyword: "$schema", schema: `{"type":"string","maxLength":2}`, draft: draft7},
	{keyword: "$schema", schema: `{"type":"string","maxLength":2}`, draft: "mem://schemas/meta.json", routes: true},
	{keyword: "$ref", schema: `{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s"}`},
	{keyword: "$anchor", schema: `{"$defs":{"s":{"$anchor":"str","type":"string"}},"$ref":"#str"}`},
	{keyword: "$dynamicRef", schema: `{"$defs":{"s":{"type":"string"}},"$dynamicRef":"#/$defs/s"}`, routes: true},
	{keyword: "$dynamicAnchor", schema: `{"$dynamicAnchor":"node","type":"string"}`, routes: true},
	{keyword: "$vocabulary", schema: `{"$vocabulary":{"https://json-schema.org/draft/2020-12/vocab/core":true},"type":"string"}`, routes: true},
	{keyword: "$comment", schema: `{"$comment":"c","type":"string"}`},
	{keyword: "$defs", schema: `{"$defs":{"n":{"type":"number"}},"type":"string"}`},
	// applicator
	{keyword: "prefixItems", schema: `{"prefixItems":[{"type":"string"}]}`, routes: true},
	{keyword: "items", schema: `{"type":"array","items":{"type":"string"}}`},
	{keyword: "items", schema: `{"type":"array","items":{"type":"string"}}`, draft: draft7},
	{keyword: "items", schema: `{"items":[{"type":"string"}]}`, draft: draft7, routes: true}, // the tuple form
	{keyword: "contains", schema: `{"contains":{"type":"string"}}`, routes: true},
	{keyword: "additionalProperties", schema: `{"properties":{"a":true},"additionalProperties":{"type":"string"}}`},
	{keyword: "additionalProperties", schema: `{"type":"object","properties":{"a":true},"additionalProperties":false}`},
	{keyword: "properties", schema: `{"properties":{"a":{"type":"string"}}}`},
	{keyword: "patternProperties", schema: `{"patternProperties":{"^a":{"type":"string"}}}`, routes: true},
	{keyword: "dependentSchemas", schema: `{"dependentSchemas":{"a":{"required":["b"]}}}`, routes: true},
	{keyword: "propertyNames", schema: `{"propertyNames":{"maxLength":1}}`, routes: true},
	{keyword: "if", schema: `{"if":{"type":"string"},"then":{"maxLength":1},"else":{"type":"number"}}`, routes: true},
	{keyword: "then", schema: `{"then":{"maxLength":1}}`, routes: true},
	{keyword: "else", schema: `{"else":{"maxLength":1}}`, routes: true},
	{keyword: "allOf", schema: `{"allOf":[{"type":"string"},{"maxLength":2}]}`},
	{keyword: "anyOf", schema: `{"anyOf":[{"type":"string"},{"type":"null"}]}`},
	{keyword: "oneOf", schema: `{"oneOf":[{"type":"string"},{"maxLength":2}]}`, routes: true},
	{keyword: "not", schema: `{"not":{"type":"string"}}`, routes: true},
	// unevaluated
	{keyword: "unevaluatedItems", schema: `{"unevaluatedItems":false}`, routes: true},
	{keyword: "unevaluatedProperties", schema: `{"unevaluatedProperties":false}`, routes: true},
	// validation
	{keyword: "type", schema: `{"type":["string","null"]}`},
	{keyword: "const", schema: `{"const":"a"}`},
	{keyword: "const", schema: `{"const":1}`, routes: true}, // only string constants are implemented
	{keyword: "enum", schema: `{"enum":["a",""]}`},
	{keyword: "enum", schema: `{"enum":["a",null]}`, routes: true},
	{keyword: "multipleOf", schema: `{"multipleOf":0.5}`},
	{keyword: "maximum", schema: `{"maximum":2.5}`},
	{keyword: "exclusiveMaximum", schema: `{"exclusiveMaximum":2.5}`},
	{keyword: "exclusiveMaximum", schema: `{"maximum":2.5,"exclusiveMaximum":true}`, draft: "http://json-schema.org/draft-04/schema#"},
	{keyword: "minimum", schema: `{"minimum":0}`},
	{keyword: "exclusiveMinimum", schema: `{"exclusiveMinimum":-1}`},
	{keyword: "maxLength", schema: `{"maxLength":1}`},
	{keyword: "minLength", schema: `{"minLength":2}`},
	{keyword: "pattern", schema: `{"pattern":"^a"}`},
	{keyword: "maxItems", schema: `{"maxItems":1}`},
	{keyword: "minItems", schema: `{"minItems":1}`},
	{keyword: "uniqueItems", schema: `{"uniqueItems":true}`, routes: true},
	{keyword: "maxContains", schema: `{"contains":{"type":"string"},"maxContains":1}`, routes: true},
	{keyword: "maxContains", schema: `{"maxContains":1}`, routes: true},
	{keyword: "minContains", schema: `{"contains":{"type":"string"},"minContains":2}`, routes: true},
	{keyword: "minContains", schema: `{"minContains":2}`, routes: true},
	{keyword: "maxProperties", schema: `{"maxProperties":1}`},
	{keyword: "minProperties", schema: `{"minProperties":1}`},
	{keyword: "required", schema: `{"required":["a"]}`},
	{keyword: "dependentRequired", schema: `{"dependentRequired":{"a":["b"]}}`, routes: true},
	// meta-data
	{keyword: "title", schema: `{"title":"t","type":"string"}`},
	{keyword: "description", schema: `{"description":"d","type":"string"}`},
	{keyword: "default", schema: `{"default":1,"type":"string"}`},
	{keyword: "deprecated", schema: `{"deprecated":true,"type":"string"}`},
	{keyword: "readOnly", schema: `{"readOnly":true,"type":"string"}`},
	{keyword: "writeOnly", schema: `{"writeOnly":true,"type":"string"}`},
	{keyword: "examples", schema: `{"examples":[1],"type":"string"}`},
	// format-annotation (asserted: the compiler has AssertFormat)
	{keyword: "format", schema: `{"format":"date"}`, routes: true},
	{keyword: "format", schema: `{"format":"no-such-format"}`, routes: true},
	// content
	{keyword: "contentEncoding", schema: `{"contentEncoding":"base64"}`, routes: true},
	{keyword: "contentMediaType", schema: `{"contentMediaType":"application/json"}`, routes: true},
	{keyword: "contentSchema", schema: `{"contentMediaType":"application/json","contentSchema":{"type":"object"}}`, routes: true},
	// older drafts
	{keyword: "definitions", schema: `{"definitions":{"s":{"type":"string"}},"$ref":"#/definitions/s"}`, draft: draft7},
	{keyword: "definitions", schema: `{"definitions":{"s":{"type":"string"}},"$ref":"#/definitions/s"}`},
	{keyword: "dependencies", schema: `{"dependencies":{"a":["b"]}}`, draft: draft7, routes: true},
	{keyword: "dependencies", schema: `{"dependencies":{"a":{"required":["b"]}}}`, draft: draft7, routes: true},
	{keyword: "additionalItems", schema: `{"items":[{"type":"string"}],"additionalItems":false}`, draft: draft7, routes: true},
	{keyword: "additionalItems", schema: `{"items":{"type":"string"},"additionalItems":false}`, draft: draft7, routes: true},
	{keyword: "$recursiveRef", schema: `{"$recursiveAnchor":true,"properties":{"a":{"$recursiveRef":"#"}}}`, draft: draft2019, routes: true},
	{keyword: "$recursiveAnchor", schema: `{"$recursiveAnchor":true,"type":"string"}`, draft: draft2019, routes: true},
	{keyword: "$ref", schema: `{"$ref":"#/definitions/s","maxLength":1,"definitions":{"s":{"type":"string"}}}`, draft: draft7},
	// no vocabulary's
	{keyword: "x-extension", schema: `{"x-extension":1,"type":"string"}`, routes: true},
	{keyword: "maxlength", schema: `{"maxlength":1,"type":"string"}`, routes: true},
	{keyword: "nullable", schema: `{"nullable":true,"type":"string"}`, routes: true},
}

// keywordInstances are tried on every case; each case that gets a fast
// check must accept some and refuse some of them, as jsonschema decides.
var keywordInstances = []string{
	`"a"`, `"ab"`, `"abc"`, `""`, `"b"`, `"2026-01-01"`, `"aGVsbG8="`, `"{}"`,
	`0`, `1`, `-1`, `2`, `2.5`, `3`, `1.0`, `-0.5`, `0.25`, `1e1`,
	`null`, `true`, `false`,
	`[]`, `["a"]`, `[1]`, `["a","a"]`, `["a",1]`, `["a","b","c"]`,
	`{}`, `{"a":1}`, `{"a":"x"}`, `{"b":1}`, `{"b":"x"}`, `{"a":"x","b":"y"}`, `{"a":{"a":"x"}}`, `{"a":{"a":1}}`,
}

// metaSchema is a meta-schema of its own: a schema naming it gets no fast
// check, whatever vocabularies it lists.
const metaSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"mem://schemas/meta.json",
	"$vocabulary":{"https://json-schema.org/draft/2020-12/vocab/core":true,"https://json-schema.org/draft/2020-12/vocab/validation":true}}`

// TestFastSchemaKeywords: every keyword is either implemented by the fast
// check, which then agrees with jsonschema on accepted and refused
// instances, or sends the schema to jsonschema, both at the root and
// nested in a property.
func TestFastSchemaKeywords(t *testing.T) {
	fsys := fstest.MapFS{"meta.json": {Data: []byte(metaSchema)}}
	for i, c := range keywordCases {
		var root, obj map[string]any
		// Nested, the case's pointers start at its place.
		inner := strings.ReplaceAll(c.schema, `"#/`, `"#/properties/a/`)
		if json.Unmarshal([]byte(c.schema), &root) != nil || json.Unmarshal([]byte(inner), &obj) != nil {
			t.Fatalf("%s: not JSON", c.schema)
		}
		nested := map[string]any{"type": "object", "properties": map[string]any{"a": obj}}
		if c.draft != "" {
			root["$schema"], nested["$schema"] = c.draft, c.draft
		}
		for _, s := range []struct {
			kind string
			doc  map[string]any
		}{{"root", root}, {"nested", nested}} {
			b, _ := json.Marshal(s.doc)
			fsys[keywordPath(i, s.kind)] = &fstest.MapFile{Data: b}
		}
	}
	ss, err := newSchemaSet(fsys)
	if err != nil {
		t.Fatal(err)
	}
	implemented := map[string]bool{}
	for i, c := range keywordCases {
		if !c.routes && !fastKeywords[c.keyword] {
			t.Errorf("%s: a case the fast check implements, but %q is not in fastKeywords", c.schema, c.keyword)
		}
		for _, kind := range []string{"root", "nested"} {
			name := c.keyword + " " + kind + " " + c.schema + " " + c.draft
			full, err := ss.compile(keywordPath(i, kind))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			s := ss.checked(full)
			if c.routes {
				if s.fast != nil {
					t.Errorf("%s: got a fast check; jsonschema must decide", name)
				}
				continue
			}
			if s.fast == nil {
				t.Errorf("%s: got no fast check", name)
				continue
			}
			implemented[c.keyword] = true
			accepted, refused := 0, 0
			for _, text := range keywordInstances {
				v := jsonNumber(text)
				if kind == "nested" {
					v = map[string]any{"a": v}
				}
				valid := len(schemaErrors(s.full, v, "")) == 0
				if fast := s.fast.valid(v, 0); fast != valid {
					t.Errorf("%s: %s: fast check says %v, jsonschema %v", name, text, fast, valid)
				}
				if valid {
					accepted++
				} else {
					refused++
				}
			}
			if accepted == 0 || refused == 0 {
				t.Errorf("%s: jsonschema accepts %d and refuses %d of the instances; the case proves little", name, accepted, refused)
			}
		}
	}
	for k := range fastKeywords {
		if !implemented[k] {
			t.Errorf("%q is in fastKeywords but no case shows the fast check implementing it", k)
		}
	}
}

func keywordPath(i int, kind string) string {
	return fmt.Sprintf("case%03d-%s.json", i, kind)
}
