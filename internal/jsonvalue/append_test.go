package jsonvalue_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f", "\u2028\u2029", "\xff\xfe", "é日本", "<a&b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := jsonvalue.AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}

// TestAppendMatchesEncodingJSON: Append writes parsed values exactly as
// json.Marshal does: sorted keys, the same escapes, numbers as written.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	odd := []string{`"o\"\\\n\t\u0001\u2028é\ufffd<&>"`, `{"é":1.5E+300,"<k>":[],"":null,"b":{"a":1}}`, `-0.5e-7`, `[null,true,false]`, `{}`}
	for i := range 20000 {
		text := randomValue(rng, 0)
		if i%4 == 0 {
			text = `{"odd":` + odd[rng.IntN(len(odd))] + `,"v":` + text + `}`
		}
		v, ok := jsonvalue.Parse([]byte(text))
		if !ok {
			t.Fatalf("%s did not parse", text)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonvalue.Append(nil, v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s:\ngot  %s (%v)\nwant %s", text, got, err, want)
		}
	}
	if got, _ := jsonvalue.Append(nil, json.Number("")); string(got) != "0" {
		t.Errorf("empty number: %s, json.Marshal says 0", got)
	}
	for _, bad := range []any{json.Number("01"), json.Number("1."), json.Number("+1"), json.Number("1e"), json.Number("NaN"), math.NaN(), make(chan int)} {
		if got, err := jsonvalue.Append(nil, []any{bad}); err == nil {
			t.Errorf("%#v was encoded as %s; json.Marshal refuses it", bad, got)
		}
	}
}
