// Package jsonvalue parses JSON into the values encoding/json decodes
// into an any with UseNumber (map[string]any, []any, string, json.Number,
// bool and nil) within limits, and writes such values and typed models
// back as encoding/json would.
//
// The parsing and the encoding are goccy/go-json's, which decodes and
// encodes exactly as encoding/json does on everything
// TestParseMatchesEncodingJSON, FuzzParse and the typed tests try, at
// about twice its speed. What Ferry adds is what no JSON library does:
// [ParseWithin] first checks the text against [Limits] (depth, elements
// of one array or object, values of the whole text) in one pass that
// builds nothing, so that a small hostile text cannot make a large value;
// and [AppendString], which the answer encoder needs to write its fields
// without reflection. docs/PERFORMANCE.md (round 6) has the measurements
// that chose this: a hand-written parser and struct filler were removed
// then, since the library came within 10 % end to end.
package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	gojson "github.com/goccy/go-json"
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Limits bound what [ParseWithin] may build from a text, so that a small
// hostile text cannot make a large value: parsed, a JSON value takes about
// 50 bytes of memory per scalar, twenty-five times its two bytes of text.
// A zero field is no limit (depth: encoding/json's 10,000).
type Limits struct {
	// MaxDepth caps the nesting of arrays and objects.
	MaxDepth int
	// MaxElements caps the elements of one array and the members of one
	// object (a repeated key counts each time).
	MaxElements int
	// MaxValues caps the values of the whole text: scalars, arrays and
	// objects, object keys not counted.
	MaxValues int
}

// LimitError is a text that went over one of its [Limits]. Nothing was
// built from it.
type LimitError struct {
	// Path is the JSON pointer of the array or object that went over
	// ("" for the whole text when MaxValues was reached).
	Path string
	// Limit names the limit: "depth", "elements" or "values".
	Limit string
	// Max is the limit's value.
	Max int
}

// Error implements error.
func (e *LimitError) Error() string {
	switch e.Limit {
	case "depth":
		return fmt.Sprintf("nested more than %d levels deep", e.Max)
	case "elements":
		return fmt.Sprintf("has more than %d elements", e.Max)
	default:
		return fmt.Sprintf("holds more than %d JSON values", e.Max)
	}
}

// ErrSyntax is returned by [ParseWithin] for a text that is not exactly
// one valid JSON value; encoding/json words the error.
var ErrSyntax = errors.New("jsonvalue: not a valid JSON text")

// Parse returns the value of a JSON text (surrounding whitespace allowed),
// or false when the text is not exactly one valid JSON value. Its strings
// share the text's memory.
func Parse(text []byte) (any, bool) {
	v, err := decode(text)
	return v, err == nil
}

// ParseWithin is [Parse] within limits. It returns a *[LimitError] for a
// text that goes over a limit, checked before anything is built (a text
// that goes over a limit is refused so even when it is not JSON after
// that place), and [ErrSyntax] for one that is not one JSON value.
func ParseWithin(text []byte, lim Limits) (any, error) {
	if err := CheckLimits(text, lim); err != nil {
		return nil, err
	}
	v, err := decode(text)
	if err != nil {
		return nil, ErrSyntax
	}
	return v, nil
}

// decode is goccy/go-json's decoding of exactly one value, numbers as
// json.Number, strings sharing text's memory.
func decode(text []byte) (any, error) {
	dec := gojson.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.DecodeWithOption(&v, gojson.DecodeNoCopyString()); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrSyntax
	}
	return v, nil
}

// Unmarshal decodes a JSON text into v as json.Unmarshal does, with
// goccy/go-json; when that fails it returns encoding/json's error, so
// that errors are worded (and typed: *json.UnmarshalTypeError, …) as
// encoding/json words them.
func Unmarshal(text []byte, v any) error {
	if err := gojson.Unmarshal(text, v); err != nil {
		return json.Unmarshal(text, v)
	}
	return nil
}

// Marshal encodes v as json.Marshal does, with goccy/go-json; on an error
// it returns encoding/json's.
func Marshal(v any) ([]byte, error) {
	b, err := gojson.Marshal(v)
	if err != nil {
		return json.Marshal(v)
	}
	return b, nil
}
