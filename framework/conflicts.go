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

// ConflictEvent carries the conflicts one push transaction met in one
// model, in request order. A conflict is a change that met a stored record
// it did not simply follow: it lost, was merged, or overwrote a newer
// record. A change newer than the stored record that replaces it (the
// ordinary edit) and a retry of the stored state are not conflicts. The
// event is triggered once per model, inside the write's transaction (Tx)
// just before it commits, so a handler's own rows commit with the write and
// can be written in one statement (the conflict log does); for changes the
// store decided in one statement, which commits by itself, in a
// transaction of its own right after. A push that rolls back (AbortOnStale,
// an error) reports nothing. An error fails the push.
type ConflictEvent struct {
	hook.Event
	Context   context.Context
	Tx        bun.Tx
	Principal Principal
	// Model is the model of every conflict in Conflicts.
	Model     string
	Conflicts []ConflictReport
}

// ConflictReport is one conflict of a [ConflictEvent].
type ConflictReport struct {
	// Outcome is ConflictStale, ConflictMerged or ConflictOverwritten.
	Outcome string
	// Stored is the record as it was, Incoming the change as it came (at
	// the stored version), Result the record as it is now.
	Stored, Incoming, Result *Record
	// Fields are the top-level data fields whose values the two sides
	// disagree on, sorted; nil when a side has no data object.
	Fields []string
}

// OnConflict is triggered with the conflicts a push meets (see
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

// metConflict is a conflict waiting for its transaction's end to be
// reported.
type metConflict struct {
	outcome                  string
	stored, incoming, result *models.Record
}

// noteConflict queues a conflict of a model with conflict hooks.
func (a *App) noteConflict(met []metConflict, outcome string, stored, incoming, result *models.Record) []metConflict {
	if outcome == "" || !a.onConflict.HasHandlers(incoming.Model) {
		return met
	}
	return append(met, metConflict{outcome: outcome, stored: stored, incoming: incoming, result: result})
}

// reportConflicts triggers the conflict hooks once per model, the models
// in the order their first conflict came.
func (a *App) reportConflicts(ctx context.Context, tx bun.Tx, p Principal, met []metConflict) error {
	var order []string
	byModel := map[string][]ConflictReport{}
	for _, c := range met {
		in := wireRecord(c.incoming)
		in.Version = c.stored.Version
		m := c.incoming.Model
		if _, ok := byModel[m]; !ok {
			order = append(order, m)
		}
		byModel[m] = append(byModel[m], ConflictReport{Outcome: c.outcome, Stored: wireRecord(c.stored), Incoming: in,
			Result: wireRecord(c.result), Fields: differingFields(c.stored.Data, c.incoming.Data)})
	}
	for _, m := range order {
		ev := &ConflictEvent{Context: ctx, Tx: tx, Principal: p, Model: m, Conflicts: byModel[m]}
		if err := a.onConflict.Trigger(ev, nil, m); err != nil {
			return fmt.Errorf("conflict hook of %s: %w", m, err)
		}
	}
	return nil
}

// reportLost reports the stale changes of a store-decided statement that
// committed by itself, in a transaction of their own.
func (a *App) reportLost(ctx context.Context, p Principal, lost []metConflict) error {
	if len(lost) == 0 {
		return nil
	}
	tx, err := a.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := a.reportConflicts(ctx, tx.Bun(), p, lost); err != nil {
		return err
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
