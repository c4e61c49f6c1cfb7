package jsonstruct_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/jsonstruct"
)

type hidden struct {
	ID      string    `json:"-"`
	At      time.Time `json:"-"`
	private int
}

type marker struct{}

type color string

type model struct {
	marker
	hidden
	Title    string   `json:"title"`
	Count    int8     `json:"count"`
	N        int      `json:"n,omitempty"`
	U        uint16   `json:"u"`
	F32      float32  `json:"f32"`
	F        float64  `json:"f"`
	B        bool     `json:"b"`
	Tags     []string `json:"tags"`
	Nums     []int32  `json:"nums"`
	Color    color    `json:"color"`
	Untagged string
	Opt      []string `json:"opt,omitempty"`
	OF       float64  `json:"of,omitempty"`
	OB       bool     `json:",omitempty"`
	HTML     string   `json:"<h&>"`
	Skipped  string   `json:"-"`
	Dash     string   `json:"-,"`
	private  string
}

func TestForRefusesWhatItCannotMatch(t *testing.T) {
	type withTime struct {
		At time.Time `json:"at"`
	}
	type withBytes struct {
		B []byte `json:"b"`
	}
	type withMap struct {
		M map[string]any `json:"m"`
	}
	type withPtr struct {
		P *string `json:"p"`
	}
	type withStringOpt struct {
		N int `json:"n,string"`
	}
	// Two fields with one JSON name, built at run time (vet refuses the
	// literal).
	dup := reflect.New(reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
		{Name: "B", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
	})).Elem().Interface()
	type leaky struct {
		Title string `json:"title"`
	}
	type embedsLeaky struct {
		leaky
	}
	type namedEmbed struct {
		hidden `json:"h"`
	}
	type ptrEmbed struct {
		*hidden
	}
	type nested struct {
		Inner struct{ A string } `json:"inner"`
	}
	for _, v := range []any{withTime{}, withBytes{}, withMap{}, withPtr{}, withStringOpt{}, dup,
		embedsLeaky{}, namedEmbed{}, ptrEmbed{}, nested{}, custom{}, struct{ T textual }{}, 3} {
		if jsonstruct.For(reflect.TypeOf(v)) != nil {
			t.Errorf("%T got a plan", v)
		}
	}
	if jsonstruct.For(reflect.TypeFor[model]()) == nil {
		t.Fatal("the test model got no plan")
	}
}

type custom struct{ A string }

func (c *custom) UnmarshalJSON([]byte) error { return nil }

type textual string

func (t *textual) UnmarshalText([]byte) error { return nil }

// TestFillMatchesEncodingJSON: on random objects, Fill succeeds exactly
// when encoding/json decodes the object's text without error (keys that
// match only by case aside), and then fills the same struct.
func TestFillMatchesEncodingJSON(t *testing.T) {
	plan := jsonstruct.For(reflect.TypeFor[model]())
	rng := rand.New(rand.NewPCG(5, 6))
	filled := 0
	for range 50000 {
		obj := randomObject(rng)
		text, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		var want model
		wantErr := json.Unmarshal(text, &want)
		var got model
		ok := plan.Fill(&got, obj)
		switch {
		case ok && wantErr != nil:
			t.Fatalf("%s: filled, encoding/json says %v", text, wantErr)
		case ok && !reflect.DeepEqual(got, want):
			t.Fatalf("%s:\nfilled   %+v\njson has %+v", text, got, want)
		case !ok && wantErr == nil && !hasFoldedKey(obj):
			t.Fatalf("%s: not filled, encoding/json decodes it", text)
		}
		if ok {
			filled++
		}
	}
	if filled < 5000 {
		t.Fatalf("only %d of 50000 objects filled; the generator misses the valid side", filled)
	}
}

func TestFillRefusesAnotherType(t *testing.T) {
	plan := jsonstruct.For(reflect.TypeFor[model]())
	var other struct{ Title string }
	if plan.Fill(&other, map[string]any{"title": "x"}) || plan.Fill(model{}, nil) {
		t.Fatal("filled a value of another type")
	}
}

var exactKeys = []string{"title", "count", "n", "u", "f32", "f", "b", "tags", "nums", "color", "Untagged", "opt", "of", "OB", "<h&>", "Skipped", "-", "private", "ID", "hidden", "marker"}

const fieldKeys = 15 // exactKeys[:fieldKeys] are the model's JSON names

func hasFoldedKey(obj map[string]any) bool {
	for k := range obj {
		exact := false
		for _, e := range exactKeys {
			exact = exact || k == e
		}
		if exact {
			continue
		}
		for _, e := range exactKeys[:fieldKeys] {
			if strings.EqualFold(k, e) {
				return true
			}
		}
	}
	return false
}

func randomObject(rng *rand.Rand) map[string]any {
	keys := append([]string{"Title", "TITLE", "untagged", "other", "Count", "ſkipped"}, exactKeys...)
	obj := map[string]any{}
	for range rng.IntN(6) {
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(3) > 0 {
			k = exactKeys[rng.IntN(fieldKeys)]
		}
		obj[k] = randomValue(rng, 0)
	}
	return obj
}

func randomValue(rng *rand.Rand, depth int) any {
	nums := []string{"0", "-0", "1", "-1", "127", "128", "-128", "-129", "65535", "65536", "1.5", "1e2", "1E-2",
		"3.4028235e38", "3.5e38", "1e400", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "0.1", "2"}
	switch k := rng.IntN(7); {
	case k == 0:
		return nil
	case k == 1:
		return rng.IntN(2) == 0
	case k == 2 || k == 3:
		return json.Number(nums[rng.IntN(len(nums))])
	case k == 4:
		return fmt.Sprint([]string{"", "x", "é", "a\"b", "\u2028"}[rng.IntN(5)])
	case k == 5 && depth < 2:
		arr := make([]any, rng.IntN(4))
		for i := range arr {
			if rng.IntN(3) == 0 {
				arr[i] = randomValue(rng, depth+1)
			} else if rng.IntN(2) == 0 {
				arr[i] = "s"
			} else {
				arr[i] = json.Number(nums[rng.IntN(len(nums))])
			}
		}
		return arr
	case depth < 2:
		return map[string]any{"a": randomValue(rng, depth+1)}
	}
	return "leaf"
}

func ExamplePlan_Fill() {
	type Note struct {
		Title string   `json:"title"`
		Tags  []string `json:"tags"`
	}
	plan := jsonstruct.For(reflect.TypeFor[Note]())
	var n Note
	ok := plan.Fill(&n, map[string]any{"title": "Milk", "tags": []any{"shop"}, "extra": 1})
	fmt.Println(ok, n.Title, n.Tags)
	// Output: true Milk [shop]
}

// TestAppendMatchesEncodingJSON: Append writes what json.Marshal writes,
// for filled values and for float edges.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	plan := jsonstruct.For(reflect.TypeFor[model]())
	rng := rand.New(rand.NewPCG(9, 10))
	floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 1e20, 1e21, 123456789e13, 1e-6, 9.99e-7, 1e-7, 3.4e38, 5e-324, math.MaxFloat64, 0.1, 1.0 / 3}
	check := func(m *model) {
		t.Helper()
		want, werr := json.Marshal(m)
		got, ok := plan.Append(nil, m)
		if ok != (werr == nil) || ok && string(got) != string(want) {
			t.Fatalf("%+v:\nAppend       %s (%v)\njson.Marshal %s (%v)", m, got, ok, want, werr)
		}
	}
	for range 20000 {
		var m model
		if !plan.Fill(&m, randomObject(rng)) {
			continue
		}
		if rng.IntN(2) == 0 {
			m.F, m.OF, m.F32 = floats[rng.IntN(len(floats))], floats[rng.IntN(len(floats))], float32(floats[rng.IntN(len(floats))])
			m.Opt, m.OB, m.HTML = []string{"<", "\u2028\u2029", "\xff"}[:rng.IntN(3)], rng.IntN(2) == 0, "a<b>&\u2028"
			if rng.IntN(5) == 0 {
				m.Opt = []string{}
			}
		}
		check(&m)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		check(&model{F: f})
	}
	if _, ok := plan.Append(nil, model{}); ok {
		t.Error("appended a struct that is not a pointer")
	}
	type zeroed struct {
		A string `json:"a,omitzero"`
	}
	type marshals struct {
		T time.Time `json:"-"`
		C shout     `json:"c"`
	}
	for _, v := range []any{&zeroed{}, &marshals{}, &selfMarshal{}} {
		p := jsonstruct.For(reflect.TypeOf(v).Elem())
		if p == nil {
			t.Fatalf("%T: no plan", v)
		}
		if _, ok := p.Append(nil, v); ok {
			t.Errorf("%T was appended; encoding/json does it differently", v)
		}
	}
}

type shout string

func (s shout) MarshalJSON() ([]byte, error) { return json.Marshal(strings.ToUpper(string(s))) }

type selfMarshal struct {
	A string `json:"a"`
}

func (selfMarshal) MarshalJSON() ([]byte, error) { return []byte(`"self"`), nil }
