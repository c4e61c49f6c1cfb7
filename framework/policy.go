package framework

import (
	"context"
	"encoding/json"
)

// Conflict is what a conflict policy decides on: an incoming change to a
// record the server already holds.
type Conflict struct {
	Model string
	// Stored is the server's current state of the record.
	Stored *Record
	// Incoming is the change as the client sent it (owner and version are
	// the stored ones).
	Incoming *Record
	// Assumed is the state the client believed the server held when it made
	// the change, for protocols with optimistic concurrency (RxDB's
	// assumedMasterState, WatermelonDB's last pull); nil when unknown.
	Assumed *Record
}

// Outcome is a policy's verdict.
type Outcome int

const (
	// KeepStored answers the change "stale"; the stored record wins.
	KeepStored Outcome = iota
	// TakeIncoming applies the change as sent.
	TakeIncoming
	// Merge applies Resolution.Data, a merge of both.
	Merge
)

// Resolution is a policy's answer.
type Resolution struct {
	Outcome Outcome
	// Data is the merged data when Outcome is Merge.
	Data json.RawMessage
	// Deleted, when set with Merge, is the merged record's is_deleted
	// (otherwise the incoming change's).
	Deleted *bool
}

// ConflictPolicy decides conflicts for one model. Resolve must be pure and
// deterministic (no I/O): a retried request gets the same answer.
type ConflictPolicy interface {
	Resolve(ctx context.Context, c *Conflict) (Resolution, error)
}

// PolicyFunc adapts a function to [ConflictPolicy].
type PolicyFunc func(ctx context.Context, c *Conflict) (Resolution, error)

// Resolve implements [ConflictPolicy].
func (f PolicyFunc) Resolve(ctx context.Context, c *Conflict) (Resolution, error) { return f(ctx, c) }

// LastWriterWins is the default policy: the incoming change wins when its
// modify_at is at or after the stored one, as in Ferry's original design.
type LastWriterWins struct{}

var _ ConflictPolicy = LastWriterWins{}

// Resolve implements [ConflictPolicy].
func (LastWriterWins) Resolve(_ context.Context, c *Conflict) (Resolution, error) {
	if c.Incoming.ModifyAt.Before(c.Stored.ModifyAt.Time) {
		return Resolution{Outcome: KeepStored}, nil
	}
	return Resolution{Outcome: TakeIncoming}, nil
}
