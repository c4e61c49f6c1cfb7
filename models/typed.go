package models

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/ferrysync/ferry/internal/jsonvalue"
	"github.com/uptrace/bun"
)

// TypedTable stores the records of one typed model (plan A) in the model's
// own bun table. P is a pointer to the model struct, which embeds [Base].
//
// Data travels as the struct's JSON encoding; on update only the base
// columns and the columns whose fields appear in that encoding are written,
// so server-only fields (a password hash tagged `json:"-"`) survive syncs.
type TypedTable[T any, P interface {
	*T
	BaseHolder
}] struct {
	*TypedCodec[T, P]
	dataColumns []string
	feed        *pgxFeedPlan // nil: read through bun
	newer       *newerStatement
	newerOK     bool // the data columns can be compared in SQL
}

// TypedCodec converts between a typed model's values and [Record]s: data
// is the struct's JSON encoding (fields tagged `json:"-"` stay out), the
// envelope its [Base]. It needs no database.
type TypedCodec[T any, P interface {
	*T
	BaseHolder
}] struct{}

// NewTypedCodec returns the codec of T.
func NewTypedCodec[T any, P interface {
	*T
	BaseHolder
}]() *TypedCodec[T, P] {
	return &TypedCodec[T, P]{}
}

// NewTypedTable inspects T's bun table and checks that it embeds Base.
func NewTypedTable[T any, P interface {
	*T
	BaseHolder
}](db *bun.DB) (*TypedTable[T, P], error) {
	typ := reflect.TypeOf((*T)(nil)).Elem()
	if typ.Kind() != reflect.Struct {
		return nil, fmt.Errorf("models: %s is not a struct", typ)
	}
	table := db.Table(typ)
	have := map[string]bool{}
	var data []string
	for _, f := range table.Fields {
		have[f.Name] = true
		if IsBaseColumn(f.Name) {
			continue
		}
		if tag := f.StructField.Tag.Get("json"); tag == "-" {
			continue
		}
		data = append(data, f.Name)
	}
	for _, c := range baseColumns {
		if !have[c] {
			return nil, fmt.Errorf("models: %s lacks column %q: embed models.Base in it", typ, c)
		}
	}
	t := &TypedTable[T, P]{TypedCodec: NewTypedCodec[T, P](), dataColumns: data, feed: newPgxFeedPlan(table)}
	t.newer, t.newerOK = newerShape(table, `"owner", "uid"`, t.updateColumns(), append([]string{"is_deleted"}, data...))
	return t, nil
}

// Load implements [Table].
func (t *TypedTable[T, P]) Load(ctx context.Context, idb bun.IDB, owner, model string, uids []string) ([]Record, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var rows []T
	err := idb.NewSelect().Model(&rows).
		Where("?TableAlias.owner = ?", owner).Where("?TableAlias.uid IN (?)", bun.List(uids)).Scan(ctx)
	if err != nil {
		return nil, err
	}
	return t.records(model, rows)
}

func (t *TypedTable[T, P]) records(model string, rows []T) ([]Record, error) {
	out := make([]Record, 0, len(rows))
	for i := range rows {
		rec, err := t.ToRecord(model, P(&rows[i]))
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Feed implements [Table]; models holds the table's model name.
func (t *TypedTable[T, P]) Feed(ctx context.Context, idb bun.IDB, models []string, p FeedParams) ([]Record, bool, error) {
	var row T
	add := func(v *T) (Record, error) { return t.ToRecord(models[0], P(v)) }
	if rc := rawConnFrom(ctx); rc != nil && t.feed != nil {
		return feedPgx(ctx, rc, t.feed, nil, p, &row, add)
	}
	unlimited := p
	unlimited.Limit = 0 // scanFeed limits
	q := feedWhere(idb.NewSelect().Model((*T)(nil)), nil, unlimited)
	return scanFeed(ctx, idb, q, p, &row, add)
}

// FeedKeys implements [Table].
func (t *TypedTable[T, P]) FeedKeys(idb bun.IDB, _ []string, p FeedParams) *bun.SelectQuery {
	return feedWhere(idb.NewSelect().Model((*T)(nil)).Column("version"), nil, p)
}

// ToRecord encodes one typed value as a [Record].
func (t *TypedCodec[T, P]) ToRecord(model string, v P) (Record, error) {
	b := v.SyncBase()
	data, err := jsonvalue.Marshal(v)
	if err != nil {
		return Record{}, fmt.Errorf("encode %s/%s: %w", model, b.ID, err)
	}
	return Record{
		Model: model, UID: b.ID, Owner: b.OwnerID, ModifyAt: b.ModifiedAt.UTC(),
		IsDeleted: b.IsDeleted, Version: b.Version, Data: data,
		CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC(),
	}, nil
}

// FromRecord decodes a record's data into a new typed value and fills its
// base fields.
func (t *TypedCodec[T, P]) FromRecord(rec *Record) (P, error) {
	v, decoded := rec.Value.(P)
	if !decoded || v == nil {
		v, decoded = P(new(T)), false
	}
	if !decoded && len(rec.Data) > 0 {
		if err := jsonvalue.Unmarshal(rec.Data, v); err != nil {
			return nil, err
		}
	}
	*v.SyncBase() = Base{
		ID: rec.UID, OwnerID: rec.Owner, ModifiedAt: rec.ModifyAt, IsDeleted: rec.IsDeleted,
		Version: rec.Version, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	return v, nil
}

// Insert implements [Table].
func (t *TypedTable[T, P]) Insert(ctx context.Context, idb bun.IDB, rec *Record) error {
	v, err := t.FromRecord(rec)
	if err != nil {
		return err
	}
	_, err = idb.NewInsert().Model(v).Exec(ctx)
	return err
}

// Update implements [Table].
func (t *TypedTable[T, P]) Update(ctx context.Context, idb bun.IDB, rec *Record) error {
	v, err := t.FromRecord(rec)
	if err != nil {
		return err
	}
	_, err = idb.NewUpdate().Model(v).Column(t.updateColumns()...).WherePK().Exec(ctx)
	return err
}

// Upsert implements [Table].
func (t *TypedTable[T, P]) Upsert(ctx context.Context, idb bun.IDB, recs []*Record) error {
	rows := make([]T, len(recs))
	for i, r := range recs {
		v, err := t.FromRecord(r)
		if err != nil {
			return err
		}
		rows[i] = *v
	}
	return upsertChunks(ctx, idb, len(recs), func(lo, hi int) *bun.InsertQuery {
		part := rows[lo:hi]
		return idb.NewInsert().Model(&part).On("CONFLICT (owner, uid) DO UPDATE")
	}, t.updateColumns())
}

// updateColumns are the columns a sync replaces: the envelope and the data.
func (t *TypedTable[T, P]) updateColumns() []string {
	return append([]string{"modify_at", "is_deleted", "version", "updated_at"}, t.dataColumns...)
}

// CanWriteIfNewer implements [NewerWriter].
func (t *TypedTable[T, P]) CanWriteIfNewer(idb bun.IDB) bool { return t.newerOK && viaPgx(idb) }

// WriteIfNewer implements [NewerWriter].
func (t *TypedTable[T, P]) WriteIfNewer(ctx context.Context, idb bun.IDB, scope string, span VersionSpan, recs []*Record) ([]int64, error) {
	rows := make([]T, len(recs))
	for i, r := range recs {
		v, err := t.FromRecord(r)
		if err != nil {
			return nil, err
		}
		rows[i] = *v
	}
	return t.newer.run(ctx, idb, scope, span, recs, reflect.ValueOf(rows))
}

// Tombstones implements [Table].
func (t *TypedTable[T, P]) Tombstones(ctx context.Context, idb bun.IDB, model string, before time.Time, limit int) ([]Record, error) {
	var rows []T
	err := idb.NewSelect().Model(&rows).
		Where("?TableAlias.is_deleted = ?", true).Where("?TableAlias.updated_at < ?", before).
		OrderExpr("?TableAlias.owner, ?TableAlias.uid").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(rows))
	for i := range rows {
		b := P(&rows[i]).SyncBase()
		out = append(out, Record{Model: model, UID: b.ID, Owner: b.OwnerID, Version: b.Version, IsDeleted: true})
	}
	return out, nil
}

// Delete implements [Table].
func (t *TypedTable[T, P]) Delete(ctx context.Context, idb bun.IDB, owner, _ string, uids []string) error {
	if len(uids) == 0 {
		return nil
	}
	_, err := idb.NewDelete().Model((*T)(nil)).Where("owner = ?", owner).Where("uid IN (?)", bun.List(uids)).Exec(ctx)
	return err
}

// InsertValue stores a whole typed value, server-only fields included; the
// framework uses it for server-side writes such as creating an account.
func (t *TypedTable[T, P]) InsertValue(ctx context.Context, idb bun.IDB, v P) error {
	_, err := idb.NewInsert().Model(v).Exec(ctx)
	return err
}

// insertValue implements the store's InsertValue for T: v is a P.
func (t *TypedTable[T, P]) insertValue(ctx context.Context, idb bun.IDB, model string, v any) (Record, error) {
	pv, ok := v.(P)
	if !ok {
		return Record{}, fmt.Errorf("models: insert %s: %T is not a %T", model, v, P(nil))
	}
	if err := t.InsertValue(ctx, idb, pv); err != nil {
		return Record{}, err
	}
	return t.ToRecord(model, pv)
}

// CreateTable creates T's table, its feed index and its usage triggers
// (see [EnsureUsageTriggers]) when they do not exist yet, and gives a table
// an earlier release created the key T declares ([UpgradeKeys]).
func (t *TypedTable[T, P]) CreateTable(ctx context.Context, idb bun.IDB) error {
	if _, err := idb.NewCreateTable().Model((*T)(nil)).IfNotExists().Exec(ctx); err != nil {
		return err
	}
	if err := UpgradeKeys(ctx, idb, (*T)(nil)); err != nil {
		return err
	}
	if err := createFeedIndex(ctx, idb, (*T)(nil)); err != nil {
		return err
	}
	return EnsureUsageTriggers(ctx, idb, (*T)(nil))
}
