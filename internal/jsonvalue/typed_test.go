package jsonvalue_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// The typed models' decoding and encoding (models.TypedTable) are
// goccy/go-json's. These tests hold it to encoding/json on structs with
// the field kinds models have, and those they might have.

type hidden struct {
	ID      string    `json:"-"`
	At      time.Time `json:"-"`
	private int
}

type marker struct{}

type color string

type Inner struct {
	Deep string `json:"deep"`
}

type shout string

func (s shout) MarshalJSON() ([]byte, error) { return json.Marshal(strings.ToUpper(string(s))) }

func (s *shout) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = shout(strings.ToLower(v))
	return nil
}

type model struct {
	marker
	hidden
	*Inner
	Title    string            `json:"title"`
	Count    int8              `json:"count"`
	N        int               `json:"n,omitempty"`
	U        uint16            `json:"u"`
	F32      float32           `json:"f32"`
	F        float64           `json:"f"`
	B        bool              `json:"b"`
	Tags     []string          `json:"tags"`
	Nums     []int32           `json:"nums"`
	Color    color             `json:"color"`
	Untagged string            //nolint
	Opt      []string          `json:"opt,omitempty"`
	OF       float64           `json:"of,omitempty"`
	OB       bool              `json:",omitempty"`
	HTML     string            `json:"<h&>"`
	Skipped  string            `json:"-"`
	Dash     string            `json:"-,"`
	At       time.Time         `json:"at"`
	Bytes    []byte            `json:"bytes"`
	Map      map[string]any    `json:"map"`
	Ints     map[string]int    `json:"ints"`
	Ptr      *string           `json:"ptr"`
	Quoted   int               `json:"quoted,string"`
	Shout    shout             `json:"shout"`
	Any      any               `json:"any"`
	Zero     string            `json:"zero,omitzero"`
	Raw      json.RawMessage   `json:"raw"`
	Nested   struct{ A int }   `json:"nested"`
	Arr      [2]string         `json:"arr"`
	private  string            //nolint
	Lookup   map[int]string    `json:"lookup"`
	Shouts   []shout           `json:"shouts"`
	Times    map[string]string `json:"times"`
}

var exactKeys = []string{"title", "count", "n", "u", "f32", "f", "b", "tags", "nums", "color", "Untagged", "opt", "of", "OB",
	"<h&>", "-", "at", "bytes", "map", "ints", "ptr", "quoted", "shout", "any", "zero", "raw", "nested", "arr", "lookup",
	"shouts", "times", "deep", "Skipped", "private", "ID", "hidden", "marker", "Inner"}

func randomTypedObject(rng *rand.Rand) map[string]any {
	keys := append([]string{"Title", "TITLE", "untagged", "other", "Count", "ſkipped", "DEEP"}, exactKeys...)
	obj := map[string]any{}
	for range rng.IntN(7) {
		obj[keys[rng.IntN(len(keys))]] = randomTypedValue(rng, 0)
	}
	return obj
}

func randomTypedValue(rng *rand.Rand, depth int) any {
	nums := []string{"0", "-0", "1", "-1", "127", "128", "-128", "-129", "65535", "65536", "1.5", "1e2", "1E-2",
		"3.4028235e38", "3.5e38", "1e400", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "0.1", "2"}
	strs := []string{"", "x", "é", "a\"b", "\u2028", "2026-01-02T03:04:05Z", "2026-01-02", "aGk=", "a!", "12", "-3", " 1", "{}", "LOUD"}
	switch k := rng.IntN(8); {
	case k == 0:
		return nil
	case k == 1:
		return rng.IntN(2) == 0
	case k == 2 || k == 3:
		return json.Number(nums[rng.IntN(len(nums))])
	case k == 4 || k == 5:
		return strs[rng.IntN(len(strs))]
	case k == 6 && depth < 2:
		arr := make([]any, rng.IntN(4))
		for i := range arr {
			arr[i] = randomTypedValue(rng, depth+1)
		}
		return arr
	case depth < 2:
		obj := map[string]any{}
		for range rng.IntN(3) {
			obj[[]string{"a", "A", "1", "deep", "x"}[rng.IntN(5)]] = randomTypedValue(rng, depth+1)
		}
		return obj
	}
	return "leaf"
}

// TestUnmarshalMatchesEncodingJSON: on random objects goccy/go-json
// never decodes what encoding/json refuses, nor to another value; where
// it refuses what encoding/json decodes (a float32 at its largest value),
// Unmarshal asks encoding/json, so Unmarshal always answers as
// encoding/json does, errors worded alike.
func TestUnmarshalMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	decoded := 0
	refused := map[string]int{}
	for range 50_000 {
		text, err := json.Marshal(randomTypedObject(rng))
		if err != nil {
			t.Fatal(err)
		}
		var want, got, lib model
		wantErr := json.Unmarshal(text, &want)
		libErr := gojson.Unmarshal(text, &lib)
		if libErr == nil && wantErr != nil {
			t.Fatalf("%s: goccy decodes it, encoding/json says %v", text, wantErr)
		}
		if libErr != nil && wantErr == nil {
			refused[libErr.Error()]++
		}
		if libErr == nil && !reflect.DeepEqual(lib, want) {
			t.Fatalf("%s:\ngoccy         %+v\nencoding/json %+v", text, lib, want)
		}
		err = jsonvalue.Unmarshal(text, &got)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%s: Unmarshal says %v, encoding/json %v", text, err, wantErr)
		}
		if err == nil {
			decoded++
		}
	}
	if decoded < 5000 {
		t.Fatalf("only %d of 50000 objects decoded; the generator misses the valid side", decoded)
	}
	for msg, n := range refused {
		t.Logf("goccy refused %d objects encoding/json decodes (Unmarshal falls back): %s", n, msg)
	}
}

// TestMarshalMatchesEncodingJSON: Marshal writes what json.Marshal
// writes, for decoded values and for float and string edges.
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 1e20, 1e21, 123456789e13, 1e-6, 9.99e-7, 1e-7, 3.4e38, 5e-324, math.MaxFloat64, 0.1, 1.0 / 3}
	check := func(m *model) {
		t.Helper()
		want, werr := json.Marshal(m)
		got, err := jsonvalue.Marshal(m)
		if (err == nil) != (werr == nil) || err == nil && string(got) != string(want) {
			t.Fatalf("%+v:\nMarshal      %s (%v)\njson.Marshal %s (%v)", m, got, err, want, werr)
		}
		lib, lerr := gojson.Marshal(m)
		if (lerr == nil) != (werr == nil) || lerr == nil && string(lib) != string(want) {
			t.Fatalf("%+v:\ngoccy        %s (%v)\njson.Marshal %s (%v)", m, lib, lerr, want, werr)
		}
	}
	n := 0
	for range 50_000 {
		text, _ := json.Marshal(randomTypedObject(rng))
		var m model
		if json.Unmarshal(text, &m) != nil {
			continue
		}
		if rng.IntN(2) == 0 {
			m.F, m.OF, m.F32 = floats[rng.IntN(len(floats))], floats[rng.IntN(len(floats))], float32(floats[rng.IntN(len(floats))])
			m.Opt, m.OB, m.HTML = []string{"<", "\u2028\u2029", "\xff"}[:rng.IntN(3)], rng.IntN(2) == 0, "a<b>&\u2028\x00\x1f"
			m.At = time.Date(2026, 1, 2, 3, 4, 5, rng.IntN(1e9), time.FixedZone("", 3600*(rng.IntN(5)-2)))
			m.Zero = []string{"", "z"}[rng.IntN(2)]
			if rng.IntN(5) == 0 {
				m.Opt = []string{}
			}
		}
		check(&m)
		n++
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		check(&model{F: f})
	}
	if n < 5000 {
		t.Fatalf("only %d values encoded", n)
	}
}
