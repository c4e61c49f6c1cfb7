package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// A pull reads thousands of rows. Through bun and database/sql each value
// of each row is decoded from text by pgx, converted again by
// database/sql and assigned by bun's reflection, which took most of a
// pull's CPU. On PostgreSQL a read transaction therefore keeps its
// connection, and the feed of a table whose columns pgx can scan
// directly is read on it with pgx: binary results, scanned straight into
// the row's fields.

// rawConn runs fn with the pgx connection under a read transaction.
type rawConn func(ctx context.Context, fn func(*pgx.Conn) error) error

type rawConnKey struct{}

func withRawConn(ctx context.Context, rc rawConn) context.Context {
	return context.WithValue(ctx, rawConnKey{}, rc)
}

func rawConnFrom(ctx context.Context) rawConn {
	rc, _ := ctx.Value(rawConnKey{}).(rawConn)
	return rc
}

// connRunner is the rawConn of a bun connection on pgx's stdlib driver.
func connRunner(conn bun.Conn) rawConn {
	return func(ctx context.Context, fn func(*pgx.Conn) error) error {
		return conn.Raw(func(dc any) error {
			c, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("models: the connection is %T, not pgx's", dc)
			}
			return fn(c.Conn())
		})
	}
}

// pgxFeedPlan is how one table's feed is read with pgx: its columns, in
// table order, each scanned straight into its field.
type pgxFeedPlan struct {
	table  *schema.Table
	fields []*schema.Field
	cols   string
}

// newPgxFeedPlan returns the plan of t, or nil when a column's Go type is
// one pgx might scan differently from bun (a custom sql.Scanner, a bun
// array, a nullable column of a plain type): that table is read through
// bun.
func newPgxFeedPlan(t *schema.Table) *pgxFeedPlan {
	p := &pgxFeedPlan{table: t}
	var cols []string
	scanner := reflect.TypeFor[sql.Scanner]()
	for _, f := range t.Fields {
		typ := f.StructField.Type
		sqlType := strings.ToLower(f.CreateTableSQLType)
		isJSON := sqlType == "json" || sqlType == "jsonb"
		switch {
		case reflect.PointerTo(typ).Implements(scanner) && typ != reflect.TypeFor[time.Time]():
			return nil
		case isJSON && (typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map || typ.Kind() == reflect.Pointer) && typ != reflect.TypeFor[json.RawMessage]():
			// pgx decodes json(b) with encoding/json, as bun does; SQL NULL
			// leaves nil.
		case f.Tag.HasOption("array"):
			return nil
		case !f.NotNull && !f.IsPK:
			return nil // NULL into a plain field fails in pgx, not in bun
		case !plainScannable(typ):
			return nil
		}
		p.fields = append(p.fields, f)
		cols = append(cols, quote(f.Name))
	}
	p.cols = strings.Join(cols, ", ")
	return p
}

func plainScannable(t reflect.Type) bool {
	if t == reflect.TypeFor[time.Time]() || t == reflect.TypeFor[json.RawMessage]() || t == reflect.TypeFor[[]byte]() {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
		return t.PkgPath() == "" // a named type may decode its own way
	}
	return false
}

// query is the feed's SQL and arguments for p; models restricts the
// generic table's model column.
func (pl *pgxFeedPlan) query(models []string, p FeedParams) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(pl.cols)
	b.WriteString(" FROM ")
	b.WriteString(string(pl.table.SQLName))
	b.WriteString(" WHERE owner = $1 AND version > $2 AND version <= $3")
	args := []any{pgx.QueryExecModeCacheStatement, p.Owner, p.After, p.UpTo}
	if models != nil {
		args = append(args, models)
		fmt.Fprintf(&b, " AND model = ANY($%d::text[])", len(args)-1)
	}
	if p.SkipDeleted {
		b.WriteString(" AND NOT is_deleted")
	}
	b.WriteString(" ORDER BY version")
	if p.Limit > 0 {
		args = append(args, int64(p.Limit)+1) // one more tells whether more follow
		fmt.Fprintf(&b, " LIMIT $%d", len(args)-1)
	}
	return b.String(), args
}

// pgxRows reads the feed with pgx into *row, one row at a time.
type pgxRows[T any] struct {
	rows  pgx.Rows
	plan  *pgxFeedPlan
	dests []any
}

func (r *pgxRows[T]) Next() bool { return r.rows.Next() }
func (r *pgxRows[T]) Err() error { return r.rows.Err() }
func (r *pgxRows[T]) Close()     { r.rows.Close() }

func (r *pgxRows[T]) scan(row *T) error {
	rv := reflect.ValueOf(row).Elem()
	for i, f := range r.plan.fields {
		r.dests[i] = f.Value(rv).Addr().Interface()
	}
	return r.rows.Scan(r.dests...)
}

// feedPgx is scanFeed on a pgx connection.
func feedPgx[T any](ctx context.Context, rc rawConn, plan *pgxFeedPlan, models []string, p FeedParams, row *T, add func(*T) (Record, error)) ([]Record, bool, error) {
	var out []Record
	var more bool
	err := rc(ctx, func(conn *pgx.Conn) error {
		q, args := plan.query(models, p)
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read changes of %q: %w", p.Owner, err)
		}
		r := &pgxRows[T]{rows: rows, plan: plan, dests: make([]any, len(plan.fields))}
		defer r.Close()
		out, more, err = collectFeed(r, p, row, add)
		return err
	})
	return out, more, err
}

// feedRows is a feed query's rows, read one at a time.
type feedRows[T any] interface {
	Next() bool
	scan(row *T) error
	Err() error
}

// collectFeed hands each row to add, up to p.Limit records and within
// p.MaxBytes, and reports whether it stopped with rows left. Reading row
// by row, not into a slice, keeps a page of large records from being held
// whole before it is cut.
func collectFeed[T any](rows feedRows[T], p FeedParams, row *T, add func(*T) (Record, error)) ([]Record, bool, error) {
	out := make([]Record, 0, p.rowsHint())
	size := 0
	var zero T
	for rows.Next() {
		if p.Limit > 0 && len(out) == p.Limit {
			return out, true, nil
		}
		*row = zero
		if err := rows.scan(row); err != nil {
			return nil, false, fmt.Errorf("read changes of %q: %w", p.Owner, err)
		}
		rec, err := add(row)
		if err != nil {
			return nil, false, err
		}
		size += rec.Size()
		if p.MaxBytes > 0 && size > p.MaxBytes && len(out) > 0 {
			return out, true, nil
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read changes of %q: %w", p.Owner, err)
	}
	return out, false, nil
}
