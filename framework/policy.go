package framework

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ferrysync/ferry/models"
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
	// Schema is what the model's JSON Schema says of its top-level
	// fields (shared: read it, do not change it).
	Schema *ModelSchema
}

// Outcome is a policy's verdict.
type Outcome int

const (
	// KeepStored answers the change "stale"; the stored record wins.
	KeepStored Outcome = iota
	// TakeIncoming applies the change as sent.
	TakeIncoming
	// Merge applies Resolution.Data, a merge of both, at
	// Resolution.ModifyAt (default: the incoming change's).
	Merge
)

// Resolution is a policy's answer.
//
// Whatever the outcome, what is stored goes through the model's checks
// first: a merged record is validated like an incoming change (the
// model's JSON Schema, the data limits, then its Validate) and put in the
// model's canonical form; an invalid merge is the change's rejected, with
// the paths of what is wrong, and an error in the log, never stored. A
// resolution whose result is the stored record (same modify_at,
// is_deleted and canonical data) writes nothing and answers applied with
// the stored record: so a retried change that merged creates no new
// version, provided the merge is idempotent (merging the same change into
// its own result gives that result).
type Resolution struct {
	Outcome Outcome
	// Data is the merged data when Outcome is Merge; nil keeps the
	// incoming change's data (a merge of is_deleted alone).
	Data json.RawMessage
	// Deleted, when set with Merge, is the merged record's is_deleted
	// (otherwise the incoming change's).
	Deleted *bool
	// ModifyAt, when set with Merge, is the merged record's modify_at
	// (otherwise the incoming change's): a field-by-field merge keeps the
	// later of both.
	ModifyAt time.Time
	// FieldsModifyAt, when set with Merge on a model that keeps field
	// times ([FieldTimesUser]), are the merged record's; otherwise the
	// incoming change's are kept. None may be after the merged modify_at.
	FieldsModifyAt map[string]Time
}

// ConflictPolicy decides conflicts for one model. Resolve must be pure and
// deterministic (no I/O): a retried request gets the same answer. It is
// asked only when the store holds the record and the change does not
// repeat it (a retry is answered applied without asking).
//
// Policies are set per model ([ModelOptions].Policy), for the whole App
// (Config.DefaultPolicy) or for one push ([PushOptions].Policy); the
// default is [LastWriterWins].
type ConflictPolicy interface {
	Resolve(ctx context.Context, c *Conflict) (Resolution, error)
}

// StoreRuler is an optional interface of a [ConflictPolicy] that decides
// exactly as a rule the store can apply by itself, in the statement that
// writes ([models.Rule]). Where the store can (PostgreSQL, a model no
// apply hook concerns), a push of such a policy's model costs one
// statement per model and Resolve is not called; elsewhere Resolve is. A
// policy that says so must keep its word: Resolve's verdicts are the
// rule's ([models.Rule.Decide]). The framework asks once, when the policy
// is registered, and once per push for [PushOptions].Policy.
//
// [LastWriterWins] implements it; a [PolicyFunc] does not. A policy that
// wraps another (to log, to count) forwards it with [StoreRuleOf].
type StoreRuler interface {
	StoreRule() models.Rule
}

// StoreRuleOf returns the rule p lets the store apply by itself, or
// [models.NoRule] when p does not implement [StoreRuler].
func StoreRuleOf(p ConflictPolicy) models.Rule {
	if r, ok := p.(StoreRuler); ok {
		return r.StoreRule()
	}
	return models.NoRule
}

// PolicyFunc adapts a function to [ConflictPolicy].
type PolicyFunc func(ctx context.Context, c *Conflict) (Resolution, error)

// Resolve implements [ConflictPolicy].
func (f PolicyFunc) Resolve(ctx context.Context, c *Conflict) (Resolution, error) { return f(ctx, c) }

// LastWriterWins is the default policy: the incoming change wins when its
// modify_at is at or after the stored one, as in Ferry's original design
// ([models.NewerWins] states the rule). The store may apply it by itself.
type LastWriterWins struct{}

var (
	_ ConflictPolicy = LastWriterWins{}
	_ StoreRuler     = LastWriterWins{}
)

// Resolve implements [ConflictPolicy].
func (LastWriterWins) Resolve(_ context.Context, c *Conflict) (Resolution, error) {
	stored := models.Record{ModifyAt: c.Stored.ModifyAt.Time, IsDeleted: c.Stored.IsDeleted, Data: c.Stored.Data}
	incoming := models.Record{ModifyAt: c.Incoming.ModifyAt.Time, IsDeleted: c.Incoming.IsDeleted, Data: c.Incoming.Data}
	if models.NewerWins.Decide(&stored, &incoming) == models.Lose {
		return Resolution{Outcome: KeepStored}, nil
	}
	return Resolution{Outcome: TakeIncoming}, nil
}

// StoreRule implements [StoreRuler]: the store may decide last-writer-wins
// itself.
func (LastWriterWins) StoreRule() models.Rule { return models.NewerWins }
