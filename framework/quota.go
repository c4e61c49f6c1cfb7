package framework

import (
	"context"
	"fmt"

	"github.com/ferrysync/ferry/models"
)

// Quota bounds what one user stores. A zero field is unlimited, so the
// zero Quota is no quota at all.
//
// Records counts the user's rows in every model, tombstones included (a
// tombstone is a row until it is purged); Bytes counts their size, each
// row [models.RowOverhead] bytes plus its data as stored (the JSON text of
// a schema-only model; the text form of a typed model's own columns).
// A change that would take the user over either limit is answered
// rejected with code quota_exceeded; a change that grows neither count
// (an update that shrinks a record, deleting a stored record) is always
// accepted, so a full account can always clean up.
type Quota struct {
	MaxRecords int64
	MaxBytes   int64
}

// limited reports whether q limits anything.
func (q Quota) limited() bool { return q.MaxRecords > 0 || q.MaxBytes > 0 }

// admits reports whether usage u may grow by g: a count that grows must
// stay within its limit.
func (q Quota) admits(u, g models.Usage) bool {
	if g.Records > 0 && q.MaxRecords > 0 && u.Records+g.Records > q.MaxRecords {
		return false
	}
	if g.Bytes > 0 && q.MaxBytes > 0 && u.Bytes+g.Bytes > q.MaxBytes {
		return false
	}
	return true
}

// exceeded is the error a change over q is rejected with.
func (q Quota) exceeded() *Error {
	return &Error{Code: CodeQuotaExceeded, Message: fmt.Sprintf(
		"this change would exceed your storage quota (%s); delete records to make room", q)}
}

// String describes the limits.
func (q Quota) String() string {
	switch {
	case q.MaxRecords > 0 && q.MaxBytes > 0:
		return fmt.Sprintf("%d records, %d bytes", q.MaxRecords, q.MaxBytes)
	case q.MaxRecords > 0:
		return fmt.Sprintf("%d records", q.MaxRecords)
	case q.MaxBytes > 0:
		return fmt.Sprintf("%d bytes", q.MaxBytes)
	}
	return "unlimited"
}

// Usage is what one user stores, in the units of [Quota].
type Usage struct {
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
}

// Usage returns what userID stores now (zero for a user who never wrote).
// The counts are exact either way: with usage accounting on
// (Config.UsageAccounting) the store keeps them in the transaction of
// every write, server inserts and purges included, and Usage reads one
// row; with it off, Usage counts the user's rows in every record table
// (an index range scan per table: slower, in proportion to what the user
// stores).
func (a *App) Usage(ctx context.Context, userID string) (Usage, error) {
	u, err := a.store.Usage(ctx, userID)
	if err != nil {
		return Usage{}, fmt.Errorf("framework: usage of %s: %w", userID, err)
	}
	return Usage(u), nil
}

// QuotaOf returns userID's quota: Config.QuotaFor's answer when set, else
// Config.Quota.
func (a *App) QuotaOf(ctx context.Context, userID string) (Quota, error) {
	if a.cfg.QuotaFor == nil {
		return a.cfg.Quota, nil
	}
	q, err := a.cfg.QuotaFor(ctx, userID)
	if err != nil {
		return Quota{}, fmt.Errorf("framework: quota of %s: %w", userID, err)
	}
	return q, nil
}

// growth is what writing next over stored (nil: a new row) adds to the
// owner's usage. It is exact for schema-only models, whose stored data is
// the JSON text; for typed models the JSON encoding stands in for the
// columns' text, so the check is close rather than exact, and the counts
// read at the next push (kept by the store) correct any difference.
func growth(stored, next *models.Record) models.Usage {
	g := models.Usage{Bytes: rowSize(next)}
	if stored == nil {
		g.Records = 1
	} else {
		g.Bytes -= rowSize(stored)
	}
	return g
}

func rowSize(r *models.Record) int64 { return models.RowOverhead + int64(len(r.Data)) }

// newerGuard is the usage guard of a store-decided push under q: its
// growth bound is every change a new row (nil when q limits nothing).
func newerGuard(q Quota, preps []*prepared) *models.UsageGuard {
	if !q.limited() {
		return nil
	}
	g := &models.UsageGuard{Limit: models.Usage{Records: q.MaxRecords, Bytes: q.MaxBytes}}
	for _, pr := range preps {
		if pr != nil {
			g.Growth.Records++
			g.Growth.Bytes += rowSize(&pr.rec)
		}
	}
	return g
}
