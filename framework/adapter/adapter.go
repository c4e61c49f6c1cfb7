// Package adapter is the kit for protocol adapters: plugins that let a
// third-party client (WatermelonDB, RxDB, …) sync through Ferry in its own
// protocol, on the same core as Ferry's native routes. Ferry's own
// adapters, plugins/watermelon and plugins/rxdb, are built with it; an
// adapter outside this module uses it the same way.
//
// An adapter is an ordinary plugin ([framework.Plugin] with
// [framework.RouteMounter]) that serves its routes with
// [framework.App.Handler], reads bodies with
// [framework.ReadJSONBodyWithin], and then:
//
//   - turns each client document into a [framework.Change] with [Split]
//     (the document's "id" becomes the uid, the other fields the data),
//     stamped with the server's receive time [Now], since such clients send
//     no modify_at;
//   - applies the changes with [framework.App.PushWith], bringing the
//     protocol's own concurrency rule as PushOptions.Policy;
//   - answers records with [Flatten], the reverse of Split;
//   - for the changes the server refused, reads the server's state with
//     [ServerState] to answer the client with it, or makes that state news
//     again with [Resend] for protocols whose clients only learn through
//     their next pull.
//
// The functions are safe for concurrent use; they keep no state.
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

// NameRE is what a collection or table name of a client protocol may be
// (a WatermelonDB table, an RxDB collection) when it appears in a route:
// a letter or '_', then up to 63 letters, digits, '_' or '-'.
var NameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)

// Now is the server's receive time ([framework.Config.Now]) in the
// protocol's precision (UTC, microseconds): the modify_at of changes from
// clients that send none.
func Now(app *framework.App) framework.Time {
	return framework.Time{Time: app.Config().Now().UTC().Truncate(time.Microsecond)}
}

// Flatten turns a record into a client document: its data fields plus
// "id" (the uid). A data field named "id" is overwritten. It fails when
// the data is not a JSON object (null and empty data give a document with
// the id alone).
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

// Split takes a decoded client document (numbers as json.Number, as
// [framework.ReadJSONBodyWithin] decodes them) apart: its "id" and the
// remaining fields as the record's data, without the keys in strip (the
// protocol's own bookkeeping fields, such as "_status"). It returns a
// message for the client when the document is not an object or its id
// is not a non-empty string; the uid's form is checked later, by the push.
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

// Ref names one record of the caller: a model and a uid, in the caller's
// personal space or in the shared space Space.
type Ref struct {
	Model, UID string
	// Space is the shared space's uid; "" is the personal space.
	Space string
}

// ServerState returns the server's state of each record p may read,
// tombstones included, keyed by Ref, for answering a client whose change
// was refused. It reads with [framework.App.Read] and writes nothing: a
// record the server does not hold, one p may not read and one of a model
// the App does not have are all simply absent, which an adapter answers
// as a deleted record. It reads outside any transaction, so a record may
// change right after.
func ServerState(ctx context.Context, app *framework.App, p framework.Principal, refs []Ref) (map[Ref]*framework.Record, error) {
	out := make(map[Ref]*framework.Record, len(refs))
	type group struct{ space, model string }
	var groups []group
	uids := map[group][]string{}
	for _, r := range refs {
		g := group{r.Space, r.Model}
		if _, ok := uids[g]; !ok {
			groups = append(groups, g)
		}
		uids[g] = append(uids[g], r.UID)
	}
	for _, g := range groups {
		var recs []*framework.Record
		var err error
		if g.space == "" {
			recs, err = app.Read(ctx, p, g.model, uids[g])
		} else {
			recs, err = app.ReadInSpace(ctx, p, g.space, g.model, uids[g])
		}
		var pe *framework.Error
		if errors.As(err, &pe) && pe.Code == framework.CodeUnknownModel || errors.Is(err, framework.ErrForbidden) {
			continue // a space p does not read holds nothing p may see
		}
		if err != nil {
			return nil, fmt.Errorf("adapter: read server state: %w", err)
		}
		for _, rec := range recs {
			out[Ref{Model: g.model, UID: rec.UID, Space: g.space}] = rec
		}
	}
	return out, nil
}

// Resend makes the server's state of each record news again, for a
// protocol whose clients learn of a refusal only through their next pull:
// the record is written once more with a new version (a tombstone when the
// server holds nothing), so the next pull of every device brings it and
// corrects a device that kept a change the server refused. Records of
// another user are left alone and out of the answer, and so are refs the
// push refuses (an unknown model, an invalid uid). A record that changes
// between the read and the write is not overwritten: its new state is
// news already. A record of a model that merges field by field
// ([framework.UsesFieldTimes]) keeps its field times (only its modify_at
// moves), so the copy wins no field it did not already hold. It returns the records as now stored, keyed by Ref.
func Resend(ctx context.Context, app *framework.App, p framework.Principal, refs []Ref) (map[Ref]*framework.Record, error) {
	state, err := ServerState(ctx, app, p, refs)
	if err != nil {
		return nil, err
	}
	now := Now(app)
	var again []*framework.Change
	var againRefs []Ref
	seen := make(map[Ref]bool, len(refs))
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		ch := &framework.Change{Model: r.Model, UID: r.UID, Space: r.Space, ModifyAt: now, IsDeleted: true}
		if rec, ok := state[r]; ok {
			ch.IsDeleted = rec.IsDeleted
			if !rec.IsDeleted {
				ch.Data = rec.Data
			}
			if policy, err := app.Policy(r.Model); err == nil && framework.UsesFieldTimes(policy) {
				// The fields keep their times: written again, they must
				// not look newer than an edit the device has not sent yet.
				ch.FieldsModifyAt = keptFieldTimes(rec)
				if !rec.ModifyAt.Before(now.Time) {
					ch.ModifyAt = framework.Time{Time: rec.ModifyAt.Add(time.Microsecond)}
				}
			}
		}
		again = append(again, ch)
		againRefs = append(againRefs, r)
	}
	// The stored state is written again only if it is still the one read;
	// a record absent from the read that exists now was just written.
	unchanged := framework.PolicyFunc(func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
		if read, ok := state[Ref{Model: c.Model, UID: c.Stored.UID, Space: c.Stored.Space}]; ok && read.Version == c.Stored.Version {
			return framework.Resolution{Outcome: framework.TakeIncoming}, nil
		}
		return framework.Resolution{Outcome: framework.KeepStored}, nil
	})
	results, err := pushChunked(ctx, app, p, again, framework.PushOptions{Policy: unchanged})
	if err != nil {
		return nil, fmt.Errorf("adapter: re-send server state: %w", err)
	}
	out := make(map[Ref]*framework.Record, len(results))
	for i, res := range results {
		if (res.Status == framework.StatusApplied || res.Status == framework.StatusStale) && res.Record != nil {
			out[againRefs[i]] = res.Record
		}
	}
	return out, nil
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
// [framework.App.PushWith] with PushOptions.AbortOnStale: a change lost
// its conflict and nothing was written.
func IsConflict(err error) bool { return errors.Is(err, framework.ErrConflict) }
