// Package jsonstruct fills the plain structs sync models are from an
// already decoded JSON object (map[string]any, numbers as json.Number),
// and encodes them, exactly as encoding/json would.
//
// A push decodes each change's data once, for its JSON Schema; filling the
// typed model from that value skips encoding/json parsing the same bytes
// again, and encoding it by a plan made once skips its reflection on
// every record. Anything this package is not sure to do exactly as
// encoding/json does makes For return nil, or Fill or Append return false,
// and the caller uses encoding/json instead. It is a leaf package, shared
// by models and framework.
package jsonstruct

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/framework/jsonvalue"
)

// A Plan fills and encodes one struct type.
type Plan struct {
	typ    reflect.Type
	fields map[string]field // by JSON name
	names  []string
	// encoded lists the fields in encoding/json's order; encodable is
	// false when encoding needs what the plan does not do (omitzero, a
	// custom marshaler).
	encoded   []encodedField
	encodable bool
}

type encodedField struct {
	index     int
	key       []byte // "name":
	omitEmpty bool
}

type field struct {
	index int
	typ   reflect.Type
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
)

// For returns the plan for struct type t, or nil when t has anything the
// plan does not handle exactly as encoding/json: a custom unmarshaler, an
// embedded struct with JSON fields, a ",string" option, a name two fields
// share, or a field that is not a string, bool, number or a slice of them.
func For(t reflect.Type) *Plan {
	if t.Kind() != reflect.Struct || customDecoding(t) {
		return nil
	}
	p := &Plan{typ: t, fields: map[string]field{}, encodable: !customEncoding(t)}
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
		if hasOption(opts, "string") {
			return nil
		}
		if hasOption(opts, "omitzero") || customEncoding(f.Type) || f.Type.Kind() == reflect.Slice && customEncoding(f.Type.Elem()) {
			p.encodable = false
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
		key := append(jsonvalue.AppendString(nil, name), ':')
		p.encoded = append(p.encoded, encodedField{index: i, key: key, omitEmpty: hasOption(opts, "omitempty")})
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

// Append appends v, a pointer to the plan's struct, as json.Marshal
// would. It returns false when it cannot (a plan that does not encode, a
// NaN or infinite float, which encoding/json refuses).
func (p *Plan) Append(b []byte, v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	if !p.encodable || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Type() != p.typ {
		return b, false
	}
	rv = rv.Elem()
	b = append(b, '{')
	first := true
	for _, f := range p.encoded {
		fv := rv.Field(f.index)
		if f.omitEmpty && isEmpty(fv) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.key...)
		var ok bool
		if b, ok = appendValue(b, fv); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice:
		return v.Len() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	}
	return v.IsZero()
}

func appendValue(b []byte, v reflect.Value) ([]byte, bool) {
	switch v.Kind() {
	case reflect.String:
		return jsonvalue.AppendString(b, v.String()), true
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, v.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return appendFloat(b, v.Float(), v.Type().Bits())
	case reflect.Slice:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, v.Index(i)); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}

// appendFloat is encoding/json's float format: like ES6, the shortest
// text, with an exponent only for very small or large magnitudes.
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
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

func customEncoding(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler)
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
