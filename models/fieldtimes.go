package models

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/uptrace/bun"
)

// FieldTimes maps a record's top-level field names to the time each was
// last edited, for conflict policies that merge field by field. A field
// it does not name was edited at the record's modify_at when the record
// has it, and never when it does not; an entry for a field the data
// lacks says when the field was removed.
type FieldTimes map[string]time.Time

// Equal reports whether f and g hold the same entries (nil and empty are
// equal).
func (f FieldTimes) Equal(g FieldTimes) bool {
	return maps.EqualFunc(f, g, func(a, b time.Time) bool { return a.Equal(b) })
}

// WithFieldTimes wraps spec so that the store also keeps each record's
// [Record.FieldTimes] (in the table ferry_field_times, written in the same
// transaction as the record). Records of such a model cannot be written by
// [Tx.WriteIfNewer] (Features says so): every write names its times.
func WithFieldTimes(spec TableSpec) TableSpec { return fieldTimesSpec{spec} }

type fieldTimesSpec struct{ inner TableSpec }

func (s fieldTimesSpec) newTable(db *bun.DB) (Table, error) { return s.inner.newTable(db) }

// fieldTimesRow is one record's field times, stored as a JSON object of
// RFC 3339 times.
type fieldTimesRow struct {
	bun.BaseModel `bun:"table:ferry_field_times,alias:fft"`

	Owner string `bun:"owner,pk,type:varchar(255)"`
	Model string `bun:"model,pk,type:varchar(128)"`
	UID   string `bun:"uid,pk,type:varchar(64)"`
	Times string `bun:"times,type:text,notnull"`
}

// loadFieldTimes returns owner's field times of model's records among
// uids, by uid; records without any are absent.
func loadFieldTimes(ctx context.Context, idb bun.IDB, owner, model string, uids []string) (map[string]FieldTimes, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var rows []fieldTimesRow
	err := idb.NewSelect().Model(&rows).
		Where("owner = ?", owner).Where("model = ?", model).Where("uid IN (?)", bun.List(uids)).
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load field times of %s: %w", model, err)
	}
	out := make(map[string]FieldTimes, len(rows))
	for _, r := range rows {
		var ft FieldTimes
		if err := json.Unmarshal([]byte(r.Times), &ft); err != nil {
			return nil, fmt.Errorf("field times of %s/%s: %w", model, r.UID, err)
		}
		for k, t := range ft {
			ft[k] = t.UTC()
		}
		out[r.UID] = ft
	}
	return out, nil
}

// attachFieldTimes sets FieldTimes on the records of timed models among
// recs, reading one query per scope and model.
func attachFieldTimes(ctx context.Context, idb bun.IDB, recs []Record, timed func(model string) bool) error {
	type group struct{ owner, model string }
	at := map[group][]int{}
	var order []group
	for i := range recs {
		if !timed(recs[i].Model) {
			continue
		}
		g := group{recs[i].Owner, recs[i].Model}
		if _, ok := at[g]; !ok {
			order = append(order, g)
		}
		at[g] = append(at[g], i)
	}
	for _, g := range order {
		idx := at[g]
		uids := make([]string, len(idx))
		for j, i := range idx {
			uids[j] = recs[i].UID
		}
		times, err := loadFieldTimes(ctx, idb, g.owner, g.model, uids)
		if err != nil {
			return err
		}
		for _, i := range idx {
			recs[i].FieldTimes = times[recs[i].UID]
		}
	}
	return nil
}

// writeFieldTimes stores recs' field times (one model's): records with
// some replace their row, records without lose it.
func writeFieldTimes(ctx context.Context, idb bun.IDB, model string, recs []*Record) error {
	var rows []fieldTimesRow
	cleared := map[string][]string{} // owner → uids
	for _, r := range recs {
		if len(r.FieldTimes) == 0 {
			cleared[r.Owner] = append(cleared[r.Owner], r.UID)
			continue
		}
		utc := make(FieldTimes, len(r.FieldTimes))
		for k, t := range r.FieldTimes {
			utc[k] = t.UTC()
		}
		text, err := json.Marshal(utc)
		if err != nil {
			return fmt.Errorf("encode field times of %s/%s: %w", model, r.UID, err)
		}
		rows = append(rows, fieldTimesRow{Owner: r.Owner, Model: model, UID: r.UID, Times: string(text)})
	}
	if len(rows) > 0 {
		_, err := idb.NewInsert().Model(&rows).
			On("CONFLICT (owner, model, uid) DO UPDATE").Set("times = EXCLUDED.times").Exec(ctx)
		if err != nil {
			return fmt.Errorf("write field times of %s: %w", model, err)
		}
	}
	for owner, uids := range cleared {
		if err := deleteFieldTimes(ctx, idb, owner, model, uids); err != nil {
			return err
		}
	}
	return nil
}

// deleteFieldTimes removes owner's field times of model's uids.
func deleteFieldTimes(ctx context.Context, idb bun.IDB, owner, model string, uids []string) error {
	if len(uids) == 0 {
		return nil
	}
	_, err := idb.NewDelete().Model((*fieldTimesRow)(nil)).
		Where("owner = ?", owner).Where("model = ?", model).Where("uid IN (?)", bun.List(uids)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete field times of %s: %w", model, err)
	}
	return nil
}
