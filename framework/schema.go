package framework

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// schemaBase is the fixed base URL schemas are compiled under, so that $ref
// between files resolves offline.
const schemaBase = "mem://schemas/"

// schemaSet compiles JSON Schemas from one fs.FS. Every .json file of the
// FS is added as a resource first, so one schema may $ref another.
type schemaSet struct {
	fsys     fs.FS
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
	// docs are the files' texts, decoded, by URL, for the fast check's
	// keyword allow-list.
	docs map[string]any
}

func newSchemaSet(fsys fs.FS) (*schemaSet, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(url string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("schema %s is not among the embedded schemas", url)
	}
	s := &schemaSet{fsys: fsys, compiler: c, compiled: map[string]*jsonschema.Schema{}, docs: map[string]any{}}
	if fsys == nil {
		return s, nil
	}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		if err := c.AddResource(schemaBase+path, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("add schema %s: %w", path, err)
		}
		var doc any
		if decodeJSON(bytes.NewReader(b), &doc) == nil {
			s.docs[schemaBase+path] = doc
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	return s, nil
}

// compile returns the compiled schema at path, compiling it once.
func (s *schemaSet) compile(path string) (*jsonschema.Schema, error) {
	if sch, ok := s.compiled[path]; ok {
		return sch, nil
	}
	if s.fsys == nil {
		return nil, fmt.Errorf("schema %q: Config.Schemas is nil; give the App an fs.FS holding your schemas", path)
	}
	if _, err := fs.Stat(s.fsys, path); err != nil {
		return nil, fmt.Errorf("schema %q not found in Config.Schemas (paths are relative to that FS, e.g. \"data/note.json\")", path)
	}
	sch, err := s.compiler.Compile(schemaBase + path)
	if err != nil {
		return nil, fmt.Errorf("compile schema %q: %w", path, err)
	}
	s.compiled[path] = sch
	return sch, nil
}

// checked returns sch, compiled by s, with its fast check.
func (s *schemaSet) checked(sch *jsonschema.Schema) checkedSchema {
	return newCheckedSchema(sch, s.raw)
}

// raw returns the decoded text of the schema at a compiled schema's
// Location (a file's URL and a JSON pointer into it).
func (s *schemaSet) raw(location string) (any, bool) {
	file, fragment, _ := strings.Cut(location, "#")
	doc, ok := s.docs[file]
	if !ok {
		return nil, false
	}
	return rawAt(doc, fragment)
}

// schemaErrors validates v (decoded with UseNumber) and turns a failure into
// field errors with JSON pointers, prefixed with prefix. Only the leaves of
// jsonschema's error tree are kept: they say what is wrong and where.
func schemaErrors(sch *jsonschema.Schema, v any, prefix string) []FieldError {
	err := sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldError{{Path: prefix, Message: err.Error()}}
	}
	var out []FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, FieldError{Path: prefix + e.InstanceLocation, Message: e.Message})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return dedupe(out)
}

func dedupe(in []FieldError) []FieldError {
	out := in[:0]
	for i, e := range in {
		if i > 0 && e == in[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}
