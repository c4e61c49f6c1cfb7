package models

import (
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
)

// bun v1.3.0 writes JSON values (a typed model's slice, map or struct
// fields) into SQL with schema.BaseDialect.AppendJSON, which mistakes the
// second backslash of an escaped one for the start of an escape: the JSON
// text "\\u0000" (a backslash, then the letters u0000) becomes "\\\u0000",
// a backslash and a NUL. SQLite then stores changed data without a word,
// and PostgreSQL refuses the write (jsonb cannot hold U+0000). The stores
// Ferry opens use these dialects, which write JSON texts as they are.

// pgDialect is bun's PostgreSQL dialect with a correct AppendJSON.
type pgDialect struct{ *pgdialect.Dialect }

// AppendJSON writes a JSON text as an SQL string literal.
func (pgDialect) AppendJSON(b, jsonb []byte) []byte { return appendJSONLiteral(b, jsonb) }

// sqliteDialect is bun's SQLite dialect with a correct AppendJSON.
type sqliteDialect struct{ *sqlitedialect.Dialect }

// AppendJSON writes a JSON text as an SQL string literal.
func (sqliteDialect) AppendJSON(b, jsonb []byte) []byte { return appendJSONLiteral(b, jsonb) }

// appendJSONLiteral quotes a JSON text for SQL: single quotes doubled,
// everything else, escapes included, unchanged. (Both stores read
// backslashes in string literals literally: standard_conforming_strings
// is on by default since PostgreSQL 9.1.) A NUL byte, which no JSON text
// holds, is dropped, as bun does.
func appendJSONLiteral(b, text []byte) []byte {
	b = append(b, '\'')
	for _, c := range text {
		switch c {
		case '\'':
			b = append(b, '\'', '\'')
		case 0:
		default:
			b = append(b, c)
		}
	}
	return append(b, '\'')
}
