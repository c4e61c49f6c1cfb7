package framework

import (
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// ModelSchema is what a model's JSON Schema says of the record's
// top-level fields, for policies that merge field by field (an
// Automerge-style policy treats an array the schema declares
// "uniqueItems" as a set). It is computed once, when the model is
// registered, and shared read-only by every conflict of the model.
type ModelSchema struct {
	fields map[string]FieldSchema
}

// FieldSchema is what a model's schema says of one top-level field, from
// its entry in "properties" (through "$ref" and "allOf").
type FieldSchema struct {
	// Types are the JSON types the schema allows ("array", "object", …),
	// sorted; nil when it does not restrict them.
	Types []string
	// UniqueItems is set when the schema requires the field's items to be
	// unique ("uniqueItems": true).
	UniqueItems bool
}

// Field returns what the schema says of the top-level field name, and
// whether it names that field at all. A nil ModelSchema names none.
func (s *ModelSchema) Field(name string) (FieldSchema, bool) {
	if s == nil {
		return FieldSchema{}, false
	}
	f, ok := s.fields[name]
	return f, ok
}

// newModelSchema reads sch's top-level properties.
func newModelSchema(sch *jsonschema.Schema) *ModelSchema {
	out := &ModelSchema{fields: map[string]FieldSchema{}}
	for _, part := range schemaParts(sch, 0) {
		for name, prop := range part.Properties {
			f := out.fields[name]
			for _, p := range schemaParts(prop, 0) {
				f.UniqueItems = f.UniqueItems || p.UniqueItems
				if len(p.Types) > 0 {
					f.Types = intersectTypes(f.Types, p.Types)
				}
			}
			out.fields[name] = f
		}
	}
	return out
}

// schemaParts is sch with the schemas it also requires ("$ref", "allOf"),
// to a small depth (a schema may refer to itself).
func schemaParts(sch *jsonschema.Schema, depth int) []*jsonschema.Schema {
	if sch == nil || depth > 8 {
		return nil
	}
	out := []*jsonschema.Schema{sch}
	out = append(out, schemaParts(sch.Ref, depth+1)...)
	for _, s := range sch.AllOf {
		out = append(out, schemaParts(s, depth+1)...)
	}
	return out
}

// intersectTypes is the types both allow; have nil allows every type.
func intersectTypes(have, more []string) []string {
	if have == nil {
		out := slices.Clone(more)
		slices.Sort(out)
		return out
	}
	return slices.DeleteFunc(slices.Clone(have), func(t string) bool { return !slices.Contains(more, t) })
}
