package jsonbench

import (
	stdjson "encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	segjson "github.com/segmentio/encoding/json"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// tricky are texts where decoders are known to part ways (from
// internal/jsonvalue's own differential test).
var tricky = []string{
	`{}`, `[]`, ` {"a" : [ 1 , -0 , 0.5e+3 , 1E-2, true, false, null ] } `, `"x"`, `0`, `-0.0`, `1e400`,
	`{"a":1,"a":2}`, `{"":""}`, `[[[[]]]]`, `"\u00e9\uD83D\uDE00\"\\\/\b\f\n\r\t"`, `"\uD83D"`, `"\uD83Dx"`,
	`"\uDE00\uD83D"`, `"\uD83D\u0041"`, "\"\xff\xfe\"", "\"a\xc3\"", "\"é日本\"", `"\u0000"`,
	`01`, `1.`, `.5`, `-`, `+1`, `1e`, `1e+`, `--1`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `[1 2]`, `tru`, `nul`,
	`"a`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"tab\there\"", `{"a":1}x`, `{"a":1} {"b":2}`, ``, ` `, `[`, `{`, `{"a":`,
	`"\ud800\udc00"`, `"\\u"`, "\"\u2028\"", `[1e999999999]`, `{"a":[{"b":{"c":[null]}}]}`,
	"\"\x00\"", "\"\x1f\"", "\"\x7f\"", `{"a":1,"A":2}`, `123456789012345678901234567890`, `-0`, `1E+2`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
}

func randomValue(rng *rand.Rand, depth int) string {
	switch k := rng.IntN(8); {
	case k == 0:
		return "null"
	case k == 1:
		return "true"
	case k == 2:
		return []string{"0", "-12", "3.25", "1e5", "-0.5E-3", "12345678901234567890"}[rng.IntN(6)]
	case k < 5:
		return []string{`""`, `"plain"`, `"é\n"`, `"\u00e9"`, `"\ud83d\ude00"`, `"a\"b"`, `"<&>"`, "\"\u2028\""}[rng.IntN(8)]
	case k == 5 && depth < 3:
		parts := make([]string, rng.IntN(4))
		for i := range parts {
			parts[i] = randomValue(rng, depth+1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case depth < 3:
		parts := make([]string, rng.IntN(4))
		for i := range parts {
			parts[i] = fmt.Sprintf(`"k%d" : %s`, rng.IntN(3), randomValue(rng, depth+1))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return `"leaf"`
}

// corpus is tricky plus mutated random values, as jsonvalue's test makes
// them.
func corpus(n int) [][]byte {
	var out [][]byte
	for _, s := range tricky {
		out = append(out, []byte(s))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte(`{}[]":,\u0123456789abcdefABCDEF-+.eEtrunlsx ` + "\t\n\xff\xc3\x00")
	for range n {
		text := []byte(tricky[rng.IntN(len(tricky)-2)])
		if rng.IntN(2) == 0 {
			text = []byte(randomValue(rng, 0))
		}
		for range rng.IntN(3) {
			if len(text) == 0 {
				break
			}
			switch i := rng.IntN(len(text)); rng.IntN(3) {
			case 0:
				text[i] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				text = text[:i]
			default:
				text = append(text[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, text[i:]...)...)
			}
		}
		out = append(out, text)
	}
	return out
}

// TestLibraryDifferences reports, for each decoder and encoder, the
// texts on which it parts from encoding/json: accepting what it refuses,
// refusing what it accepts, or decoding another value. Run with -v; it
// fails only if jsonvalue differs (its own tests say so too).
func TestLibraryDifferences(t *testing.T) {
	if os.Getenv("FERRY_JSONBENCH") == "" {
		t.Skip("set FERRY_JSONBENCH=1 to probe the libraries")
	}
	texts := corpus(100_000)
	for _, d := range decoders {
		kinds := map[string][]string{}
		decode := d.decode
		if d.name == "jsonvalue" { // without the body limits, which refuse deep texts
			decode = func(b []byte) (any, error) {
				v, ok := jsonvalue.Parse(b)
				if !ok {
					return nil, jsonvalue.ErrSyntax
				}
				return v, nil
			}
		}
		for _, text := range texts {
			want, werr := decodeStd(text)
			got, err := decode(text)
			var kind string
			switch {
			case (err == nil) != (werr == nil) && err == nil:
				kind = "accepts what encoding/json refuses"
			case (err == nil) != (werr == nil):
				kind = "refuses what encoding/json accepts"
			case err == nil && !reflect.DeepEqual(got, want):
				kind = "decodes another value"
			default:
				continue
			}
			kinds[kind] = append(kinds[kind], fmt.Sprintf("%.60q", text))
		}
		report(t, d.name+" (decode)", len(texts), kinds)
		if d.name == "jsonvalue" && len(kinds) > 0 {
			t.Error("jsonvalue differs from encoding/json")
		}
	}
	var values []any
	for _, text := range texts {
		if v, err := decodeStd(text); err == nil && len(text) < 5000 {
			values = append(values, v)
		}
	}
	values = append(values, "\xff", "a\u2028", "\x00<>&")
	for _, e := range encoders {
		kinds := map[string][]string{}
		for _, v := range values {
			want, _ := stdjson.Marshal(v)
			got, err := e.encode(v)
			if err != nil || string(got) != string(want) {
				kinds["writes another text"] = append(kinds["writes another text"], fmt.Sprintf("%.60q -> %.60q", want, got))
			}
		}
		report(t, e.name+" (encode)", len(values), kinds)
	}
}

func report(t *testing.T, name string, n int, kinds map[string][]string) {
	t.Helper()
	if len(kinds) == 0 {
		t.Logf("%s: agrees with encoding/json on all %d", name, n)
		return
	}
	var names []string
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ex := kinds[k]
		t.Logf("%s: %s on %d of %d, e.g. %s", name, k, len(ex), n, strings.Join(ex[:min(len(ex), 6)], "  "))
	}
}

// TestTypedDifferences: note objects with wrong types, case-folded and
// duplicate keys, nulls and odd numbers, decoded into a note by each
// library, against encoding/json (error or not, and the value).
func TestTypedDifferences(t *testing.T) {
	if os.Getenv("FERRY_JSONBENCH") == "" {
		t.Skip("set FERRY_JSONBENCH=1 to probe the libraries")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"title", "Title", "TITLE", "body", "tags", "Tags", "pinned", "other"}
	vals := []string{`"t"`, `""`, `null`, `1`, `1.5`, `true`, `[]`, `["a","b"]`, `["a",1]`, `[null]`, `{}`, `"\u00e9\ud800"`, "\"\xff\""}
	var texts [][]byte
	for range 50_000 {
		parts := make([]string, rng.IntN(5))
		for i := range parts {
			parts[i] = fmt.Sprintf("%q:%s", keys[rng.IntN(len(keys))], vals[rng.IntN(len(vals))])
		}
		texts = append(texts, []byte("{"+strings.Join(parts, ",")+"}"))
	}
	for _, lib := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{
		{"goccy", gojson.Unmarshal}, {"sonic ConfigStd", sonic.ConfigStd.Unmarshal}, {"segmentio", segjson.Unmarshal},
	} {
		kinds := map[string][]string{}
		for _, text := range texts {
			var want, got note
			werr := stdjson.Unmarshal(text, &want)
			err := lib.unmarshal(text, &got)
			switch {
			case (err == nil) != (werr == nil):
				kinds["errs differently"] = append(kinds["errs differently"], fmt.Sprintf("%.80s (%v / %v)", text, err, werr))
			case err == nil && !reflect.DeepEqual(got, want):
				kinds["fills another value"] = append(kinds["fills another value"], fmt.Sprintf("%.80s", text))
			}
		}
		report(t, lib.name+" (typed)", len(texts), kinds)
	}
}
