package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// NewerWriter is implemented by tables that can decide last-writer-wins
// inside the store, in the statement that writes. On PostgreSQL that takes
// a push of any size from five round trips (begin, reserve a version, load,
// write, commit) to one, and spares the store reading every row back.
type NewerWriter interface {
	// WriteIfNewer writes recs of one model, all owned by scope, with
	// distinct uids, in one statement on PostgreSQL. A record is written
	// when scope holds no row with its uid, or when the stored row has
	// either an older modify_at or the same modify_at and different
	// content (is_deleted or data). Written rows get their version from
	// span (each record's Version is its place in the span). It returns,
	// per record, the version written, or 0 when the record was not
	// written (the stored row is newer or repeats it).
	//
	// The statement runs on idb: on a *bun.DB it is a transaction of its
	// own; in a bun.Tx the scope stays locked until the transaction ends,
	// so several calls can share one span. bun's query hooks do not see it
	// (it is sent with parameters, below bun).
	WriteIfNewer(ctx context.Context, idb bun.IDB, scope string, span VersionSpan, recs []*Record) ([]int64, error)
	// CanWriteIfNewer reports whether WriteIfNewer works on idb's store.
	CanWriteIfNewer(idb bun.IDB) bool
}

// VersionSpan is the block of versions one push takes from its scope's
// counter: the Count versions after the counter's value when the push
// began. Records name their place in it (1 to Count) in Record.Version,
// so a push writing several models in several statements still numbers
// its changes in request order. The push's first WriteIfNewer call takes
// the block (Take); later calls in the same transaction use it.
type VersionSpan struct {
	Count int64
	Take  bool
	// Guard, when set, makes the call that takes the span write nothing
	// (and return [ErrOverQuota]) unless the scope's usage plus the push's
	// growth stays within the quota.
	Guard *UsageGuard
}

// newerStatement is one table's WriteIfNewer statement. Rows travel as
// one text array per column, each value in the text form of the literal
// bun would have written, and are cast back to the column's type in SQL:
// the statement's text does not depend on the number of rows, so
// PostgreSQL parses and plans a short statement instead of a VALUES list
// of thousands of literals, which cost more than writing the rows.
type newerStatement struct {
	fields []*schema.Field // every column but version, in parameter order
	plain  []plainKind     // per field: written without bun when not 0
	sql    string          // $1 scope, $2 versions taken, $3 span, $4 places, $5… columns, then the guard (on, records, bytes)
	// rowBytes is the literal text per row of the last statement, to size
	// the next one's buffer at once (the last, not the largest, so one
	// push of huge rows does not inflate every later buffer).
	rowBytes atomic.Int64
}

// newerShape derives the statement from a bun table. conflict is the
// primary key, set the columns an update replaces, compare the columns
// whose difference makes an equal modify_at win. It returns false when a
// compared column has no equality operator in PostgreSQL (json, xml), or
// a column has no SQL type to cast its text to.
func newerShape(t *schema.Table, conflict string, set, compare []string) (*newerStatement, bool) {
	st := &newerStatement{}
	for _, c := range compare {
		f, ok := t.FieldMap[c]
		if !ok {
			return st, false
		}
		switch strings.ToLower(f.UserSQLType) {
		case "json", "xml":
			return st, false
		}
	}
	var cols, sel, unnest []string
	for _, f := range t.Fields {
		if f.UserSQLType == "" {
			return st, false // nothing to cast the text back to
		}
		cols = append(cols, quote(f.Name))
		if f.Name == "version" {
			sel = append(sel, "s.base + u.place")
			continue
		}
		st.fields = append(st.fields, f)
		st.plain = append(st.plain, plainKindOf(f))
		unnest = append(unnest, fmt.Sprintf("$%d::text[]", len(st.fields)+4))
		sel = append(sel, fmt.Sprintf("u.c%d::%s", len(st.fields), castType(f.UserSQLType)))
	}
	names := make([]string, len(st.fields))
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i+1)
	}
	sets := make([]string, len(set))
	for i, c := range set {
		sets[i] = quote(c) + " = EXCLUDED." + quote(c)
	}
	// The usage guard: when on, the scope's counters must leave room for
	// the push's growth, or s is empty and nothing is written; the last
	// SELECT then answers one row with a NULL uid. (A new scope's row is
	// inserted, with no usage: the caller checks the growth alone.)
	g := len(st.fields) + 5
	guard := fmt.Sprintf("WHERE NOT $%d::bool OR (sc.records <= $%d::int8 AND sc.bytes <= $%d::int8)", g, g+1, g+2)
	// WHERE true ends the SELECT so that ON CONFLICT cannot be read as a
	// join condition.
	st.sql = `WITH s AS (
	INSERT INTO ferry_scopes AS sc (scope, version, purged_version) VALUES ($1, $2, 0)
	ON CONFLICT (scope) DO UPDATE SET version = sc.version + EXCLUDED.version
	` + guard + `
	RETURNING sc.version - $3 AS base),
w AS (
	INSERT INTO ` + string(t.SQLName) + ` AS t (` + strings.Join(cols, ", ") + `)
	SELECT ` + strings.Join(sel, ", ") + `
	FROM unnest($4::int8[], ` + strings.Join(unnest, ", ") + `) AS u(place, ` + strings.Join(names, ", ") + `), s
	WHERE true
	ON CONFLICT (` + conflict + `) DO UPDATE SET ` + strings.Join(sets, ", ") + `
	WHERE (t.modify_at < EXCLUDED.modify_at OR
		(t.modify_at = EXCLUDED.modify_at AND (` + prefixAll("t.", compare) + `) IS DISTINCT FROM (` + prefixAll("EXCLUDED.", compare) + `)))
	RETURNING t.uid, t.version)
SELECT w.uid, w.version FROM w
UNION ALL SELECT NULL, 0 WHERE NOT EXISTS (SELECT FROM s)`
	return st, true
}

// run executes the statement for rows, a slice of the table's structs
// holding recs.
func (st *newerStatement) run(ctx context.Context, idb bun.IDB, scope string, span VersionSpan, recs []*Record, rows reflect.Value) ([]int64, error) {
	model := recs[0].Model
	take := int64(0)
	if span.Take {
		take = span.Count
	}
	// Every array travels as one text literal, which pgx sends as it is:
	// a []string made pgx box each element, the largest share of a
	// push's allocations. All literals share one buffer and one string.
	perRow := max(st.rowBytes.Load(), int64(32*(len(st.fields)+1)))
	lit := make([]byte, 0, perRow*int64(len(recs))*9/8+64)
	var ends [16]int
	cut := ends[:0]
	lit = append(lit, '{')
	for i, r := range recs {
		if r.Version < 1 || r.Version > span.Count {
			return nil, fmt.Errorf("write %s/%s: place %d outside the span of %d versions", model, r.UID, r.Version, span.Count)
		}
		if i > 0 {
			lit = append(lit, ',')
		}
		lit = strconv.AppendInt(lit, r.Version, 10)
	}
	lit = append(lit, '}')
	cut = append(cut, len(lit))
	gen := schema.NewQueryGen(idb.Dialect())
	var scratch []byte
	for k, f := range st.fields {
		lit = append(lit, '{')
		for i := range rows.Len() {
			if i > 0 {
				lit = append(lit, ',')
			}
			if st.plain[k] != 0 {
				lit = st.plain[k].appendElement(lit, f.Value(rows.Index(i)))
				continue
			}
			scratch = f.AppendValue(gen, scratch[:0], rows.Index(i))
			var err error
			if lit, err = appendLiteralElement(lit, scratch); err != nil {
				return nil, fmt.Errorf("write %s/%s: column %s: %w", model, recs[i].UID, f.Name, err)
			}
		}
		lit = append(lit, '}')
		cut = append(cut, len(lit))
	}
	st.rowBytes.Store(int64(len(lit) / len(recs)))
	// One string for every array: pgx sends each as it is.
	all := string(lit)
	// Prepared once per connection (pgx's statement cache): planning the
	// statement each time cost more than running it for one row.
	args := make([]any, 0, 8+len(st.fields))
	args = append(args, pgx.QueryExecModeCacheStatement, scope, take, span.Count)
	from := 0
	for _, to := range cut {
		args = append(args, all[from:to])
		from = to
	}
	var guard *UsageGuard
	if span.Take {
		guard = span.Guard
	}
	on, maxRecords, maxBytes := guard.args()
	if on && (maxRecords < 0 || maxBytes < 0) {
		return nil, ErrOverQuota // the growth alone exceeds the quota
	}
	args = append(args, on, maxRecords, maxBytes)
	var q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}
	switch db := idb.(type) {
	case *bun.DB:
		q = db.DB
	case bun.Tx:
		q = db.Tx
	case *bun.Tx:
		q = db.Tx
	case bun.Conn:
		q = db.Conn
	default:
		return nil, fmt.Errorf("write %s records: %T is not a bun.DB, Tx or Conn", model, idb)
	}
	res, err := q.QueryContext(ctx, st.sql, args...)
	if err != nil {
		return nil, fmt.Errorf("write %d %s records: %w", len(recs), model, err)
	}
	defer res.Close()
	index := make(map[string]int, len(recs))
	for i, r := range recs {
		index[r.UID] = i
	}
	out := make([]int64, len(recs))
	var uid sql.RawBytes // valid until Next; saves a string per row
	for res.Next() {
		var v int64
		if err := res.Scan(&uid, &v); err != nil {
			return nil, fmt.Errorf("read written %s records: %w", model, err)
		}
		if uid == nil {
			return nil, ErrOverQuota // the guard failed; nothing was written
		}
		i, ok := index[string(uid)]
		if !ok {
			return nil, fmt.Errorf("write %s records: PostgreSQL returned %q, which was not written", model, uid)
		}
		out[i] = v
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("write %d %s records: %w", len(recs), model, err)
	}
	return out, nil
}

// plainKind is a Go type whose text form Ferry writes itself, skipping
// bun's SQL literal and its parsing back: plain strings, booleans,
// integers and times, which are most of a row (the envelope).
type plainKind int

const (
	notPlain plainKind = iota
	plainString
	plainBool
	plainInt
	plainTime
)

// plainKindOf says how f can be written without bun: only for exactly
// these types (a named type may have its own Valuer), never for pointers
// or nullzero fields, whose NULLs bun decides.
func plainKindOf(f *schema.Field) plainKind {
	if f.IsPtr || f.NullZero {
		return notPlain
	}
	switch f.StructField.Type {
	case reflect.TypeFor[string]():
		return plainString
	case reflect.TypeFor[bool]():
		return plainBool
	case reflect.TypeFor[int64](), reflect.TypeFor[int]():
		return plainInt
	case reflect.TypeFor[time.Time]():
		return plainTime
	}
	return notPlain
}

// appendElement appends v as a quoted element of a PostgreSQL array
// literal, rendered as bun would (times in UTC with microseconds).
func (k plainKind) appendElement(b []byte, v reflect.Value) []byte {
	switch k {
	case plainString:
		return appendArrayElement(b, v.String())
	case plainBool:
		return strconv.AppendBool(b, v.Bool()) // true and false need no quotes
	case plainInt:
		return strconv.AppendInt(b, v.Int(), 10)
	default:
		var t time.Time
		if v.CanAddr() {
			t = *v.Addr().Interface().(*time.Time) // boxing the value itself would allocate
		} else {
			t = v.Interface().(time.Time)
		}
		return appendTimeElement(b, t.UTC())
	}
}

// appendTimeElement appends t (in UTC) to microseconds as PostgreSQL reads
// it, by hand: time.Format was a tenth of the statement's cost.
func appendTimeElement(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 1 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, "2006-01-02 15:04:05.999999-07:00")
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, ' ')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, `+00"`...)
}

// appendDigits appends n zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, buf[:width]...)
}

// appendArrayElement appends s double-quoted, as a PostgreSQL array literal
// needs it: only the double quote and the backslash are escaped.
func appendArrayElement(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// viaPgx reports whether idb is PostgreSQL through pgx's database/sql
// driver, which WriteIfNewer needs (it passes pgx an execution mode). A
// transaction cannot tell its driver; the caller checks its *bun.DB.
func viaPgx(idb bun.IDB) bool {
	if !IsPostgres(idb) {
		return false
	}
	if db, ok := idb.(*bun.DB); ok {
		_, ok = db.Driver().(*stdlib.Driver)
		return ok
	}
	return true
}

// errLiteral is a value bun writes as an SQL expression rather than a
// literal; such tables cannot send their rows as text.
var errLiteral = errors.New("value is not a plain SQL literal")

// appendLiteralElement turns the SQL literal bun appended for PostgreSQL
// into an element of an array literal holding the text PostgreSQL's input
// function reads: NULL stays NULL, a quoted string loses its quotes and
// doubled quotes, and bare numbers and booleans stay as they are.
func appendLiteralElement(b, lit []byte) ([]byte, error) {
	s := string(lit)
	switch {
	case s == "NULL":
		return append(b, "NULL"...), nil
	case len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'':
		return appendArrayElement(b, strings.ReplaceAll(s[1:len(s)-1], "''", "'")), nil
	case s == "TRUE" || s == "FALSE":
		return append(b, s...), nil
	case strings.HasPrefix(s, "?!("):
		return b, fmt.Errorf("bun cannot write it: %s", strings.TrimSuffix(strings.TrimPrefix(s, "?!("), ")"))
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789+-.eE", c) {
			return b, fmt.Errorf("%w: %.40q", errLiteral, s)
		}
	}
	if s == "" {
		return b, fmt.Errorf("%w: empty", errLiteral)
	}
	return append(b, s...), nil
}

func quote(c string) string { return `"` + strings.ReplaceAll(c, `"`, `""`) + `"` }

func prefixAll(prefix string, cs []string) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = prefix + quote(c)
	}
	return strings.Join(parts, ", ")
}

// typmod is a type's length or precision, as in varchar(8) or
// numeric(10, 2).
var typmod = regexp.MustCompile(`\(\s*\d+\s*(,\s*\d+\s*)?\)`)

// castType is the type a column's text is cast to: the column's type
// without its length or precision. An explicit cast to varchar(8) would cut
// a longer value without a word; the column's own assignment cast refuses
// it, as an ordinary write does.
func castType(sqlType string) string {
	return typmod.ReplaceAllString(sqlType, "")
}
