package jsonbench

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"io"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	segjson "github.com/segmentio/encoding/json"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// limits are the App's default body limits (App.BodyLimits).
var limits = jsonvalue.Limits{MaxDepth: 64, MaxElements: 10_000, MaxValues: 500_000}

var errTrailing = errors.New("data after the value")

// A decoder decodes one JSON text into an any, numbers as json.Number,
// as Ferry needs a push body.
type decoder struct {
	name   string
	decode func([]byte) (any, error)
}

var sonicNumber = sonic.Config{UseNumber: true, ValidateString: true}.Froze()

var decoders = []decoder{
	{"jsonvalue", func(b []byte) (any, error) { return jsonvalue.ParseWithin(b, limits) }},
	{"encoding-json", decodeStd},
	{"goccy", func(b []byte) (any, error) {
		dec := gojson.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.DecodeWithOption(&v, gojson.DecodeNoCopyString()); err != nil {
			return nil, err
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errTrailing
		}
		return v, nil
	}},
	{"sonic", func(b []byte) (any, error) {
		var v any
		if err := sonicNumber.UnmarshalFromString(string(b), &v); err != nil {
			return nil, err
		}
		return v, nil
	}},
	{"segmentio", func(b []byte) (any, error) {
		var v any
		rest, err := segjson.Parse(b, &v, segjson.UseNumber|segjson.ZeroCopy)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
			return nil, errTrailing
		}
		return v, nil
	}},
}

func decodeStd(b []byte) (any, error) {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return v, nil
}

// An encoder writes a decoded value as json.Marshal does (keys sorted,
// HTML escaped), as each change's data is written back to text.
type encoder struct {
	name   string
	encode func(any) ([]byte, error)
}

var encoders = []encoder{
	{"jsonvalue", func(v any) ([]byte, error) { return jsonvalue.Append(make([]byte, 0, 256), v) }},
	{"encoding-json", stdjson.Marshal},
	{"goccy", gojson.Marshal},
	{"sonic", sonic.ConfigStd.Marshal},
	{"segmentio", segjson.Marshal},
}
