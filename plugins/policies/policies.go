// Package policies holds conflict policies beyond the framework's default
// ([framework.LastWriterWins]): each is a value usable per model
// ([framework.ModelOptions].Policy), as the App's default
// ([framework.Config].DefaultPolicy) or for one push
// ([framework.PushOptions].Policy), and each is pure and deterministic.
//
// The framework asks a policy only when the server holds the record and
// the change does not repeat it (a retry is answered applied first), and
// checks whatever it decides to store like an incoming change.
package policies

import (
	"context"

	"github.com/ferrysync/ferry/framework"
)

// FirstWriterWins keeps the first state the server stored: every later
// change to the record loses (answered stale with the stored record),
// whatever its modify_at, deletes included. It suits records that must
// not change once written: receipts, audit entries, signed forms.
type FirstWriterWins struct{}

var _ framework.ConflictPolicy = FirstWriterWins{}

// Resolve implements [framework.ConflictPolicy].
func (FirstWriterWins) Resolve(context.Context, *framework.Conflict) (framework.Resolution, error) {
	return framework.Resolution{Outcome: framework.KeepStored}, nil
}

// ClientWins applies every change as sent, even one whose modify_at is
// older than the stored record's: the last change to reach the server
// wins. It suits data with a single writer, whose device clock may be
// behind another's (a device that was reset), where arrival order is the
// true order.
type ClientWins struct{}

var _ framework.ConflictPolicy = ClientWins{}

// Resolve implements [framework.ConflictPolicy].
func (ClientWins) Resolve(context.Context, *framework.Conflict) (framework.Resolution, error) {
	return framework.Resolution{Outcome: framework.TakeIncoming}, nil
}

// ServerWins keeps the stored record against a change made without
// having seen it: the change applies only when it says it was made on
// the stored state ([framework.Conflict].Assumed holds the stored data and
// is_deleted, as RxDB's assumedMasterState does); otherwise it is
// answered stale with the stored record. Ferry's own protocol carries no
// assumed state, so there every change to an existing record loses, as
// with [FirstWriterWins].
type ServerWins struct{}

var _ framework.ConflictPolicy = ServerWins{}

// Resolve implements [framework.ConflictPolicy].
func (ServerWins) Resolve(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
	if a := c.Assumed; a != nil && a.IsDeleted == c.Stored.IsDeleted && framework.JSONEqual(a.Data, c.Stored.Data) {
		return framework.Resolution{Outcome: framework.TakeIncoming}, nil
	}
	return framework.Resolution{Outcome: framework.KeepStored}, nil
}
