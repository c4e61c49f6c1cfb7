package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/ferrysync/ferry/framework/wire"
)

// Push result statuses of the wire protocol ([wire.StatusApplied] and
// the others).
const (
	StatusApplied   = wire.StatusApplied
	StatusStale     = wire.StatusStale
	StatusRejected  = wire.StatusRejected
	StatusForbidden = wire.StatusForbidden
)

// SyncResult counts what one [Client.Sync] did.
type SyncResult struct {
	// Pushed is the number of changes sent (each counted once, however
	// many times its request was retried), and Applied, Stale, Rejected
	// and Forbidden how the server answered them.
	Pushed, Applied, Stale, Rejected, Forbidden int
	// Requeued counts changes edited again while their push was in
	// flight; they stay queued and are pushed again.
	Requeued int
	// Pulled is the number of records received, Stored how many of them
	// were written to the store (a record with a queued local change is
	// not).
	Pulled, Stored int
	// Reset reports that the server required a pull from the start.
	Reset bool
	// Removed lists the shared spaces the user lost: the device dropped
	// their records, and reported their queued changes to
	// Config.OnRejected as forbidden (counted in Forbidden).
	Removed []string
	// MissingBlobs lists, once each, the blobs ("sha256:<hex>") that
	// pushed records refer to and the server does not hold yet (the
	// results' missing_blobs, from a server with the blobs plugin): hand
	// them to the uploader (plugins/blobs/blobclient's Device.Want).
	MissingBlobs []string
}

// fromWire is the device's record for a record off the wire.
func fromWire(w *wire.Record) *Record {
	return &Record{
		Model: w.Model, UID: w.UID, Owner: w.Owner, ModifyAt: w.ModifyAt.UTC(),
		IsDeleted: w.IsDeleted, Version: w.Version, Data: w.Data, FieldsModifyAt: fieldTimesFromWire(w.FieldsModifyAt),
	}
}

// Sync pushes the queued local changes, then pulls the server's changes
// since the stored cursor (see the package documentation). Concurrent
// calls are serialized. Local edits may continue during a sync: an edit
// made while its record's push is in flight stays queued and is pushed
// later in the same sync.
//
// On error, what was acknowledged stays acknowledged and the rest stays
// queued; calling Sync again is always safe. A 401 is returned as an error
// matching [ErrUnauthenticated].
func (c *Client) Sync(ctx context.Context) (SyncResult, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var res SyncResult
	if err := c.push(ctx, &res); err != nil {
		return res, fmt.Errorf("client: sync: push: %w", err)
	}
	if err := c.pull(ctx, &res); err != nil {
		return res, fmt.Errorf("client: sync: pull: %w", err)
	}
	return res, nil
}

// push sends the queue in batches, in sequence order. Paging by sequence
// number makes every round progress: an entry edited during a round gets
// a higher number and comes up again in a later round.
func (c *Client) push(ctx context.Context, res *SyncResult) error {
	var after int64
	batch := c.maxBatch
	for {
		pending, err := c.store.Pending(ctx, PendingParams{AfterSeq: after, Limit: batch})
		if err != nil {
			return fmt.Errorf("read queue: %w", err)
		}
		if len(pending) == 0 {
			return nil
		}
		cursor, err := c.store.Cursor(ctx)
		if err != nil {
			return fmt.Errorf("read cursor: %w", err)
		}
		results, next, err := c.pushBatch(ctx, pending, cursor)
		if isTooLarge(err) {
			if len(pending) > 1 {
				batch = max(1, len(pending)/2)
				continue
			}
			// One change alone is too large: it can never be stored.
			if _, err := c.store.Acknowledge(ctx, []Ack{{Key: pending[0].Key, Seq: pending[0].Seq}}); err != nil {
				return fmt.Errorf("acknowledge: %w", err)
			}
			res.Rejected++
			c.reject(ctx, Rejection{Change: pending[0], Status: StatusRejected, Code: CodeTooLarge,
				Errors: []FieldError{{Path: "", Message: "the change is larger than the server accepts"}}})
			after = pending[0].Seq
			continue
		}
		if err != nil {
			return err
		}
		res.Pushed += len(pending)
		if err := c.acknowledge(ctx, pending, results, res); err != nil {
			return err
		}
		// The server moved the cursor past this push's own writes (only
		// when that skips nothing else), so the pull does not bring them
		// back. Stored after the acknowledgements: the records are in.
		if next != "" && next != cursor {
			if err := c.store.SetCursor(ctx, next); err != nil {
				return fmt.Errorf("store cursor: %w", err)
			}
		}
		after = pending[len(pending)-1].Seq
	}
}

// pushBatch sends one push request, carrying the device's cursor, and
// checks that the answer matches it. It returns the results and the
// cursor the server answered ("" when none).
func (c *Client) pushBatch(ctx context.Context, pending []Change, cursor string) ([]wire.Result, string, error) {
	body := wire.PushRequest{DeviceID: c.deviceID, Cursor: cursor, Changes: make([]wire.Change, len(pending))}
	for i, p := range pending {
		op := strconv.FormatInt(p.Seq, 10)
		body.Changes[i] = wire.Change{
			OpID: &op, Model: p.Model, UID: p.UID, Space: spaceOf(p.Owner),
			ModifyAt: wire.Time{Time: p.ModifyAt}, IsDeleted: p.IsDeleted,
			FieldsModifyAt: fieldTimesToWire(p.FieldsModifyAt),
		}
		// A tombstone travels without data: the server keeps the data it
		// has, and a delete cannot be refused over a field's value.
		if !p.IsDeleted {
			body.Changes[i].Data = p.Data
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, "", fmt.Errorf("encode push: %w", err)
	}
	var out wire.PushResponse
	err = c.do(ctx, http.MethodPost, "/push", nil, raw, &out)
	var pe *Error
	if errors.As(err, &pe) && pe.Code == wire.CodeInvalidCursor && cursor != "" {
		// A cursor the server no longer understands must not block the
		// push: send it without; the pull then starts over.
		return c.pushBatch(ctx, pending, "")
	}
	if err != nil {
		return nil, "", err
	}
	if len(out.Results) != len(pending) {
		return nil, "", fmt.Errorf("server answered %d results for %d changes", len(out.Results), len(pending))
	}
	for i, r := range out.Results {
		ch := body.Changes[i]
		if r.Model != ch.Model || r.UID != ch.UID || (r.OpID != nil && *r.OpID != *ch.OpID) {
			return nil, "", fmt.Errorf("result %d is for %s/%s, not for the change sent, %s/%s", i, r.Model, r.UID, ch.Model, ch.UID)
		}
		// The server sets the owner; a different one means Config.Owner
		// is not the signed-in user, and the store would fill with
		// duplicates under two owners.
		if r.Record != nil && r.Record.Owner != "" && r.Record.Owner != pending[i].Owner {
			return nil, "", fmt.Errorf("%s/%s is owned by %q on the server, but was queued for %q: is Config.Owner the signed-in user's id?",
				ch.Model, ch.UID, r.Record.Owner, pending[i].Owner)
		}
	}
	return out.Results, out.Cursor, nil
}

// acknowledge stores the outcome of a push and reports refused changes.
func (c *Client) acknowledge(ctx context.Context, pending []Change, results []wire.Result, res *SyncResult) error {
	acks := make([]Ack, 0, len(pending))
	var refused []Rejection
	for i, r := range results {
		p := pending[i]
		switch r.Status {
		case StatusApplied, StatusStale:
			if r.Status == StatusApplied {
				res.Applied++
			} else {
				res.Stale++
			}
			for _, b := range r.MissingBlobs {
				if !slices.Contains(res.MissingBlobs, b) {
					res.MissingBlobs = append(res.MissingBlobs, b)
				}
			}
			var rec *Record
			if r.Record != nil {
				rec = fromWire(r.Record)
			} else {
				rec = &Record{Model: p.Model, UID: p.UID, Owner: p.Owner, ModifyAt: p.ModifyAt, IsDeleted: p.IsDeleted, Data: p.Data,
					FieldsModifyAt: p.FieldsModifyAt}
			}
			acks = append(acks, Ack{Key: p.Key, Seq: p.Seq, Record: rec})
		case StatusRejected, StatusForbidden:
			if r.Status == StatusRejected {
				res.Rejected++
			} else {
				res.Forbidden++
			}
			acks = append(acks, Ack{Key: p.Key, Seq: p.Seq})
			refused = append(refused, Rejection{Change: p, Status: r.Status, Errors: r.Errors, Code: r.Code})
		default:
			// A status this client does not know: keep the change queued.
		}
	}
	removed, err := c.store.Acknowledge(ctx, acks)
	if err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	res.Requeued += len(acks) - removed
	for _, r := range refused {
		c.reject(ctx, r)
	}
	return nil
}

func (c *Client) reject(ctx context.Context, r Rejection) {
	if c.onRejected != nil {
		c.onRejected(ctx, r)
	}
}

// pull pulls every page after the stored cursor and stores the new cursor
// after the last one. On reset_required (or a cursor the server no longer
// understands) it starts again from an empty cursor, once. After a pull
// from an empty cursor it drops the synced local records the server did
// not send.
func (c *Client) pull(ctx context.Context, res *SyncResult) error {
	cursor, err := c.store.Cursor(ctx)
	if err != nil {
		return fmt.Errorf("read cursor: %w", err)
	}
	// A pull from the start (the first one, or after a reset) notes what
	// it receives, and then drops the synced local records it did not: a
	// device whose first pull comes after pushes holds acknowledged
	// records the server may have deleted and purged since.
	var seen map[Key]bool
	if cursor == "" {
		seen = map[Key]bool{}
	}
	// A pull that stops after applying a page may have brought records of
	// a space its stored cursor does not cover: the next complete pull
	// sweeps.
	complete := false
	defer func() {
		if !complete {
			c.spacesSwept = false
		}
	}()
	var spaces []string
	for {
		page, err := c.pullPage(ctx, cursor)
		if err != nil && seen == nil && cursor != "" && needsReset(err) {
			// The stored cursor stays until the pull from the start is
			// complete: if it is interrupted, the next sync meets the same
			// answer and starts over, so the records the server no longer
			// has are still forgotten.
			res.Reset = true
			cursor, seen = "", map[Key]bool{}
			continue
		}
		if err != nil {
			return err
		}
		for _, uid := range page.Removed {
			if err := c.dropSpace(ctx, uid, res); err != nil {
				return err
			}
		}
		recs := make([]*Record, 0, len(page.Changes))
		var gone []Key
		for _, w := range page.Changes {
			rec := fromWire(w)
			if w.Gone {
				// It left the device's subscriptions: drop it (a local
				// edit waiting to be pushed stays).
				gone = append(gone, rec.Key())
				continue
			}
			recs = append(recs, rec)
			if seen != nil {
				seen[rec.Key()] = true
			}
		}
		n, err := c.store.ApplyRemote(ctx, recs)
		if err != nil {
			return fmt.Errorf("apply pulled records: %w", err)
		}
		if len(gone) > 0 {
			if err := c.store.Forget(ctx, gone); err != nil {
				return fmt.Errorf("drop records that left the subscriptions: %w", err)
			}
		}
		res.Pulled += len(recs)
		res.Stored += n
		if page.HasMore && (page.Cursor == "" || page.Cursor == cursor) {
			return errors.New("the server said has_more without moving the cursor")
		}
		if page.Cursor != "" {
			cursor = page.Cursor
		}
		if !page.HasMore {
			spaces = page.Spaces
			break
		}
	}
	if err := c.sweepSpaces(ctx, spaces); err != nil {
		return err
	}
	if seen != nil {
		if err := c.forgetUnseen(ctx, seen); err != nil {
			return err
		}
	}
	if err := c.store.SetCursor(ctx, cursor); err != nil {
		return fmt.Errorf("store cursor: %w", err)
	}
	complete = true
	return nil
}

func (c *Client) pullPage(ctx context.Context, cursor string) (*wire.PullResponse, error) {
	q := url.Values{wire.QueryCursor: {cursor}, wire.QueryDeviceID: {c.deviceID}}
	if c.pullLimit > 0 {
		q.Set(wire.QueryLimit, strconv.Itoa(c.pullLimit))
	}
	for _, s := range c.subs {
		q.Add("subscription", s)
	}
	var page wire.PullResponse
	if len(q.Encode()) > wire.MaxPullURL && !c.noPullBody.Load() {
		body, err := json.Marshal(wire.PullRequest{Cursor: cursor, Limit: c.pullLimit, Subscriptions: c.subs, DeviceID: c.deviceID})
		if err != nil {
			return nil, fmt.Errorf("client: encode pull: %w", err)
		}
		err = c.do(ctx, http.MethodPost, "/pull", nil, body, &page)
		if err == nil {
			return &page, nil
		}
		if pe := (*Error)(nil); !errors.As(err, &pe) || pe.Code != wire.CodeNotFound && pe.Code != wire.CodeMethodNotAllowed {
			return nil, err
		}
		c.noPullBody.Store(true) // a server from before POST /sync/pull
	}
	if err := c.do(ctx, http.MethodGet, "/pull", q, nil, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// needsReset reports whether err asks for a pull from the start.
func needsReset(err error) bool {
	var pe *Error
	return errors.Is(err, ErrResetRequired) || errors.As(err, &pe) && pe.Code == wire.CodeInvalidCursor
}

// forgetUnseen drops the synced records a complete pull from the start did
// not deliver: the server no longer has them (purged tombstones) or no
// longer lets this user read them.
func (c *Client) forgetUnseen(ctx context.Context, seen map[Key]bool) error {
	all, err := c.store.List(ctx, ListParams{IncludeDeleted: true})
	if err != nil {
		return fmt.Errorf("list after reset: %w", err)
	}
	var gone []Key
	for _, r := range all {
		if r.Synced && !seen[r.Key()] {
			gone = append(gone, r.Key())
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := c.store.Forget(ctx, gone); err != nil {
		return fmt.Errorf("forget records after reset: %w", err)
	}
	return nil
}
