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

// ReadFeed returns the records of sources changed in the stretch p
// selects, in version order, at most p.Limit of them.
//
// With several sources it first reads only versions (from the indexes) to
// find where the page ends, then each table's records up to there, so no
// table is read past the page.
func ReadFeed(ctx context.Context, idb bun.IDB, sources []FeedSource, p FeedParams) ([]Record, error) {
	switch len(sources) {
	case 0:
		return nil, nil
	case 1:
		return sources[0].Table.Feed(ctx, idb, sources[0].Models, p)
	}
	active := make([]bool, len(sources))
	counts := make([]int, len(sources)) // each table's records in the page, when known
	all := p
	all.Limit = 0
	if p.Limit > 0 {
		var b strings.Builder
		args := make([]any, 0, len(sources)+1)
		b.WriteString("SELECT part, version FROM (")
		for i, s := range sources {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			// Each part is a subquery in FROM, which SQLite allows with
			// ORDER BY and LIMIT where it refuses a parenthesised member.
			fmt.Fprintf(&b, "SELECT part, version FROM (?) AS f%d", i)
			args = append(args, s.Table.FeedKeys(idb, s.Models, p).ColumnExpr("? AS part", i))
		}
		b.WriteString(") AS feed ORDER BY version LIMIT ?")
		args = append(args, p.Limit)
		var parts []int
		var versions []int64
		if err := idb.NewRaw(b.String(), args...).Scan(ctx, &parts, &versions); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read versions of %q: %w", p.Owner, err)
		}
		if len(versions) == p.Limit {
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
	var out []Record
	for i, s := range sources {
		if !active[i] {
			continue
		}
		part := all
		part.expect = counts[i]
		recs, err := s.Table.Feed(ctx, idb, s.Models, part)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	slices.SortFunc(out, func(a, b Record) int { return int(a.Version - b.Version) })
	if p.Limit > 0 && len(out) > p.Limit {
		out = out[:p.Limit] // not reached: the versions read fixed the page
	}
	return out, nil
}

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
