package framework

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/internal/jsonvalue"
	"github.com/uptrace/bun"
)

// ValidateEvent is triggered for every incoming change before its data is
// validated, outside any transaction. Handlers may change the change
// (normalize an email, fill a default) or veto it by returning a
// *ValidationError (the change is rejected) or [ErrForbidden].
type ValidateEvent struct {
	hook.Event
	Context   context.Context
	Principal Principal
	Change    *Change
}

// ApplyEvent is triggered inside the write transaction, after the conflict
// policy decided to write, for every record about to be written. Record is
// what will be stored (handlers may modify its Data: what they set is
// checked like an incoming change's data, schema, Validate and canonical
// form, and invalid data rejects the change); Stored is the
// previous state or nil. The core write is the last link: work after
// e.Next() sees the record written. Returning an error undoes this
// record's write (a *ValidationError rejects it, [ErrForbidden] forbids it,
// anything else fails the request). Query through e.Tx, never the App's
// DB: on SQLite the transaction holds the only connection.
type ApplyEvent struct {
	hook.Event
	Context   context.Context
	Tx        bun.Tx
	Principal Principal
	Stored    *Record
	Record    *Record
}

// CommitEvent is triggered after a push transaction committed, with the
// records it wrote. It runs outside the transaction: the place for
// realtime notification, audit and webhooks. Its error is logged only.
// Commit hooks of concurrent pushes of one user may run in either order:
// a listener that needs version order (a change stream) reads the changes
// after its own position from the store instead of trusting the events'
// order.
type CommitEvent struct {
	hook.Event
	Context   context.Context
	Principal Principal
	Records   []*Record
}

// Change is one incoming change, decoded and checked for shape: the
// server's side of a [wire.Change], with what only the server uses
// (Assumed, and the data already decoded by the HTTP layer). The two
// convert with [NewChange] and [Change.Wire].
type Change struct {
	// OpID is echoed in the result when the client sent one.
	OpID  *string
	Model string
	UID   string
	// Space is the shared space the change writes to ("": the caller's
	// personal space).
	Space     string
	ModifyAt  Time
	IsDeleted bool
	// Data is the record's data; nil for a tombstone sent without data. A
	// hook that changes it assigns a new slice rather than editing this
	// one in place.
	Data json.RawMessage
	// FieldsModifyAt says when the device last edited top-level fields
	// ([wire.Change.FieldsModifyAt]); kept only for models whose policy
	// merges field by field ([UsesFieldTimes]).
	FieldsModifyAt map[string]Time
	// Assumed is, for optimistic-concurrency protocols, the state the
	// client believed the server held (see [Conflict.Assumed]).
	Assumed *Record

	// decoded is decodedFrom already decoded (numbers as json.Number),
	// when the HTTP layer had it, so validation does not decode it again;
	// it is stale once a hook has put another slice in Data.
	decoded     any
	decodedFrom json.RawMessage
}

// NewChange returns the server's change for a change off the wire. It
// shares w's OpID and Data.
func NewChange(w *wire.Change) *Change {
	return &Change{OpID: w.OpID, Model: w.Model, UID: w.UID, Space: w.Space, ModifyAt: w.ModifyAt, IsDeleted: w.IsDeleted, Data: w.Data,
		FieldsModifyAt: w.FieldsModifyAt}
}

// Wire returns the change as a client sends it; Assumed is not part of
// it. It shares ch's OpID and Data.
func (ch *Change) Wire() wire.Change {
	return wire.Change{OpID: ch.OpID, Model: ch.Model, UID: ch.UID, Space: ch.Space, ModifyAt: ch.ModifyAt, IsDeleted: ch.IsDeleted, Data: ch.Data,
		FieldsModifyAt: ch.FieldsModifyAt}
}

// decodedData returns Data decoded, decoding it only if needed.
func (ch *Change) decodedData() (any, error) {
	if ch.decoded != nil && sameSlice(ch.Data, ch.decodedFrom) {
		return ch.decoded, nil
	}
	if v, ok := jsonvalue.Parse(ch.Data); ok {
		return v, nil
	}
	var v any // encoding/json says what is wrong
	if err := decodeJSON(bytes.NewReader(ch.Data), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// sameSlice reports whether a and b are the same bytes in memory.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
