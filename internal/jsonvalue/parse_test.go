package jsonvalue_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// decodeStd is what Ferry did before: encoding/json with UseNumber, one
// value, nothing after it.
func decodeStd(text []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}

func agree(t *testing.T, text []byte) {
	t.Helper()
	want, werr := decodeStd(text)
	got, ok := jsonvalue.Parse(text)
	if ok != (werr == nil) {
		t.Fatalf("%q: Parse ok=%v, encoding/json error %v", text, ok, werr)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nParse        %#v\nencoding/json %#v", text, got, want)
	}
}

var tricky = []string{
	`{}`, `[]`, ` {"a" : [ 1 , -0 , 0.5e+3 , 1E-2, true, false, null ] } `, `"x"`, `0`, `-0.0`, `1e400`,
	`{"a":1,"a":2}`, `{"":""}`, `[[[[]]]]`, `"\u00e9\uD83D\uDE00\"\\\/\b\f\n\r\t"`, `"\uD83D"`, `"\uD83Dx"`,
	`"\uDE00\uD83D"`, `"\uD83D\u0041"`, "\"\xff\xfe\"", "\"a\xc3\"", "\"é日本\"", `"\u0000"`,
	`01`, `1.`, `.5`, `-`, `+1`, `1e`, `1e+`, `--1`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `[1 2]`, `tru`, `nul`,
	`"a`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"tab\there\"", `{"a":1}x`, `{"a":1} {"b":2}`, ``, ` `, `[`, `{`, `{"a":`,
	`"\ud800\udc00"`, `"\\u"`, "\"\u2028\"", `[1e999999999]`, `{"a":[{"b":{"c":[null]}}]}`,
}

func TestParseMatchesEncodingJSON(t *testing.T) {
	for _, s := range tricky {
		agree(t, []byte(s))
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	agree(t, []byte(deep))
	agree(t, []byte(deep[1:len(deep)-1]))
	// Random texts: valid values with random bytes flipped, cut or inserted.
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte(`{}[]":,\u0123456789abcdefABCDEF-+.eEtrunlsx ` + "\t\n\xff\xc3\x00")
	for range 200000 {
		text := []byte(tricky[rng.IntN(len(tricky))])
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
		agree(t, text)
	}
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
		return []string{`""`, `"plain"`, `"é\n"`, `"\u00e9"`, `"\ud83d\ude00"`, `"a\"b"`}[rng.IntN(6)]
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

// FuzzParse: Parse accepts exactly what encoding/json accepts, with the
// same value.
func FuzzParse(f *testing.F) {
	for _, s := range tricky {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		agree(t, text)
	})
}

func BenchmarkParse(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"device_id":"bench","changes":[`)
	for i := range 500 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"model":"data.Note","uid":"w1b2n%d","modify_at":"2026-11-26T08:00:00.000000Z","data":{"title":"Note %d","body":"Lorem ipsum dolor sit amet, consectetur.","tags":["work","home"],"pinned":false}}`, i, i)
	}
	body.WriteString("]}")
	b.Run("jsonvalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := jsonvalue.Parse(body.Bytes()); !ok {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeStd(body.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
