// Package jsonfill fills a struct from an already decoded JSON object
// (map[string]any, numbers as json.Number) exactly as encoding/json would
// fill it from the object's text, for the plain structs sync models are.
//
// A push decodes each change's data once, for its JSON Schema; filling the
// typed model from that value skips encoding/json parsing the same bytes
// again, which cost more than the rest of the model's checks together.
// Anything this package is not sure to do exactly as encoding/json does
// makes For return nil or Fill return false, and the caller decodes the
// text with encoding/json instead.
package jsonfill

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// A Plan fills one struct type.
type Plan struct {
	typ    reflect.Type
	fields map[string]field // by JSON name
	names  []string
}

type field struct {
	index int
	typ   reflect.Type
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// For returns the plan for struct type t, or nil when t has anything the
// plan does not handle exactly as encoding/json: a custom unmarshaler, an
// embedded struct with JSON fields, a ",string" option, a name two fields
// share, or a field that is not a string, bool, number or a slice of them.
func For(t reflect.Type) *Plan {
	if t.Kind() != reflect.Struct || customDecoding(t) {
		return nil
	}
	p := &Plan{typ: t, fields: map[string]field{}}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, tagged := f.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer || tagged && tag != "" && !strings.HasPrefix(tag, ",") {
				return nil // a named embedded struct is a field of its own
			}
			if ft.Kind() == reflect.Struct && !noJSONFields(ft) {
				return nil
			}
			if ft.Kind() != reflect.Struct && f.IsExported() {
				return nil
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts != "" && hasOption(opts, "string") {
			return nil
		}
		if !tagged || name == "" {
			name = f.Name
		} else if !validName(name) {
			return nil
		}
		if !fillable(f.Type) {
			return nil
		}
		if _, dup := p.fields[name]; dup {
			return nil
		}
		p.fields[name] = field{index: i, typ: f.Type}
		p.names = append(p.names, name)
	}
	return p
}

// Fill sets the fields of dst, a pointer to the plan's zero struct, from
// obj. It returns false, leaving dst in an unspecified state, whenever
// encoding/json would report an error or might decide differently (a key
// that matches a field only by case, since the object no longer tells
// which of two such keys came last).
func (p *Plan) Fill(dst any, obj map[string]any) bool {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Type() != p.typ {
		return false
	}
	rv = rv.Elem()
	for key, val := range obj {
		f, ok := p.fields[key]
		if !ok {
			if p.foldedMatch(key) {
				return false
			}
			continue // encoding/json ignores unknown keys
		}
		if !set(rv.Field(f.index), val) {
			return false
		}
	}
	return true
}

func (p *Plan) foldedMatch(key string) bool {
	for _, name := range p.names {
		if strings.EqualFold(name, key) {
			return true
		}
	}
	return false
}

// set stores a decoded JSON value in v, which holds its zero value.
func set(v reflect.Value, val any) bool {
	if val == nil {
		return true // null leaves a zero value (and a nil slice) as it is
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if ok {
			v.SetString(s)
		}
		return ok
	case reflect.Bool:
		b, ok := val.(bool)
		if ok {
			v.SetBool(b)
		}
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		num, ok := val.(json.Number)
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		num, ok := val.(json.Number)
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil || v.OverflowUint(n) {
			return false
		}
		v.SetUint(n)
		return true
	case reflect.Float32, reflect.Float64:
		num, ok := val.(json.Number)
		if !ok {
			return false
		}
		n, err := strconv.ParseFloat(string(num), v.Type().Bits())
		if err != nil || v.OverflowFloat(n) {
			return false
		}
		v.SetFloat(n)
		return true
	case reflect.Slice:
		items, ok := val.([]any)
		if !ok {
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			if !set(s.Index(i), item) {
				return false
			}
		}
		v.Set(s)
		return true
	}
	return false
}

// fillable: scalars and slices of scalars, with no custom decoding. A
// []byte is base64 in JSON, so it is not one of them.
func fillable(t reflect.Type) bool {
	if customDecoding(t) {
		return false
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Slice:
		e := t.Elem()
		return e.Kind() != reflect.Uint8 && e.Kind() != reflect.Slice && fillable(e)
	}
	return false
}

func customDecoding(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
		pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler)
}

// noJSONFields reports whether an embedded struct adds nothing to the
// JSON form: each exported field is tagged "-", and embedded structs
// within it add nothing either.
func noJSONFields(t reflect.Type) bool {
	if customDecoding(t) {
		return false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("json") == "-" {
			continue
		}
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				return false
			}
			if ft.Kind() == reflect.Struct {
				if !noJSONFields(ft) {
					return false
				}
				continue
			}
		}
		if f.IsExported() {
			return false
		}
	}
	return true
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// validName is a stricter form of encoding/json's test of a tag name (it
// uses the Go field name instead of an invalid one, which this package
// does not follow): ASCII only.
func validName(s string) bool {
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default: // encoding/json also allows letters of any script

			return false
		}
	}
	return true
}
