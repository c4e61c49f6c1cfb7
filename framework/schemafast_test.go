package framework

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/schemas"
)

// fastTestSchemas covers every keyword the fast check implements, each
// with edges (exclusive bounds, integer-valued decimals, cycles, $ref with
// siblings); "unsupported/" ones must get no fast check.
var fastTestSchemas = fstest.MapFS{
	"numbers.json": {Data: []byte(`{"type":"object","properties":{
		"i":{"type":"integer","minimum":-3,"maximum":7},
		"n":{"type":["number","null"],"exclusiveMinimum":0,"exclusiveMaximum":2.5},
		"m":{"type":"number","multipleOf":0.5},
		"c":{"const":"x"}},"additionalProperties":{"type":"boolean"}}`)},
	"strings.json": {Data: []byte(`{"type":"object","required":["s"],"minProperties":1,"maxProperties":3,
		"properties":{"s":{"type":"string","minLength":2,"maxLength":4},
		"p":{"type":"string","pattern":"^a+b?$"},
		"e":{"enum":["red","green","日本"]}}}`)},
	"arrays.json": {Data: []byte(`{"type":["array","object"],"minItems":1,"maxItems":3,
		"items":{"anyOf":[{"type":"string","maxLength":1},{"type":"integer"}]},
		"properties":{"x":false,"y":true}}`)},
	"refs.json": {Data: []byte(`{"$defs":{"node":{"type":"object","additionalProperties":false,
		"properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},
		"allOf":[{"$ref":"#/$defs/node"},{"required":["v"]}],"$ref":"#/$defs/node","maxProperties":2}`)},
	"draft7.json": {Data: []byte(`{"$schema":"http://json-schema.org/draft-07/schema#",
		"type":"object","properties":{"a":{"type":"array","items":{"type":"boolean"}},
		"b":{"exclusiveMaximum":10,"minimum":1}}}`)},
	"unsupported/format.json":   {Data: []byte(`{"type":"string","format":"email"}`)},
	"unsupported/oneof.json":    {Data: []byte(`{"oneOf":[{"type":"string"},{"maxLength":2}]}`)},
	"unsupported/unique.json":   {Data: []byte(`{"type":"array","uniqueItems":true}`)},
	"unsupported/pattern.json":  {Data: []byte(`{"patternProperties":{"^x":{"type":"string"}}}`)},
	"unsupported/numenum.json":  {Data: []byte(`{"enum":[1,"a"]}`)},
	"unsupported/nested.json":   {Data: []byte(`{"properties":{"a":{"not":{"type":"null"}}}}`)},
	"unsupported/unevalua.json": {Data: []byte(`{"unevaluatedProperties":false}`)},
}

func compileTestSchemas(t testing.TB) map[string]checkedSchema {
	t.Helper()
	out := map[string]checkedSchema{}
	for _, set := range []struct {
		prefix string
		fsys   fstest.MapFS
		paths  []string
	}{
		{"", fastTestSchemas, nil},
		{"example:", nil, []string{"data/note.json", "data/task.json", "data/setting.json", "data/user.json"}},
		{"protocol:", nil, []string{"push.json"}},
	} {
		var ss *schemaSet
		var err error
		switch set.prefix {
		case "example:":
			ss, err = newSchemaSet(schemas.Examples)
		case "protocol:":
			ss, err = newSchemaSet(schemas.Protocol)
		default:
			ss, err = newSchemaSet(set.fsys)
			for path := range set.fsys {
				set.paths = append(set.paths, path)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range set.paths {
			full, err := ss.compile(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out[set.prefix+path] = ss.checked(full)
		}
	}
	return out
}

func TestFastSchemaCoverage(t *testing.T) {
	for name, s := range compileTestSchemas(t) {
		unsupported := strings.HasPrefix(name, "unsupported/") || name == "example:data/user.json"
		if got := s.fast == nil; got != unsupported {
			t.Errorf("%s: no fast check = %v, want %v", name, got, unsupported)
		}
	}
}

// TestFastSchemaAgreesWithJSONSchema: on random values the fast check says
// valid exactly when jsonschema does. Saying valid for invalid data would
// let it in; saying invalid for valid data would only cost time, but the
// keywords it implements should never need the slow path.
func TestFastSchemaAgreesWithJSONSchema(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 30000
	if testing.Short() {
		n = 3000
	}
	valid := map[string]int{}
	for name, s := range compileTestSchemas(t) {
		if s.fast == nil {
			continue
		}
		for i := range n {
			v := randomJSON(rng, 0)
			if i%2 == 1 {
				v = nearlyValid(rng)
			}
			fast := s.fast.valid(v, 0)
			errs := schemaErrors(s.full, v, "")
			if fast != (len(errs) == 0) {
				t.Fatalf("%s: %#v: fast check says %v, jsonschema says %v", name, v, fast, errs)
			}
			if fast {
				valid[name]++
			}
		}
	}
	// The generator must reach the valid side of each schema, or the
	// agreement above proves little.
	for name, s := range compileTestSchemas(t) {
		if s.fast != nil && valid[name] == 0 {
			t.Errorf("%s: no random value was valid; the generator misses it", name)
		}
	}
}

// validTemplates are valid for one test schema each; nearlyValid mutates
// them so the random values reach both sides of every schema.
var validTemplates = []string{
	`{"title":"Note","body":"b","tags":["a","b"],"pinned":true}`,
	`{"title":"Task","count":3,"done":false}`,
	`{"key":"k","value":[1,{"a":null}]}`,
	`{"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]}`,
	`{"s":"abc","p":"aab","e":"red"}`,
	`{"i":-3,"n":null,"m":1.5,"c":"x","z":true}`,
	`{"a":[true,false],"b":9.5}`,
	`{"device_id":"d","changes":[{"model":"m"}]}`,
}

func nearlyValid(rng *rand.Rand) any {
	v := jsonNumber(validTemplates[rng.IntN(len(validTemplates))])
	obj := v.(map[string]any)
	for range rng.IntN(3) {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		switch k := keys[rng.IntN(len(keys))]; rng.IntN(4) {
		case 0:
			delete(obj, k)
		case 1:
			if arr, ok := obj[k].([]any); ok && len(arr) > 0 {
				arr[rng.IntN(len(arr))] = randomJSON(rng, 2)
				continue
			}
			fallthrough
		default:
			obj[k] = randomJSON(rng, 2)
		}
	}
	return v
}

// randomJSON returns a decoded JSON value (numbers as json.Number) drawn
// around the test schemas' edges.
func randomJSON(rng *rand.Rand, depth int) any {
	keys := []string{"i", "n", "m", "c", "s", "p", "e", "x", "y", "v", "kids", "a", "b", "title", "body", "tags", "pinned", "count", "done", "key", "value", "changes", "device_id", "z"}
	strs := []string{"", "a", "ab", "aab", "abc", "abcde", "x", "red", "日本", "日本語x", "b", "Note"}
	nums := []string{"0", "-3", "-4", "7", "8", "2.5", "2.4999", "1.0", "1e1", "0.5", "1.5", "-0", "3", "1.25", "1E0", "2147483648", "-2147483648"}
	k := rng.IntN(8)
	if depth > 3 && k >= 6 {
		k = rng.IntN(6)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2, 3:
		return jsonNumber(nums[rng.IntN(len(nums))])
	case 4, 5:
		return strs[rng.IntN(len(strs))]
	case 6:
		arr := make([]any, rng.IntN(5))
		for i := range arr {
			arr[i] = randomJSON(rng, depth+1)
		}
		return arr
	default:
		obj := map[string]any{}
		for range rng.IntN(5) {
			obj[keys[rng.IntN(len(keys))]] = randomJSON(rng, depth+1)
		}
		return obj
	}
}

// FuzzFastSchema: the fast check never accepts what jsonschema refuses.
func FuzzFastSchema(f *testing.F) {
	for _, s := range []string{
		`{"i":7,"n":2.4999,"m":1.0,"c":"x","z":true}`, `{"s":"日本","p":"aab","e":"日本"}`,
		`[1,"a",2.0]`, `{"v":1,"kids":[{"v":2,"kids":[]}]}`, `{"a":[true],"b":1}`,
		`{"title":"t","tags":null,"pinned":false}`, `{"count":1e2,"title":"x"}`,
		`{"changes":[],"device_id":"d"}`, `{"key":"k","value":{"any":[1]}}`,
	} {
		f.Add(s)
	}
	all := compileTestSchemas(f)
	f.Fuzz(func(t *testing.T, body string) {
		var v any
		if decodeJSON(strings.NewReader(body), &v) != nil {
			return
		}
		for name, s := range all {
			if s.fast == nil || !s.fast.valid(v, 0) {
				continue
			}
			if errs := schemaErrors(s.full, v, ""); len(errs) > 0 {
				t.Fatalf("%s: fast check accepted %s, jsonschema says %v", name, body, errs)
			}
		}
	})
}

func jsonNumber(s string) any {
	var v any
	if err := decodeJSON(strings.NewReader(s), &v); err != nil {
		panic(strconv.Quote(s) + ": " + err.Error())
	}
	return v
}
