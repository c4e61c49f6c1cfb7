package jsonbench

import (
	stdjson "encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	segjson "github.com/segmentio/encoding/json"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

const (
	rounds = 15
	per    = 300 * time.Millisecond
)

// parseCandidates: the 500-change push body into an any.
func parseCandidates(t testing.TB) []candidate {
	body := pushBody500()
	var cands []candidate
	for _, d := range decoders {
		cands = append(cands, candidate{d.name, func() error { _, err := d.decode(body); return err }})
		if d.name != "jsonvalue" {
			cands = append(cands, candidate{d.name + "+CheckLimits", func() error {
				if err := jsonvalue.CheckLimits(body, limits); err != nil {
					return err
				}
				_, err := d.decode(body)
				return err
			}})
		}
	}
	return append(cands, candidate{"CheckLimits alone", func() error { return jsonvalue.CheckLimits(body, limits) }})
}

// pushData is the data object of every change of the push body, decoded.
func pushData(t testing.TB) []any {
	v, err := decodeStd(pushBody500())
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, ch := range v.(map[string]any)["changes"].([]any) {
		out = append(out, ch.(map[string]any)["data"])
	}
	return out
}

// encodeDataCandidates: each change's decoded data written back to text
// (decodeChange), for the 500 changes of a push.
func encodeDataCandidates(t testing.TB) []candidate {
	data := pushData(t)
	var cands []candidate
	for _, e := range encoders {
		want, _ := stdjson.Marshal(data)
		got, err := e.encode(data)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s differs from json.Marshal: %v\n%.300s\n%.300s", e.name, err, got, want)
		}
		cands = append(cands, candidate{e.name, func() error {
			for _, d := range data {
				if _, err := e.encode(d); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	return cands
}

// notes are the 250 data.Note objects of the push: decoded, as text, and
// as structs.
func notes(t testing.TB) (objs []map[string]any, texts [][]byte, structs []note) {
	for i, d := range pushData(t) {
		if i%2 != 0 {
			continue
		}
		obj := d.(map[string]any)
		text, _ := stdjson.Marshal(obj)
		var n note
		if err := stdjson.Unmarshal(text, &n); err != nil {
			t.Fatal(err)
		}
		objs, texts, structs = append(objs, obj), append(texts, text), append(structs, n)
	}
	return objs, texts, structs
}

var sonicStd = sonic.ConfigStd

// typedFillCandidates: filling 250 notes from the data's text, as the
// typed models' canonical step does (round 6 removed jsonstruct, which
// filled them from the decoded object).
func typedFillCandidates(t testing.TB) []candidate {
	objs, texts, structs := notes(t)
	check := func(name string, fill func(i int, n *note) error) candidate {
		var n note
		if err := fill(0, &n); err != nil || !reflect.DeepEqual(n, structs[0]) {
			t.Fatalf("%s: %v %+v", name, err, n)
		}
		return candidate{name, func() error {
			for i := range objs {
				var n note
				if err := fill(i, &n); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	return []candidate{
		check("jsonvalue.Unmarshal (goccy)", func(i int, n *note) error { return jsonvalue.Unmarshal(texts[i], n) }),
		check("encoding-json Unmarshal (text)", func(i int, n *note) error { return stdjson.Unmarshal(texts[i], n) }),
		check("goccy Unmarshal (text)", func(i int, n *note) error { return gojson.Unmarshal(texts[i], n) }),
		check("sonic ConfigStd Unmarshal (text)", func(i int, n *note) error { return sonicStd.Unmarshal(texts[i], n) }),
		check("segmentio Unmarshal (text)", func(i int, n *note) error { return segjson.Unmarshal(texts[i], n) }),
	}
}

// typedEncodeCandidates: encoding 250 notes (TypedTable.ToRecord, once
// per push and once per pulled record).
func typedEncodeCandidates(t testing.TB) []candidate {
	_, _, structs := notes(t)
	check := func(name string, enc func(n *note) ([]byte, error)) candidate {
		want, _ := stdjson.Marshal(&structs[0])
		if got, err := enc(&structs[0]); err != nil || string(got) != string(want) {
			t.Fatalf("%s: %v %s", name, err, got)
		}
		return candidate{name, func() error {
			for i := range structs {
				if _, err := enc(&structs[i]); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	return []candidate{
		check("jsonvalue.Marshal (goccy)", func(n *note) ([]byte, error) { return jsonvalue.Marshal(n) }),
		check("encoding-json", func(n *note) ([]byte, error) { return stdjson.Marshal(n) }),
		check("goccy", func(n *note) ([]byte, error) { return gojson.Marshal(n) }),
		check("sonic ConfigStd", func(n *note) ([]byte, error) { return sonicStd.Marshal(n) }),
		check("segmentio", func(n *note) ([]byte, error) { return segjson.Marshal(n) }),
	}
}

// The comparisons: interleaved (ratios, FERRY_JSONBENCH=1) and as Go
// benchmarks (allocations).

func TestCompareParse(t *testing.T) {
	interleave(t, "parse a 500-change push body", rounds, per, parseCandidates(t))
}

func TestCompareEncodeData(t *testing.T) {
	interleave(t, "encode the data of 500 changes (one call each)", rounds, per, encodeDataCandidates(t))
}

func TestCompareTypedFill(t *testing.T) {
	interleave(t, "fill 250 typed notes", rounds, per, typedFillCandidates(t))
}

func TestCompareTypedEncode(t *testing.T) {
	interleave(t, "encode 250 typed notes", rounds, per, typedEncodeCandidates(t))
}

func TestComparePullPage(t *testing.T) {
	interleave(t, "encode a 5000-record pull page", rounds, per, pullPageCandidates(t))
}

func BenchmarkParsePush500(b *testing.B)  { benchmark(b, parseCandidates(b)) }
func BenchmarkEncodeData500(b *testing.B) { benchmark(b, encodeDataCandidates(b)) }
func BenchmarkTypedFill250(b *testing.B)  { benchmark(b, typedFillCandidates(b)) }
func BenchmarkTypedEncode250(b *testing.B) {
	benchmark(b, typedEncodeCandidates(b))
}
func BenchmarkPullPage5000(b *testing.B) { benchmark(b, pullPageCandidates(b)) }

func benchmark(b *testing.B, cands []candidate) {
	for _, c := range cands {
		b.Run(strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(c.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
