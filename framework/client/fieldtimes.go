package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
)

// Patch sets top-level fields of a record's data, keeping the others, and
// queues the change, as [Client.Put] of the merged data would: only the
// fields it names count as edited now, so a model whose conflict policy
// merges field by field keeps another device's concurrent edits of the
// other fields. The record must exist (an error matching [ErrNotFound]
// otherwise); patching a tombstone brings it back.
func (c *Client) Patch(ctx context.Context, model, uid string, fields map[string]any) (*Record, error) {
	key := c.key(model, uid)
	if err := checkKey(key.Model, key.UID); err != nil {
		return nil, err
	}
	set := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("client: patch %s/%s: field %q: %w", model, uid, k, err)
		}
		set[k] = raw
	}
	c.editMu.Lock()
	defer c.editMu.Unlock()
	prev, err := c.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("client: patch %s/%s: %w", model, uid, err)
	}
	data := map[string]json.RawMessage{}
	if len(prev.Data) > 0 {
		if err := json.Unmarshal(prev.Data, &data); err != nil {
			return nil, fmt.Errorf("client: patch %s/%s: stored data: %w", model, uid, err)
		}
	}
	for k, v := range set {
		data[k] = v
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("client: patch %s/%s: %w", model, uid, err)
	}
	return c.writeLocked(ctx, key, prev, func(rec *Record) { rec.Data, rec.IsDeleted = raw, false })
}

// maxRemovedFieldTimes is the server's framework.MaxRemovedFieldTimes.
const maxRemovedFieldTimes = 64

// editedFieldTimes returns next's field times after an edit of prev (nil
// for a new record): a top-level field the edit changed, added or removed
// was edited at next.ModifyAt; the others keep the time they had. Times
// equal to next.ModifyAt for fields next has are left out (the protocol
// implies them).
func editedFieldTimes(prev, next *Record) map[string]time.Time {
	if prev == nil {
		return nil
	}
	before, after := fieldsOf(prev.Data), fieldsOf(next.Data)
	out := map[string]time.Time{}
	keep := func(name string) {
		if t, ok := prev.FieldsModifyAt[name]; ok {
			out[name] = t
		} else if _, had := before[name]; had {
			out[name] = prev.ModifyAt
		}
	}
	for name, v := range after {
		if old, had := before[name]; had && jsonSame(old, v) {
			keep(name)
		} else {
			out[name] = next.ModifyAt
		}
	}
	for name := range before {
		if _, has := after[name]; !has {
			out[name] = next.ModifyAt // removed now
		}
	}
	for name := range prev.FieldsModifyAt {
		if _, seen := out[name]; !seen {
			keep(name) // removed earlier
		}
	}
	var removed []string
	for name, t := range out {
		_, has := after[name]
		if has && t.Equal(next.ModifyAt) {
			delete(out, name)
		}
		if !has {
			removed = append(removed, name)
		}
	}
	if len(removed) > maxRemovedFieldTimes {
		// The server keeps as many, the newest; so does the device.
		slices.SortFunc(removed, func(a, b string) int {
			if c := out[b].Compare(out[a]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		for _, name := range removed[maxRemovedFieldTimes:] {
			delete(out, name)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fieldsOf decodes a record's data into its top-level fields (none when
// it is not an object).
func fieldsOf(data json.RawMessage) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	if len(data) > 0 {
		_ = json.Unmarshal(data, &out)
	}
	return out
}

// jsonSame reports whether two JSON texts hold the same value.
func jsonSame(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true // the common case: a field the edit left as it was
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return string(a) == string(b)
	}
	ta, _ := json.Marshal(va)
	tb, _ := json.Marshal(vb)
	return string(ta) == string(tb)
}

func fieldTimesToWire(ft map[string]time.Time) map[string]wire.Time {
	if len(ft) == 0 {
		return nil
	}
	out := make(map[string]wire.Time, len(ft))
	for k, t := range ft {
		out[k] = wire.Time{Time: t}
	}
	return out
}

func fieldTimesFromWire(ft map[string]wire.Time) map[string]time.Time {
	if len(ft) == 0 {
		return nil
	}
	out := make(map[string]time.Time, len(ft))
	for k, t := range ft {
		out[k] = t.UTC()
	}
	return out
}
