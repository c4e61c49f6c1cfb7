package framework

import (
	"encoding/json"
	"math/big"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// checkedSchema is a compiled JSON Schema with its fast check, if it has
// one.
type checkedSchema struct {
	full *jsonschema.Schema
	fast *fastSchema
}

// newCheckedSchema pairs full with its fast check; raw returns the text of
// a schema (decoded, numbers as json.Number) by its compiled Location.
func newCheckedSchema(full *jsonschema.Schema, raw func(location string) (any, bool)) checkedSchema {
	return checkedSchema{full: full, fast: compileFastSchema(full, raw)}
}

// errors validates v (decoded with UseNumber) like [schemaErrors], asking
// jsonschema only when the fast check cannot vouch for v.
func (s checkedSchema) errors(v any, prefix string) []FieldError {
	if s.fast != nil && s.fast.valid(v, 0) {
		return nil
	}
	return schemaErrors(s.full, v, prefix)
}

// A fastSchema answers "is this data surely valid?" for the keywords model
// schemas use most, without jsonschema's per-node error paths, scope
// slices and evaluated-property maps, which made schema validation the
// largest cost of a push. It may answer false for valid data (jsonschema
// then decides, and words the errors); it must never answer true for
// invalid data (FuzzFastSchema checks this against jsonschema).
//
// It is an allow-list: a schema any of whose (sub)schemas has a keyword
// not in fastKeywords, or sets a field of the compiled jsonschema.Schema
// not in fastFields, gets no fastSchema at all, and jsonschema alone
// decides. A keyword it has never heard of, a keyword of a vocabulary it
// does not implement, or a field a later jsonschema adds, all land there.
// TestFastSchemaKeywords goes through every keyword of draft 2020-12
// (and the older ones jsonschema still reads).
type fastSchema struct {
	always *bool
	types  jsonTypes // 0: any type
	enum   []string  // string enum or const; nil: none
	ref    *fastSchema
	allOf  []*fastSchema
	anyOf  []*fastSchema

	minProps, maxProps int // -1: unset
	required           []string
	props              map[string]*fastSchema
	// additional applies to properties not in props; closed forbids them.
	additional *fastSchema
	closed     bool

	minItems, maxItems int
	items              *fastSchema

	minLen, maxLen int
	pattern        *regexp.Regexp

	minimum, exclusiveMin, maximum, exclusiveMax, multipleOf *big.Rat
}

type jsonTypes uint8

const (
	typeNull jsonTypes = 1 << iota
	typeBoolean
	typeNumber
	typeInteger
	typeString
	typeArray
	typeObject
)

var typeNames = map[string]jsonTypes{
	"null": typeNull, "boolean": typeBoolean, "number": typeNumber, "integer": typeInteger,
	"string": typeString, "array": typeArray, "object": typeObject,
}

// fastSchemaDepth bounds both compiling and checking: a deeper schema or
// value is left to jsonschema.
const fastSchemaDepth = 64

// compileFastSchema returns nil when s uses anything the fast check does
// not implement, or when the text of one of its (sub)schemas cannot be
// found through raw.
func compileFastSchema(s *jsonschema.Schema, raw func(location string) (any, bool)) *fastSchema {
	if raw == nil {
		return nil
	}
	c := &fastCompiler{done: map[*jsonschema.Schema]*fastSchema{}, raw: raw}
	sch := c.node(s, 0)
	if c.unsupported {
		return nil
	}
	return sch
}

type fastCompiler struct {
	done        map[*jsonschema.Schema]*fastSchema
	raw         func(location string) (any, bool)
	unsupported bool
}

func (c *fastCompiler) node(s *jsonschema.Schema, depth int) *fastSchema {
	if s == nil || c.unsupported {
		return nil
	}
	if sch, ok := c.done[s]; ok {
		return sch // a cycle through $ref: filled in by the outer call
	}
	if depth > fastSchemaDepth || !c.keywordsKnown(s) || !fastSupported(s) {
		c.unsupported = true
		return nil
	}
	sch := &fastSchema{
		always: s.Always, minProps: s.MinProperties, maxProps: s.MaxProperties,
		required: s.Required, minItems: s.MinItems, maxItems: s.MaxItems,
		minLen: s.MinLength, maxLen: s.MaxLength, pattern: s.Pattern,
		minimum: s.Minimum, exclusiveMin: s.ExclusiveMinimum, maximum: s.Maximum,
		exclusiveMax: s.ExclusiveMaximum, multipleOf: s.MultipleOf,
	}
	c.done[s] = sch
	for _, t := range s.Types {
		sch.types |= typeNames[t]
	}
	values := s.Enum
	if len(s.Constant) > 0 {
		if len(values) > 0 {
			c.unsupported = true
			return nil
		}
		values = s.Constant
	}
	if len(values) > 0 {
		sch.enum = make([]string, 0, len(values))
		for _, v := range values {
			str, ok := v.(string)
			if !ok {
				c.unsupported = true
				return nil
			}
			sch.enum = append(sch.enum, str)
		}
	}
	sch.ref = c.node(s.Ref, depth+1)
	for _, sub := range s.AllOf {
		sch.allOf = append(sch.allOf, c.node(sub, depth+1))
	}
	for _, sub := range s.AnyOf {
		sch.anyOf = append(sch.anyOf, c.node(sub, depth+1))
	}
	if len(s.Properties) > 0 {
		sch.props = make(map[string]*fastSchema, len(s.Properties))
		for name, sub := range s.Properties {
			sch.props[name] = c.node(sub, depth+1)
		}
	}
	switch ap := s.AdditionalProperties.(type) {
	case bool:
		sch.closed = !ap
	case *jsonschema.Schema:
		sch.additional = c.node(ap, depth+1)
	}
	if items, ok := s.Items.(*jsonschema.Schema); ok {
		sch.items = c.node(items, depth+1)
	}
	if s.Items2020 != nil {
		sch.items = c.node(s.Items2020, depth+1)
	}
	return sch
}

// fastKeywords are the keywords a schema object may hold and still get a
// fast check: those it implements (read from the compiled schema, so each
// means exactly what jsonschema compiled it to mean), and those that never
// change whether an instance is valid (identifiers, containers reached
// only through $ref, annotations). Every other key sends the schema to
// jsonschema: format (asserted: Config compiles with AssertFormat),
// $dynamicRef, $recursiveRef and their anchors, $vocabulary, not, oneOf,
// if/then/else, patternProperties, propertyNames, dependentSchemas,
// dependentRequired, dependencies, prefixItems, additionalItems, contains,
// minContains, maxContains, uniqueItems, unevaluatedItems,
// unevaluatedProperties, the content keywords, and any key no vocabulary
// defines.
var fastKeywords = map[string]bool{
	// core
	"$schema": true, "$id": true, "$anchor": true, "$ref": true, "$defs": true, "$comment": true,
	"definitions": true, // draft 7's $defs
	// applicator
	"allOf": true, "anyOf": true, "properties": true, "additionalProperties": true, "items": true,
	// validation
	"type": true, "enum": true, "const": true, "multipleOf": true,
	"maximum": true, "exclusiveMaximum": true, "minimum": true, "exclusiveMinimum": true,
	"maxLength": true, "minLength": true, "pattern": true, "maxItems": true, "minItems": true,
	"maxProperties": true, "minProperties": true, "required": true,
	// meta-data
	"title": true, "description": true, "default": true, "deprecated": true,
	"readOnly": true, "writeOnly": true, "examples": true,
}

// knownDrafts are the $schema values whose vocabularies are jsonschema's
// built-in ones; a schema naming any other meta-schema goes to jsonschema.
var knownDrafts = map[string]bool{
	"https://json-schema.org/draft/2020-12/schema": true,
	"https://json-schema.org/draft/2019-09/schema": true,
	"http://json-schema.org/draft-07/schema":       true,
	"http://json-schema.org/draft-06/schema":       true,
	"http://json-schema.org/draft-04/schema":       true,
}

// keywordsKnown reports whether every key of s's text is in fastKeywords.
// The text is found by s.Location, the schema's URL and the JSON pointer
// of its place in the file; a schema whose text cannot be found (another
// URL, a pointer that does not resolve) gets no fast check.
func (c *fastCompiler) keywordsKnown(s *jsonschema.Schema) bool {
	node, ok := c.raw(s.Location)
	if !ok {
		return false
	}
	switch node := node.(type) {
	case bool:
		return true
	case map[string]any:
		for key, val := range node {
			if !fastKeywords[key] {
				return false
			}
			if key == "$schema" {
				uri, _ := val.(string)
				if !knownDrafts[strings.TrimSuffix(uri, "#")] {
					return false
				}
			}
		}
		return true
	}
	return false
}

// rawAt resolves a compiled schema's Location in doc, the decoded text of
// the file at the location's URL: the fragment is a JSON pointer whose
// steps jsonschema escaped twice (RFC 6901, then URL path escaping).
func rawAt(doc any, fragment string) (any, bool) {
	if fragment == "" {
		return doc, true
	}
	if fragment[0] != '/' {
		return nil, false
	}
	for _, step := range strings.Split(fragment[1:], "/") {
		step, err := url.PathUnescape(step)
		if err != nil {
			return nil, false
		}
		step = strings.ReplaceAll(strings.ReplaceAll(step, "~1", "/"), "~0", "~")
		switch d := doc.(type) {
		case map[string]any:
			next, ok := d[step]
			if !ok {
				return nil, false
			}
			doc = next
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(d) {
				return nil, false
			}
			doc = d[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

// fastFields are the fields of a compiled jsonschema.Schema that the fast
// check reads, or that do not decide validity (Location, Draft, anchors,
// annotations, and the contains counts, which act only with Contains).
// Every other exported field must hold its zero value, or the schema gets
// no fast check; so does a field a later jsonschema version adds.
var fastFields = map[string]bool{
	"Location": true, "Draft": true, "RecursiveAnchor": true, "DynamicAnchor": true,
	"Always": true, "Ref": true, "Types": true, "Constant": true, "Enum": true,
	"AllOf": true, "AnyOf": true,
	"MinProperties": true, "MaxProperties": true, "Required": true, "Properties": true,
	"AdditionalProperties": true,
	"MinItems":             true, "MaxItems": true, "Items": true, "Items2020": true,
	"ContainsEval": true, "MinContains": true, "MaxContains": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Minimum": true, "ExclusiveMinimum": true, "Maximum": true, "ExclusiveMaximum": true, "MultipleOf": true,
	"Title": true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
}

// fastSupported reports whether s sets only fields the fast check
// implements exactly as jsonschema does.
func fastSupported(s *jsonschema.Schema) bool {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() && !fastFields[f.Name] && !v.Field(i).IsZero() {
			return false
		}
	}
	if _, tuple := s.Items.([]*jsonschema.Schema); tuple {
		return false
	}
	if s.Items != nil && s.Items2020 != nil {
		return false
	}
	if s.Contains == nil && (s.MinContains != 1 || s.MaxContains != -1) {
		return false // only meaningful with contains, which is not implemented
	}
	for _, t := range s.Types {
		if typeNames[t] == 0 {
			return false
		}
	}
	return true
}

// valid reports whether v (decoded with UseNumber) surely satisfies the
// schema.
func (sch *fastSchema) valid(v any, depth int) bool {
	if depth > fastSchemaDepth {
		return false
	}
	if sch.always != nil {
		return *sch.always
	}
	if sch.types != 0 && !sch.typeOK(v) {
		return false
	}
	if sch.enum != nil {
		str, ok := v.(string)
		if !ok || !containsString(sch.enum, str) {
			return false
		}
	}
	if sch.ref != nil && !sch.ref.valid(v, depth+1) {
		return false
	}
	for _, sub := range sch.allOf {
		if !sub.valid(v, depth+1) {
			return false
		}
	}
	if len(sch.anyOf) > 0 && !sch.anyValid(v, depth) {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		return sch.objectValid(v, depth)
	case []any:
		return sch.arrayValid(v, depth)
	case string:
		return sch.stringValid(v)
	case json.Number:
		return sch.numberValid(v)
	case nil, bool:
		return true
	}
	return false // not a decoded JSON value
}

func (sch *fastSchema) anyValid(v any, depth int) bool {
	for _, sub := range sch.anyOf {
		if sub.valid(v, depth+1) {
			return true
		}
	}
	return false
}

func (sch *fastSchema) typeOK(v any) bool {
	switch v := v.(type) {
	case nil:
		return sch.types&typeNull != 0
	case bool:
		return sch.types&typeBoolean != 0
	case string:
		return sch.types&typeString != 0
	case []any:
		return sch.types&typeArray != 0
	case map[string]any:
		return sch.types&typeObject != 0
	case json.Number:
		if sch.types&typeNumber != 0 {
			return true
		}
		return sch.types&typeInteger != 0 && isInteger(v)
	}
	return false
}

// isInteger is jsonschema's test: the number's value has no fraction
// (1.0 and 1e3 are integers).
func isInteger(n json.Number) bool {
	s := string(n)
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	plain := digits != ""
	for i := 0; i < len(digits) && plain; i++ {
		plain = digits[i] >= '0' && digits[i] <= '9'
	}
	if plain {
		return true
	}
	r, ok := new(big.Rat).SetString(s)
	return ok && r.IsInt()
}

func (sch *fastSchema) objectValid(obj map[string]any, depth int) bool {
	if sch.minProps != -1 && len(obj) < sch.minProps || sch.maxProps != -1 && len(obj) > sch.maxProps {
		return false
	}
	for _, name := range sch.required {
		if _, ok := obj[name]; !ok {
			return false
		}
	}
	for name, val := range obj {
		sub, declared := sch.props[name]
		switch {
		case declared:
			if sub != nil && !sub.valid(val, depth+1) {
				return false
			}
		case sch.closed:
			return false
		case sch.additional != nil:
			if !sch.additional.valid(val, depth+1) {
				return false
			}
		}
	}
	return true
}

func (sch *fastSchema) arrayValid(arr []any, depth int) bool {
	if sch.minItems != -1 && len(arr) < sch.minItems || sch.maxItems != -1 && len(arr) > sch.maxItems {
		return false
	}
	if sch.items != nil {
		for _, item := range arr {
			if !sch.items.valid(item, depth+1) {
				return false
			}
		}
	}
	return true
}

func (sch *fastSchema) stringValid(s string) bool {
	if sch.minLen != -1 || sch.maxLen != -1 {
		n := utf8.RuneCountInString(s)
		if sch.minLen != -1 && n < sch.minLen || sch.maxLen != -1 && n > sch.maxLen {
			return false
		}
	}
	return sch.pattern == nil || sch.pattern.MatchString(s)
}

func (sch *fastSchema) numberValid(n json.Number) bool {
	if sch.minimum == nil && sch.exclusiveMin == nil && sch.maximum == nil && sch.exclusiveMax == nil && sch.multipleOf == nil {
		return true
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return false
	}
	switch {
	case sch.minimum != nil && r.Cmp(sch.minimum) < 0,
		sch.exclusiveMin != nil && r.Cmp(sch.exclusiveMin) <= 0,
		sch.maximum != nil && r.Cmp(sch.maximum) > 0,
		sch.exclusiveMax != nil && r.Cmp(sch.exclusiveMax) >= 0:
		return false
	}
	return sch.multipleOf == nil || new(big.Rat).Quo(r, sch.multipleOf).IsInt()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
