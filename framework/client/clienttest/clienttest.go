// Package clienttest holds test helpers for the Go client SDK: a
// conformance suite that every [client.Store] implementation must pass,
// unchanged, so the memory store and a file-backed store behave alike.
package clienttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
)

// TestStore runs the store conformance suite. newStore returns a new,
// empty store for each subtest; it should register its own cleanup.
func TestStore(t *testing.T, newStore func(t *testing.T) client.Store) {
	t.Helper()
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	rec := func(uid, title string) *client.Record {
		return &client.Record{
			Model: "data.Note", UID: uid, Owner: "u1", ModifyAt: at,
			Data: json.RawMessage(fmt.Sprintf(`{"title":%q}`, title)),
		}
	}
	key := func(uid string) client.Key { return client.Key{Owner: "u1", Model: "data.Note", UID: uid} }
	ctx := context.Background()

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, key("nope")); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("Get of a missing record: %v, want ErrNotFound", err)
		}
		if cur, err := s.Cursor(ctx); err != nil || cur != "" {
			t.Fatalf("cursor of an empty store: %q, %v", cur, err)
		}
	})

	t.Run("FieldTimesTravelWithRecords", func(t *testing.T) {
		s := newStore(t)
		r := rec("f", "x")
		r.FieldsModifyAt = map[string]time.Time{"body": at.Add(-time.Second), "gone": at.Add(-time.Minute)}
		seq := mustWrite(t, s, r)
		got, err := s.Get(ctx, key("f"))
		if err != nil || len(got.FieldsModifyAt) != 2 || !got.FieldsModifyAt["body"].Equal(at.Add(-time.Second)) {
			t.Fatalf("Get: %+v, %v", got, err)
		}
		p := mustPending(t, s, client.PendingParams{})
		if len(p) != 1 || !p[0].FieldsModifyAt["gone"].Equal(at.Add(-time.Minute)) {
			t.Fatalf("the queued change lost its field times: %+v", p)
		}
		// The server's record replaces them, none included.
		server := rec("f", "y")
		server.Version = 3
		if _, err := s.Acknowledge(ctx, []client.Ack{{Key: key("f"), Seq: seq, Record: server}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, key("f")); got.FieldsModifyAt != nil {
			t.Fatalf("after the ack: %v", got.FieldsModifyAt)
		}
		pulled := rec("f", "z")
		pulled.Version = 4
		pulled.FieldsModifyAt = map[string]time.Time{"title": at.Add(-time.Hour)}
		if _, err := s.ApplyRemote(ctx, []*client.Record{pulled}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, key("f")); !got.FieldsModifyAt["title"].Equal(at.Add(-time.Hour)) {
			t.Fatalf("after a pull: %v", got.FieldsModifyAt)
		}
	})

	t.Run("WriteQueuesOneEntryPerKey", func(t *testing.T) {
		s := newStore(t)
		var last int64
		for i := range 10 {
			seq, err := s.Write(ctx, rec("a", fmt.Sprint("edit ", i)))
			if err != nil {
				t.Fatal(err)
			}
			if seq <= last {
				t.Fatalf("sequence %d after %d", seq, last)
			}
			last = seq
		}
		if _, err := s.Write(ctx, rec("b", "other")); err != nil {
			t.Fatal(err)
		}
		p := mustPending(t, s, client.PendingParams{})
		if len(p) != 2 || p[0].UID != "a" || p[0].Seq != last || string(p[0].Data) != `{"title":"edit 9"}` || p[1].UID != "b" {
			t.Fatalf("pending = %+v", p)
		}
		if !p[0].ModifyAt.Equal(at) || p[0].Owner != "u1" || p[0].Model != "data.Note" {
			t.Fatalf("pending entry lost its envelope: %+v", p[0])
		}
		got, err := s.Get(ctx, key("a"))
		if err != nil || got.Synced || string(got.Data) != `{"title":"edit 9"}` {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})

	t.Run("PendingOrderAfterAndLimit", func(t *testing.T) {
		s := newStore(t)
		for _, uid := range []string{"c", "a", "b"} {
			mustWrite(t, s, rec(uid, uid))
		}
		mustWrite(t, s, rec("c", "c again")) // c moves to the end
		p := mustPending(t, s, client.PendingParams{})
		if uids(p) != "a,b,c" {
			t.Fatalf("order %s, want a,b,c", uids(p))
		}
		if got := uids(mustPending(t, s, client.PendingParams{Limit: 2})); got != "a,b" {
			t.Fatalf("limit 2: %s", got)
		}
		if got := uids(mustPending(t, s, client.PendingParams{AfterSeq: p[0].Seq})); got != "b,c" {
			t.Fatalf("after a: %s", got)
		}
	})

	t.Run("AcknowledgeOnlyTheSequenceSent", func(t *testing.T) {
		s := newStore(t)
		seqA := mustWrite(t, s, rec("a", "sent"))
		seqB := mustWrite(t, s, rec("b", "sent"))
		seqC := mustWrite(t, s, rec("c", "refused"))
		mustWrite(t, s, rec("b", "edited in flight"))
		server := rec("a", "canonical")
		server.Version, server.Owner = 7, "u1"
		serverB := rec("b", "sent")
		serverB.Version = 8
		n, err := s.Acknowledge(ctx, []client.Ack{
			{Key: key("a"), Seq: seqA, Record: server},
			{Key: key("b"), Seq: seqB, Record: serverB},
			{Key: key("c"), Seq: seqC},
		})
		if err != nil || n != 2 {
			t.Fatalf("Acknowledge removed %d, %v; want 2", n, err)
		}
		a, _ := s.Get(ctx, key("a"))
		if !a.Synced || a.Version != 7 || string(a.Data) != `{"title":"canonical"}` {
			t.Fatalf("a = %+v", a)
		}
		b, _ := s.Get(ctx, key("b"))
		if b.Synced || string(b.Data) != `{"title":"edited in flight"}` {
			t.Fatalf("b, edited in flight, = %+v", b)
		}
		c, _ := s.Get(ctx, key("c"))
		if c == nil || c.Synced {
			t.Fatalf("c, refused, = %+v", c)
		}
		if got := uids(mustPending(t, s, client.PendingParams{})); got != "b" {
			t.Fatalf("queue %s, want b", got)
		}
	})

	t.Run("ApplyRemote", func(t *testing.T) {
		s := newStore(t)
		mustWrite(t, s, rec("local", "pending"))
		newer := rec("synced", "v5")
		newer.Version = 5
		if _, err := s.ApplyRemote(ctx, []*client.Record{newer}); err != nil {
			t.Fatal(err)
		}
		older := rec("synced", "v3")
		older.Version = 3
		remoteLocal := rec("local", "server")
		remoteLocal.Version = 9
		tomb := rec("tomb", "gone")
		tomb.Version, tomb.IsDeleted = 10, true
		n, err := s.ApplyRemote(ctx, []*client.Record{older, remoteLocal, tomb})
		if err != nil || n != 1 {
			t.Fatalf("ApplyRemote stored %d, %v; want 1 (the tombstone)", n, err)
		}
		if r, _ := s.Get(ctx, key("synced")); r.Version != 5 || !r.Synced {
			t.Errorf("an older version replaced a newer one: %+v", r)
		}
		if r, _ := s.Get(ctx, key("local")); r.Synced || string(r.Data) != `{"title":"pending"}` {
			t.Errorf("a pulled record replaced a pending change: %+v", r)
		}
		if r, _ := s.Get(ctx, key("tomb")); r == nil || !r.IsDeleted || !r.Synced {
			t.Errorf("tombstone = %+v", r)
		}
		if got := uids(mustPending(t, s, client.PendingParams{})); got != "local" {
			t.Errorf("ApplyRemote queued something: %s", got)
		}
		live, err := s.List(ctx, client.ListParams{Model: "data.Note"})
		if err != nil || len(live) != 2 || live[0].UID != "local" || live[1].UID != "synced" {
			t.Errorf("List = %v, %v", live, err)
		}
		all, err := s.List(ctx, client.ListParams{IncludeDeleted: true})
		if err != nil || len(all) != 3 {
			t.Errorf("List with tombstones = %d, %v", len(all), err)
		}
		if other, _ := s.List(ctx, client.ListParams{Model: "data.Setting"}); len(other) != 0 {
			t.Errorf("List filtered by model returned %d", len(other))
		}
	})

	t.Run("Forget", func(t *testing.T) {
		s := newStore(t)
		mustWrite(t, s, rec("pending", "x"))
		synced := rec("synced", "x")
		synced.Version = 1
		if _, err := s.ApplyRemote(ctx, []*client.Record{synced}); err != nil {
			t.Fatal(err)
		}
		if err := s.Forget(ctx, []client.Key{key("pending"), key("synced"), key("missing")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, key("synced")); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("synced record not forgotten: %v", err)
		}
		if _, err := s.Get(ctx, key("pending")); err != nil {
			t.Errorf("pending record forgotten: %v", err)
		}
	})

	t.Run("Cursor", func(t *testing.T) {
		s := newStore(t)
		for _, c := range []string{"abc", "", "def"} {
			if err := s.SetCursor(ctx, c); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Cursor(ctx); err != nil || got != c {
				t.Fatalf("cursor %q, %v; want %q", got, err, c)
			}
		}
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := newStore(t)
		r := rec("a", "x")
		mustWrite(t, s, r)
		r.Data[2] = 'X'
		got, _ := s.Get(ctx, key("a"))
		got.Data[2] = 'Y'
		p := mustPending(t, s, client.PendingParams{})
		p[0].Data[2] = 'Z'
		again, _ := s.Get(ctx, key("a"))
		if string(again.Data) != `{"title":"x"}` || string(mustPending(t, s, client.PendingParams{})[0].Data) != `{"title":"x"}` {
			t.Fatalf("the store shares memory with its callers: %s", again.Data)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Write(cctx, rec("a", "x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Write with a cancelled context: %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					if _, err := s.Write(ctx, rec(fmt.Sprintf("k%d", i%5), fmt.Sprint(g, i))); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		p := mustPending(t, s, client.PendingParams{})
		if len(p) != 5 {
			t.Fatalf("%d queue entries for 5 keys", len(p))
		}
		seen := map[int64]bool{}
		for _, c := range p {
			if seen[c.Seq] {
				t.Fatalf("sequence %d used twice", c.Seq)
			}
			seen[c.Seq] = true
		}
	})
}

func mustWrite(t *testing.T, s client.Store, r *client.Record) int64 {
	t.Helper()
	seq, err := s.Write(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func mustPending(t *testing.T, s client.Store, p client.PendingParams) []client.Change {
	t.Helper()
	out, err := s.Pending(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func uids(cs []client.Change) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += ","
		}
		s += c.UID
	}
	return s
}
