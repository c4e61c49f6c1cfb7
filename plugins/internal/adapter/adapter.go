// Package adapter holds what Ferry's protocol adapter plugins
// (plugins/watermelon, plugins/rxdb) share: turning a flat client document
// into a [framework.Change] and back, stamping the server's receive time,
// and reading or re-sending the server's state of records a client must
// be corrected about.
package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/ferrysync/ferry/framework"
)

// NameRE is what a WatermelonDB table or RxDB collection name may be.
var NameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)

// Now is the server's receive time in the protocol's precision (UTC,
// microseconds); these clients send no modify_at.
func Now(app *framework.App) framework.Time {
	return framework.Time{Time: app.Config().Now().UTC().Truncate(time.Microsecond)}
}

// Flatten turns a record into a client document: its data fields plus
// "id" (the uid). Fields named like the added keys are overwritten.
func Flatten(rec *framework.Record) (map[string]json.RawMessage, error) {
	doc := map[string]json.RawMessage{}
	if len(rec.Data) > 0 && !bytes.Equal(bytes.TrimSpace(rec.Data), []byte("null")) {
		if err := json.Unmarshal(rec.Data, &doc); err != nil {
			return nil, fmt.Errorf("adapter: data of %s/%s is not a JSON object: %w", rec.Model, rec.UID, err)
		}
	}
	if doc == nil {
		doc = map[string]json.RawMessage{}
	}
	id, _ := json.Marshal(rec.UID)
	doc["id"] = id
	return doc, nil
}

// Split takes a decoded client document (numbers as json.Number) apart:
// its "id" and the remaining fields as the record's data, without the
// keys in strip. It returns a message for the client when the document
// is not an object or its id is not a string.
func Split(v any, strip ...string) (id string, data json.RawMessage, msg string) {
	obj, ok := v.(map[string]any)
	if !ok {
		return "", nil, "a record must be a JSON object"
	}
	id, ok = obj["id"].(string)
	if !ok || id == "" {
		return "", nil, "id must be a non-empty string"
	}
	fields := make(map[string]any, len(obj))
	for k, val := range obj {
		fields[k] = val
	}
	delete(fields, "id")
	for _, k := range strip {
		delete(fields, k)
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return id, nil, "the record is not valid JSON"
	}
	return id, raw, ""
}

// keepStored decides every conflict for the stored record, so a push
// through it reads the server's state without changing it.
var keepStored = framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
	return framework.Resolution{Outcome: framework.KeepStored}, nil
})

// takeIncoming writes the incoming change whatever is stored.
var takeIncoming = framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
	return framework.Resolution{Outcome: framework.TakeIncoming}, nil
})

// Ref names one record of the caller.
type Ref struct {
	Model, UID string
}

// ServerState returns the server's state of each record, for answering a
// client whose change was refused. A record the server does not hold
// gets a tombstone, written so that every protocol (and the native pull)
// agrees the record does not exist; records of another user are left out.
// The answer is keyed by Ref.
func ServerState(ctx context.Context, app *framework.App, p framework.Principal, refs []Ref) (map[Ref]*framework.Record, error) {
	out, _, err := serverState(ctx, app, p, refs)
	return out, err
}

// serverState is [ServerState] that also tells which tombstones it wrote.
func serverState(ctx context.Context, app *framework.App, p framework.Principal, refs []Ref) (map[Ref]*framework.Record, map[Ref]bool, error) {
	out := map[Ref]*framework.Record{}
	created := map[Ref]bool{}
	if len(refs) == 0 {
		return out, created, nil
	}
	now := Now(app)
	changes := make([]*framework.Change, len(refs))
	for i, r := range refs {
		changes[i] = &framework.Change{Model: r.Model, UID: r.UID, ModifyAt: now, IsDeleted: true}
	}
	results, err := pushChunked(ctx, app, p, changes, framework.PushOptions{Policy: keepStored})
	if err != nil {
		return nil, nil, fmt.Errorf("adapter: read server state: %w", err)
	}
	for i, res := range results {
		if (res.Status == framework.StatusApplied || res.Status == framework.StatusStale) && res.Record != nil {
			out[refs[i]] = res.Record
			created[refs[i]] = res.Status == framework.StatusApplied
		}
	}
	return out, created, nil
}

// Resend makes the server's state of each record news again: it is
// written once more with a new version (a tombstone when the server holds
// nothing), so the next pull of every device brings it, correcting a
// device that kept a change the server refused. It returns the records as
// now stored.
func Resend(ctx context.Context, app *framework.App, p framework.Principal, refs []Ref) (map[Ref]*framework.Record, error) {
	state, created, err := serverState(ctx, app, p, refs)
	if err != nil {
		return nil, err
	}
	var again []*framework.Change
	var againRefs []Ref
	now := Now(app)
	for _, r := range refs {
		rec, ok := state[r]
		if !ok || created[r] {
			continue // another user's record, or a tombstone written just now
		}
		ch := &framework.Change{Model: r.Model, UID: r.UID, ModifyAt: now, IsDeleted: rec.IsDeleted}
		if !rec.IsDeleted {
			ch.Data = rec.Data
		}
		again = append(again, ch)
		againRefs = append(againRefs, r)
	}
	if len(again) == 0 {
		return state, nil
	}
	results, err := pushChunked(ctx, app, p, again, framework.PushOptions{Policy: takeIncoming})
	if err != nil {
		return nil, fmt.Errorf("adapter: re-send server state: %w", err)
	}
	for i, res := range results {
		if res.Status == framework.StatusApplied && res.Record != nil {
			state[againRefs[i]] = res.Record
		}
	}
	return state, nil
}

// pushChunked pushes changes in pushes of at most the App's MaxChanges:
// a client's push may be refused in larger numbers than one push takes
// (a flood of deletions over the user's quota).
func pushChunked(ctx context.Context, app *framework.App, p framework.Principal, changes []*framework.Change, opts framework.PushOptions) ([]framework.Result, error) {
	step := max(1, app.Config().MaxChanges)
	out := make([]framework.Result, 0, len(changes))
	for lo := 0; lo < len(changes); lo += step {
		res, err := app.PushWith(ctx, p, changes[lo:min(lo+step, len(changes))], opts)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// IsConflict reports whether err is the all-or-nothing abort of
// [framework.App.PushWith].
func IsConflict(err error) bool { return errors.Is(err, framework.ErrConflict) }
