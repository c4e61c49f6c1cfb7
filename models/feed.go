package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"
)

// An owner's changes are read straight from the record tables, by an
// (owner, version) index on each: a scope's versions are unique across all
// its tables, so merging the tables by version gives the scope's changes
// in commit order. Each table holds the latest state of its records,
// tombstones included, which is what a pull hands out.

// FeedParams selects a stretch of one owner's changes.
type FeedParams struct {
	Owner string
	After int64 // exclusive
	UpTo  int64 // inclusive
	// SkipDeleted leaves tombstones out.
	SkipDeleted bool
	// Limit caps the records (0: no cap).
	Limit int
	// MaxBytes caps the records' size ([Record.Size]; 0: no cap): a read
	// stops before the record that would take it over, never before the
	// first. Rows are read one at a time, so no more than that is held.
	MaxBytes int
	// expect is how many records ReadFeed knows the read will give, to
	// size its buffer once (0: unknown); it never limits the read.
	expect int
}

// rowsHint is the capacity to give a feed read's rows.
func (p FeedParams) rowsHint() int {
	n := p.expect
	if n == 0 {
		n = p.Limit
	}
	return min(n, 5000)
}

// FeedSource is one table's share of a feed: a typed table with its
// model's name, or the generic table with the models wanted from it.
type FeedSource struct {
	Table  Table
	Models []string
}

// FeedPage is what [ReadFeedPage] read.
type FeedPage struct {
	// Records are in version order.
	Records []Record
	// More is set when Limit or MaxBytes ended the page: records follow
	// the last one's version (up to UpTo).
	More bool
}

// ReadFeed returns the records of sources changed in the stretch p
// selects, in version order, at most p.Limit of them (and within
// p.MaxBytes); see [ReadFeedPage].
func ReadFeed(ctx context.Context, idb bun.IDB, sources []FeedSource, p FeedParams) ([]Record, error) {
	page, err := ReadFeedPage(ctx, idb, sources, p)
	return page.Records, err
}

// ReadFeedPage returns the records of sources changed in the stretch p
// selects, in version order, at most p.Limit of them and within
// p.MaxBytes, and whether more follow.
//
// With several sources it first reads only versions (from the indexes) to
// find where the page ends, then each table's records up to there, so no
// table is read past the page.
func ReadFeedPage(ctx context.Context, idb bun.IDB, sources []FeedSource, p FeedParams) (FeedPage, error) {
	switch len(sources) {
	case 0:
		return FeedPage{}, nil
	case 1:
		recs, more, err := sources[0].Table.Feed(ctx, idb, sources[0].Models, p)
		return FeedPage{Records: recs, More: more}, err
	}
	active := make([]bool, len(sources))
	counts := make([]int, len(sources)) // each table's records in the page, when known
	all := p
	all.Limit = 0
	var page FeedPage
	if p.Limit > 0 {
		var b strings.Builder
		args := make([]any, 0, len(sources)+1)
		b.WriteString("SELECT part, version FROM (")
		keys := p
		keys.Limit++ // one more tells whether more follow
		for i, s := range sources {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			// Each part is a subquery in FROM, which SQLite allows with
			// ORDER BY and LIMIT where it refuses a parenthesised member.
			fmt.Fprintf(&b, "SELECT part, version FROM (?) AS f%d", i)
			args = append(args, s.Table.FeedKeys(idb, s.Models, keys).ColumnExpr("? AS part", i))
		}
		b.WriteString(") AS feed ORDER BY version LIMIT ?")
		args = append(args, keys.Limit)
		var parts []int
		var versions []int64
		if err := idb.NewRaw(b.String(), args...).Scan(ctx, &parts, &versions); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return FeedPage{}, fmt.Errorf("read versions of %q: %w", p.Owner, err)
		}
		if len(versions) > p.Limit {
			parts, versions = parts[:p.Limit], versions[:p.Limit]
			page.More = true
		}
		if page.More {
			all.UpTo = versions[len(versions)-1]
		}
		for _, part := range parts {
			active[part] = true
			counts[part]++
		}
	} else {
		for i := range active {
			active[i] = true
		}
	}
	// Each table stops at the byte cap on its own; the page then ends
	// where the first of them stopped, since a stopped table may hold
	// records after that point that come before the others' later ones.
	horizon := int64(-1)
	var out []Record
	for i, s := range sources {
		if !active[i] {
			continue
		}
		part := all
		part.expect = counts[i]
		recs, more, err := s.Table.Feed(ctx, idb, s.Models, part)
		if err != nil {
			return FeedPage{}, err
		}
		if more && len(recs) > 0 && (horizon < 0 || recs[len(recs)-1].Version < horizon) {
			horizon = recs[len(recs)-1].Version
		}
		out = append(out, recs...)
	}
	slices.SortFunc(out, func(a, b Record) int { return int(a.Version - b.Version) })
	if horizon >= 0 {
		n, _ := slices.BinarySearchFunc(out, horizon, func(r Record, v int64) int { return int(r.Version - v) })
		out, page.More = out[:n+1], true
	}
	if p.MaxBytes > 0 {
		size := 0
		for i := range out {
			size += out[i].Size()
			if size > p.MaxBytes && i > 0 {
				out, page.More = out[:i], true
				break
			}
		}
	}
	if p.Limit > 0 && len(out) > p.Limit {
		out = out[:p.Limit] // not reached: the versions read fixed the page
	}
	page.Records = out
	return page, nil
}

// Size is what a record counts against a page's byte cap: its data,
// identifiers and field times, and a fixed 128 bytes for the rest of its
// envelope.
func (r *Record) Size() int {
	return len(r.Data) + len(r.Model) + len(r.UID) + len(r.Owner) + 128 + r.FieldTimes.size()
}

// size is about what f takes on the wire: each name, quoted, and an RFC
// 3339 time of up to 35 characters, quoted, with its separators.
func (f FieldTimes) size() int {
	n := 0
	for name := range f {
		n += len(name) + 41
	}
	return n
}

// scanFeed reads q's rows one at a time into *row, handing each to add,
// up to p.Limit records and within p.MaxBytes (see collectFeed); it
// reports whether it stopped with rows left.
func scanFeed[T any](ctx context.Context, idb bun.IDB, q *bun.SelectQuery, p FeedParams, row *T, add func(*T) (Record, error)) ([]Record, bool, error) {
	scanner, ok := idb.NewSelect().Model(row).GetModel().(interface {
		ScanRow(context.Context, *sql.Rows) error
	})
	if !ok {
		return nil, false, fmt.Errorf("read changes: bun cannot scan %T row by row", row)
	}
	if p.Limit > 0 {
		q = q.Limit(int64(p.Limit) + 1) // one more tells whether more follow
	}
	rows, err := q.Rows(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read changes of %q: %w", p.Owner, err)
	}
	defer rows.Close()
	return collectFeed[T](&bunRows[T]{ctx: ctx, rows: rows, scanner: scanner}, p, row, add)
}

// bunRows reads a feed through bun into the row its scanner was made for.
type bunRows[T any] struct {
	ctx     context.Context
	rows    *sql.Rows
	scanner interface {
		ScanRow(context.Context, *sql.Rows) error
	}
}

func (r *bunRows[T]) Next() bool    { return r.rows.Next() }
func (r *bunRows[T]) Err() error    { return r.rows.Err() }
func (r *bunRows[T]) scan(*T) error { return r.scanner.ScanRow(r.ctx, r.rows) }

// feedWhere restricts q to the stretch p selects; models, when given,
// restricts the generic table's model column.
func feedWhere(q *bun.SelectQuery, models []string, p FeedParams) *bun.SelectQuery {
	q = q.Where("?TableAlias.owner = ?", p.Owner).
		Where("?TableAlias.version > ?", p.After).
		Where("?TableAlias.version <= ?", p.UpTo).
		OrderExpr("?TableAlias.version ASC")
	if models != nil {
		q = q.Where("?TableAlias.model IN (?)", bun.List(models))
	}
	if p.SkipDeleted {
		q = q.Where("?TableAlias.is_deleted = ?", false)
	}
	if p.Limit > 0 {
		q = q.Limit(int64(p.Limit))
	}
	return q
}

// createFeedIndex creates the (owner, version) index a record table's
// feed is read by.
func createFeedIndex(ctx context.Context, idb bun.IDB, model any) error {
	t := idb.Dialect().Tables().Get(reflect.TypeOf(model).Elem())
	_, err := idb.NewCreateIndex().Model(model).Index(t.Name+"_owner_version").
		IfNotExists().Column("owner", "version").Exec(ctx)
	if err != nil {
		return fmt.Errorf("create feed index on %s: %w", t.Name, err)
	}
	return nil
}
