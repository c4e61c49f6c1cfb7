package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// The outcomes of a conflict ([ConflictEvent.Outcome]).
const (
	// ConflictStale: the incoming change lost; the stored record stays.
	ConflictStale = "stale"
	// ConflictMerged: the policy merged both sides into a new record.
	ConflictMerged = "merged"
	// ConflictOverwritten: the incoming change replaced a stored record at
	// least as new as it by modify_at (a policy such as ClientWins).
	ConflictOverwritten = "overwritten"
)

// ConflictEvent is a change that met a stored record it did not simply
// follow: it lost, was merged, or overwrote a newer record. A change newer
// than the stored record that replaces it (the ordinary edit) and a retry
// of the stored state are not conflicts. It runs inside the write's
// transaction (Tx), so a handler's own rows commit with the write (the
// conflict log plugin records it there); for a change the store decided
// in one statement, which commits by itself, in a transaction of its own
// right after. An error fails the push.
type ConflictEvent struct {
	hook.Event
	Context   context.Context
	Tx        bun.Tx
	Principal Principal
	// Outcome is ConflictStale, ConflictMerged or ConflictOverwritten.
	Outcome string
	// Stored is the record as it was, Incoming the change as it came (at
	// the stored version), Result the record as it is now.
	Stored, Incoming, Result *Record
	// Fields are the top-level data fields whose values the two sides
	// disagree on, sorted; nil when a side has no data object.
	Fields []string
}

// OnConflict is triggered for every conflict a push meets (see
// [ConflictEvent]); tags are model names. Binding a handler for a model
// keeps the store from deciding its pushes alone only where it could not
// report them (it still does for last-writer-wins).
func (a *App) OnConflict() *hook.Hook[*ConflictEvent] { return &a.onConflict }

// conflictOutcome names the conflict of a resolution: "" for a clean
// apply.
func conflictOutcome(o Outcome, stored, incoming *models.Record) string {
	switch o {
	case KeepStored:
		return ConflictStale
	case Merge:
		return ConflictMerged
	case TakeIncoming:
		if !incoming.ModifyAt.After(stored.ModifyAt) {
			return ConflictOverwritten
		}
	}
	return ""
}

// reportConflict triggers the conflict hooks of model m, if any.
func (a *App) reportConflict(ctx context.Context, tx bun.Tx, p Principal, outcome string, stored, incoming, result *models.Record) error {
	if outcome == "" || !a.onConflict.HasHandlers(incoming.Model) {
		return nil
	}
	in := wireRecord(incoming)
	in.Version = stored.Version
	ev := &ConflictEvent{Context: ctx, Tx: tx, Principal: p, Outcome: outcome,
		Stored: wireRecord(stored), Incoming: in, Result: wireRecord(result), Fields: differingFields(stored.Data, incoming.Data)}
	if err := a.onConflict.Trigger(ev, nil, incoming.Model); err != nil {
		return fmt.Errorf("conflict hook of %s: %w", incoming.Model, err)
	}
	return nil
}

// lostConflict is a change the store's statement refused (stale), to be
// reported after it committed.
type lostConflict struct{ stored, incoming *models.Record }

// reportLost triggers the conflict hooks for the stale changes of a
// store-decided push, in a transaction of their own.
func (a *App) reportLost(ctx context.Context, p Principal, lost []lostConflict) error {
	if len(lost) == 0 {
		return nil
	}
	tx, err := a.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, l := range lost {
		if err := a.reportConflict(ctx, tx.Bun(), p, ConflictStale, l.stored, l.incoming, l.stored); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// differingFields lists the top-level fields of two data objects whose
// values differ (present on one side only included).
func differingFields(a, b json.RawMessage) []string {
	var ma, mb map[string]any
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return nil
	}
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || !reflect.DeepEqual(va, vb) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
