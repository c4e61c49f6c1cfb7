package client

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Key names a record: its owner, its model and its uid. The queue holds at
// most one change per key.
type Key struct {
	Owner string
	Model string
	UID   string
}

// Record is a record as the device keeps it.
type Record struct {
	Model string
	UID   string
	// Owner is the user the record belongs to (set by the server; for a
	// record created on this device, the client's [Config.Owner]).
	Owner string
	// ModifyAt is the time of the last change, in UTC with microseconds:
	// the device clock for a local change, the server's stored value for a
	// synced record.
	ModifyAt  time.Time
	IsDeleted bool
	// Version is the server's version of the record; 0 until the record
	// was first synced.
	Version int64
	// Data is the record's JSON object. A tombstone keeps the last data it
	// had.
	Data json.RawMessage
	// FieldsModifyAt says when top-level fields were last edited, where
	// that is not ModifyAt (the protocol's fields_modify_at): the client
	// fills it on every Put from what the Put changed, and the server
	// returns it for models whose conflict policy merges field by field.
	FieldsModifyAt map[string]time.Time
	// Synced reports whether the record is the server's state as last
	// seen, that is, it has no local change waiting to be pushed or
	// acknowledged.
	Synced bool
}

// Key returns the record's key.
func (r *Record) Key() Key { return Key{Owner: r.Owner, Model: r.Model, UID: r.UID} }

// Decode unmarshals the record's data into v.
func (r *Record) Decode(v any) error {
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", r.Model, r.UID, err)
	}
	return nil
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Data = slices.Clone(r.Data)
	c.FieldsModifyAt = maps.Clone(r.FieldsModifyAt)
	return &c
}

// Change is a queued local change: the latest local state of one key and
// the sequence number of the edit that produced it.
type Change struct {
	Key
	// Seq is the queue's sequence number for this entry. Every local
	// write of a key gives its entry a new, higher number, so an
	// acknowledgement for an older push can tell that the entry moved on.
	Seq       int64
	ModifyAt  time.Time
	IsDeleted bool
	Data      json.RawMessage
	// FieldsModifyAt are the record's field times (see
	// [Record.FieldsModifyAt]).
	FieldsModifyAt map[string]time.Time
}

// Ack acknowledges a pushed change. The store removes the queue entry of
// Key only when its sequence number still equals Seq; when it does and
// Record is not nil, Record (the server's state) replaces the local record
// and is marked synced. When the entry moved on (the record was edited
// again while the push was in flight) the store changes nothing for Key.
type Ack struct {
	Key    Key
	Seq    int64
	Record *Record
}

// ListParams selects local records for [Store.List].
type ListParams struct {
	// Owner and Model filter when not empty.
	Owner string
	Model string
	// IncludeDeleted also returns tombstones.
	IncludeDeleted bool
}

// PendingParams selects queued changes for [Store.Pending].
type PendingParams struct {
	// AfterSeq returns only entries with a higher sequence number.
	AfterSeq int64
	// Limit caps the number of entries; 0 means no limit.
	Limit int
}

// Store is a device's local database: records, the queue of local changes
// not yet synced (one entry per key), and the pull cursor. A store holds
// the data of one signed-in account; give each account its own store.
//
// Implementations must be safe for concurrent use, and every method must
// be atomic: a [Client] edits records from the application's goroutines
// while a sync acknowledges pushes and applies pulls. Records passed in
// and returned are copies; callers may keep and modify them.
type Store interface {
	// Get returns the record at key, tombstones included, or an error
	// matching [ErrNotFound].
	Get(ctx context.Context, key Key) (*Record, error)
	// List returns the records matching p, sorted by model, then uid.
	List(ctx context.Context, p ListParams) ([]*Record, error)
	// Write stores rec as a local, unsynced change and queues it,
	// replacing any queued change of the same key, in one step. It returns
	// the entry's new sequence number.
	Write(ctx context.Context, rec *Record) (seq int64, err error)
	// Pending returns queued changes in sequence order.
	Pending(ctx context.Context, p PendingParams) ([]Change, error)
	// Acknowledge applies push outcomes (see [Ack]) in one step and
	// returns how many queue entries it removed; the others had moved on.
	Acknowledge(ctx context.Context, acks []Ack) (removed int, err error)
	// ApplyRemote stores records pulled from the server as synced, in one
	// step, without queueing them. A record whose key has a queued change
	// is skipped, and so is one older (by version) than the synced record
	// already stored. It returns how many records it stored.
	ApplyRemote(ctx context.Context, recs []*Record) (int, error)
	// Forget removes the synced records of keys that have no queued
	// change; it is used after a reset to drop records the server no
	// longer has.
	Forget(ctx context.Context, keys []Key) error
	// Cursor returns the stored pull cursor, "" before the first
	// complete pull.
	Cursor(ctx context.Context) (string, error)
	// SetCursor stores the pull cursor.
	SetCursor(ctx context.Context, cursor string) error
}

// MemoryStore is a [Store] in memory, for tests and for apps that keep no
// data across restarts. Its zero value is not usable; call
// [NewMemoryStore].
type MemoryStore struct {
	mu      sync.Mutex
	records map[Key]*Record
	queue   map[Key]*Change
	seq     int64
	cursor  string
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: map[Key]*Record{}, queue: map[Key]*Change{}}
}

// Get implements [Store].
func (s *MemoryStore) Get(ctx context.Context, key Key) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[key]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// List implements [Store].
func (s *MemoryStore) List(ctx context.Context, p ListParams) ([]*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]*Record, 0, len(s.records))
	for k, r := range s.records {
		if p.Owner != "" && k.Owner != p.Owner || p.Model != "" && k.Model != p.Model || r.IsDeleted && !p.IncludeDeleted {
			continue
		}
		out = append(out, r.Clone())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *Record) int {
		if c := strings.Compare(a.Model, b.Model); c != 0 {
			return c
		}
		if c := strings.Compare(a.UID, b.UID); c != 0 {
			return c
		}
		return strings.Compare(a.Owner, b.Owner)
	})
	return out, nil
}

// Write implements [Store].
func (s *MemoryStore) Write(ctx context.Context, rec *Record) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := rec.Clone()
	r.Synced = false
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.records[r.Key()] = r
	s.queue[r.Key()] = &Change{
		Key: r.Key(), Seq: s.seq, ModifyAt: r.ModifyAt, IsDeleted: r.IsDeleted, Data: slices.Clone(r.Data),
		FieldsModifyAt: maps.Clone(r.FieldsModifyAt),
	}
	return s.seq, nil
}

// Pending implements [Store].
func (s *MemoryStore) Pending(ctx context.Context, p PendingParams) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]Change, 0, len(s.queue))
	for _, c := range s.queue {
		if c.Seq > p.AfterSeq {
			cc := *c
			cc.Data = slices.Clone(c.Data)
			out = append(out, cc)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Change) int { return cmp.Compare(a.Seq, b.Seq) })
	if p.Limit > 0 && len(out) > p.Limit {
		out = out[:p.Limit]
	}
	return out, nil
}

// Acknowledge implements [Store].
func (s *MemoryStore) Acknowledge(ctx context.Context, acks []Ack) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range acks {
		q, ok := s.queue[a.Key]
		if !ok || q.Seq != a.Seq {
			continue
		}
		delete(s.queue, a.Key)
		n++
		if a.Record != nil {
			r := a.Record.Clone()
			r.Owner, r.Model, r.UID = a.Key.Owner, a.Key.Model, a.Key.UID
			r.Synced = true
			s.records[a.Key] = r
		}
	}
	return n, nil
}

// ApplyRemote implements [Store].
func (s *MemoryStore) ApplyRemote(ctx context.Context, recs []*Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rec := range recs {
		k := rec.Key()
		if _, queued := s.queue[k]; queued {
			continue
		}
		if old, ok := s.records[k]; ok && old.Synced && old.Version > rec.Version {
			continue
		}
		r := rec.Clone()
		r.Synced = true
		s.records[k] = r
		n++
	}
	return n, nil
}

// Forget implements [Store].
func (s *MemoryStore) Forget(ctx context.Context, keys []Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, queued := s.queue[k]; queued {
			continue
		}
		if r, ok := s.records[k]; ok && r.Synced {
			delete(s.records, k)
		}
	}
	return nil
}

// Cursor implements [Store].
func (s *MemoryStore) Cursor(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor, nil
}

// SetCursor implements [Store].
func (s *MemoryStore) SetCursor(ctx context.Context, cursor string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursor = cursor
	return nil
}
