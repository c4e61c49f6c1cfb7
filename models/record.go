package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/uptrace/bun"
)

// Record is the storage-neutral form of one synced record: the envelope
// plus the model's data as a JSON object.
type Record struct {
	Model     string
	UID       string
	Owner     string
	ModifyAt  time.Time
	IsDeleted bool
	Version   int64
	Data      json.RawMessage
	// FieldTimes are the record's per-field edit times, for models whose
	// store keeps them ([WithFieldTimes]); nil otherwise.
	FieldTimes FieldTimes
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Value, when set, is Data already decoded into the typed model's
	// struct (a pointer), so a typed table need not decode it again.
	// Whoever changes Data must clear it.
	Value any
}

// Table reads and writes the records of one model. The framework calls it
// inside a transaction (idb is a bun.Tx) after it has locked the owner's
// scope, so implementations need no locking of their own.
type Table interface {
	// Load returns owner's stored records of model among uids, in any
	// order; missing uids are simply absent. Records are identified by
	// owner, model and uid: another owner's record with the same uid is
	// never returned.
	Load(ctx context.Context, idb bun.IDB, owner, model string, uids []string) ([]Record, error)
	// Insert stores a record that does not exist yet.
	Insert(ctx context.Context, idb bun.IDB, rec *Record) error
	// Update replaces the envelope and data of an existing record.
	Update(ctx context.Context, idb bun.IDB, rec *Record) error
	// Upsert writes records of one model in bulk: new ones are inserted,
	// and existing ones get their envelope and data replaced (server-only
	// columns and created_at are kept). The records' (owner, uid) keys
	// must be distinct.
	Upsert(ctx context.Context, idb bun.IDB, recs []*Record) error
	// Feed returns the records of models (a typed table's one model, or
	// the generic table's wanted ones) in the stretch p selects, in
	// version order: the table's share of an owner's changes. It stops at
	// p.Limit records and within p.MaxBytes, and reports whether records
	// were left.
	Feed(ctx context.Context, idb bun.IDB, models []string, p FeedParams) ([]Record, bool, error)
	// FeedKeys returns a query selecting the version column of the rows
	// Feed would return, for [ReadFeed] to find where a page ends.
	FeedKeys(idb bun.IDB, models []string, p FeedParams) *bun.SelectQuery
	// Tombstones returns up to limit tombstones last written before
	// before, for purging.
	Tombstones(ctx context.Context, idb bun.IDB, model string, before time.Time, limit int) ([]Record, error)
	// Delete removes owner's records of model for good (purged
	// tombstones).
	Delete(ctx context.Context, idb bun.IDB, owner, model string, uids []string) error
}

// GenericRecord is a row of the generic record table (plan B): models
// registered by JSON Schema alone share it, keyed by owner, model and uid.
type GenericRecord struct {
	bun.BaseModel `bun:"table:ferry_records,alias:fr"`

	Owner     string          `bun:"owner,pk,type:varchar(255)"`
	Model     string          `bun:"model,pk,type:varchar(128)"`
	UID       string          `bun:"uid,pk,type:varchar(64)"`
	ModifyAt  time.Time       `bun:"modify_at,notnull"`
	IsDeleted bool            `bun:"is_deleted,notnull"`
	Version   int64           `bun:"version,notnull"`
	Data      json.RawMessage `bun:"data,type:text,notnull"`
	CreatedAt time.Time       `bun:"created_at,notnull"`
	UpdatedAt time.Time       `bun:"updated_at,notnull"`
}

// GenericTable stores schema-only models in ferry_records. The zero value
// works; [NewGenericTable] also prepares its store-decided statement once
// instead of on every push.
type GenericTable struct {
	newer *newerStatement
	feed  *pgxFeedPlan // nil: read through bun
}

// NewGenericTable returns a GenericTable for db's dialect.
func NewGenericTable(db *bun.DB) GenericTable {
	t := GenericTable{feed: newPgxFeedPlan(db.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]()))}
	if st, ok := genericNewerShape(db); ok {
		t.newer = st
	}
	return t
}

func genericNewerShape(idb bun.IDB) (*newerStatement, bool) {
	return newerShape(idb.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]()),
		`"owner", "model", "uid"`, genericUpdateColumns, []string{"is_deleted", "data"})
}

var _ Table = GenericTable{}

// Load implements [Table].
func (GenericTable) Load(ctx context.Context, idb bun.IDB, owner, model string, uids []string) ([]Record, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var rows []GenericRecord
	err := idb.NewSelect().Model(&rows).
		Where("owner = ?", owner).
		Where("model = ?", model).
		Where("uid IN (?)", bun.List(uids)).
		Scan(ctx)
	if err != nil {
		return nil, err
	}
	return genericRecords(rows), nil
}

func genericRecords(rows []GenericRecord) []Record {
	out := make([]Record, len(rows))
	for i, r := range rows {
		out[i] = Record{
			Model: r.Model, UID: r.UID, Owner: r.Owner, ModifyAt: r.ModifyAt.UTC(),
			IsDeleted: r.IsDeleted, Version: r.Version, Data: r.Data,
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		}
	}
	return out
}

// Feed implements [Table].
func (t GenericTable) Feed(ctx context.Context, idb bun.IDB, models []string, p FeedParams) ([]Record, bool, error) {
	var row GenericRecord
	add := func(r *GenericRecord) (Record, error) {
		return genericRecords([]GenericRecord{*r})[0], nil
	}
	if rc := rawConnFrom(ctx); rc != nil && t.feed != nil {
		return feedPgx(ctx, rc, t.feed, models, p, &row, add)
	}
	unlimited := p
	unlimited.Limit = 0 // scanFeed limits
	q := feedWhere(idb.NewSelect().Model((*GenericRecord)(nil)), models, unlimited)
	return scanFeed(ctx, idb, q, p, &row, add)
}

// FeedKeys implements [Table].
func (GenericTable) FeedKeys(idb bun.IDB, models []string, p FeedParams) *bun.SelectQuery {
	return feedWhere(idb.NewSelect().Model((*GenericRecord)(nil)).Column("version"), models, p)
}

// Tombstones implements [Table].
func (t GenericTable) Tombstones(ctx context.Context, idb bun.IDB, model string, before time.Time, limit int) ([]Record, error) {
	var rows []GenericRecord
	err := idb.NewSelect().Model(&rows).Column("model", "uid", "owner", "version").
		Where("model = ?", model).Where("is_deleted = ?", true).Where("updated_at < ?", before).
		OrderExpr("owner, uid").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Record, len(rows))
	for i, r := range rows {
		out[i] = Record{Model: r.Model, UID: r.UID, Owner: r.Owner, Version: r.Version, IsDeleted: true}
	}
	return out, nil
}

// Delete implements [Table].
func (GenericTable) Delete(ctx context.Context, idb bun.IDB, owner, model string, uids []string) error {
	if len(uids) == 0 {
		return nil
	}
	_, err := idb.NewDelete().Model((*GenericRecord)(nil)).
		Where("owner = ?", owner).Where("model = ?", model).Where("uid IN (?)", bun.List(uids)).Exec(ctx)
	return err
}

// genericUpdateColumns are the columns a sync replaces in ferry_records.
var genericUpdateColumns = []string{"modify_at", "is_deleted", "version", "data", "updated_at"}

// CanWriteIfNewer implements [NewerWriter].
func (GenericTable) CanWriteIfNewer(idb bun.IDB) bool { return viaPgx(idb) }

// WriteIfNewer implements [NewerWriter]. Data is compared as stored text,
// which the framework keeps canonical.
func (t GenericTable) WriteIfNewer(ctx context.Context, idb bun.IDB, scope string, span VersionSpan, recs []*Record) ([]int64, error) {
	st := t.newer
	if st == nil {
		st, _ = genericNewerShape(idb)
	}
	rows := make([]GenericRecord, len(recs))
	for i, r := range recs {
		rows[i] = *toGeneric(r)
	}
	return st.run(ctx, idb, scope, span, recs, reflect.ValueOf(rows))
}

// Upsert implements [Table].
func (GenericTable) Upsert(ctx context.Context, idb bun.IDB, recs []*Record) error {
	rows := make([]GenericRecord, len(recs))
	for i, r := range recs {
		rows[i] = *toGeneric(r)
	}
	return upsertChunks(ctx, idb, len(recs), func(lo, hi int) *bun.InsertQuery {
		part := rows[lo:hi]
		return idb.NewInsert().Model(&part).On("CONFLICT (owner, model, uid) DO UPDATE")
	}, genericUpdateColumns)
}

// upsertChunks runs multi-row upserts of at most upsertChunk rows, setting
// cols from the incoming row on conflict. Chunks keep each statement well
// under SQLite's bound-parameter limit. A statement that wrote fewer rows
// than it carried fails the call with [ErrNotWritten].
func upsertChunks(ctx context.Context, idb bun.IDB, n int, query func(lo, hi int) *bun.InsertQuery, cols []string) error {
	for lo := 0; lo < n; lo += upsertChunk {
		hi := min(lo+upsertChunk, n)
		if err := checkWritten(upsertQuery(query(lo, hi), cols).Exec(ctx))(hi - lo); err != nil {
			return err
		}
	}
	return nil
}

const upsertChunk = 500

func upsertQuery(q *bun.InsertQuery, cols []string) *bun.InsertQuery {
	for _, c := range cols {
		q = q.Set("? = EXCLUDED.?", bun.Ident(c), bun.Ident(c))
	}
	return q
}

// checkWritten fails when a statement wrote fewer rows than it carried.
func checkWritten(res sql.Result, err error) func(want int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n != int64(want) {
			return fmt.Errorf("%w: %d of %d rows", ErrNotWritten, n, want)
		}
		return nil
	}
}

// ErrNotWritten reports a bulk upsert that skipped rows.
var ErrNotWritten = errors.New("models: some rows were not written")

func toGeneric(rec *Record) *GenericRecord {
	data := rec.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	return &GenericRecord{
		Model: rec.Model, UID: rec.UID, Owner: rec.Owner, ModifyAt: rec.ModifyAt,
		IsDeleted: rec.IsDeleted, Version: rec.Version, Data: data,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
}

// Insert implements [Table].
func (GenericTable) Insert(ctx context.Context, idb bun.IDB, rec *Record) error {
	_, err := idb.NewInsert().Model(toGeneric(rec)).Exec(ctx)
	return err
}

// Update implements [Table].
func (GenericTable) Update(ctx context.Context, idb bun.IDB, rec *Record) error {
	_, err := idb.NewUpdate().Model(toGeneric(rec)).
		Column(genericUpdateColumns...).
		WherePK().Exec(ctx)
	return err
}
