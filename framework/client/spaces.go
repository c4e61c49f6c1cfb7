package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ferrysync/ferry/framework/wire"
)

// The built-in models of shared spaces (the server's framework.SpaceModel
// and framework.MemberModel).
const (
	SpaceModel  = "ferry.Space"
	MemberModel = "ferry.Member"
)

// The roles of a space's members.
const (
	RoleReader = "reader"
	RoleWriter = "writer"
	RoleAdmin  = "admin"
)

// SpaceOwner is the [Record.Owner] (and [Key.Owner]) of the records of
// the shared space uid ([wire.SpaceOwner]).
func SpaceOwner(uid string) string { return wire.SpaceOwner(uid) }

// spaceOf returns the space uid of an owner, "" for the personal space.
func spaceOf(owner string) string { return wire.SpaceOf(owner) }

// Space is a handle on the records of one shared space on this device:
// its writes are queued and synced like the personal space's, and name the
// space on the wire. Get one with [Client.Space] or [Client.CreateSpace].
type Space struct {
	c   *Client
	uid string
}

// Space returns the handle of the shared space uid. The device holds its
// records once the user is a member and has synced.
func (c *Client) Space(uid string) *Space { return &Space{c: c, uid: uid} }

// CreateSpace creates a shared space locally, with a random uid, and
// queues it; the server makes the user its first admin at the push.
func (c *Client) CreateSpace(ctx context.Context, name string) (*Space, error) {
	s := c.Space(NewUID())
	if _, err := s.Put(ctx, SpaceModel, s.uid, map[string]any{"name": name}); err != nil {
		return nil, err
	}
	return s, nil
}

// UID is the space's uid.
func (s *Space) UID() string { return s.uid }

func (s *Space) key(model, uid string) Key {
	return Key{Owner: SpaceOwner(s.uid), Model: model, UID: uid}
}

// Put is [Client.Put] in the space.
func (s *Space) Put(ctx context.Context, model, uid string, data any) (*Record, error) {
	if err := checkKey(SpaceModel, s.uid); err != nil {
		return nil, fmt.Errorf("client: space: %w", err)
	}
	return s.c.put(ctx, s.key(model, uid), data)
}

// Delete is [Client.Delete] in the space.
func (s *Space) Delete(ctx context.Context, model, uid string) error {
	return s.c.delete(ctx, s.key(model, uid))
}

// Get is [Client.Get] in the space.
func (s *Space) Get(ctx context.Context, model, uid string) (*Record, error) {
	return s.c.get(ctx, s.key(model, uid))
}

// List is [Client.List] in the space.
func (s *Space) List(ctx context.Context, model string) ([]*Record, error) {
	return s.c.list(ctx, SpaceOwner(s.uid), model)
}

// SetMember gives the user userID the role in the space (an admin's
// right; the server answers others forbidden, through Config.OnRejected).
func (s *Space) SetMember(ctx context.Context, userID, role string) error {
	_, err := s.Put(ctx, MemberModel, userID, map[string]string{"role": role})
	return err
}

// RemoveMember removes userID from the space; removing oneself is leaving.
func (s *Space) RemoveMember(ctx context.Context, userID string) error {
	return s.Delete(ctx, MemberModel, userID)
}

// SpaceInfo is a shared space the device holds.
type SpaceInfo struct {
	UID  string
	Name string
	// Role is the user's, as last synced ("" before the membership
	// arrived, just after creating the space).
	Role string
}

// Spaces lists the shared spaces the device holds, by uid.
func (c *Client) Spaces(ctx context.Context) ([]SpaceInfo, error) {
	recs, err := c.store.List(ctx, ListParams{Model: SpaceModel})
	if err != nil {
		return nil, fmt.Errorf("client: spaces: %w", err)
	}
	out := make([]SpaceInfo, 0, len(recs))
	for _, r := range recs {
		uid := spaceOf(r.Owner)
		if uid == "" || r.UID != uid {
			continue
		}
		info := SpaceInfo{UID: uid}
		var d struct{ Name string }
		_ = json.Unmarshal(r.Data, &d)
		info.Name = d.Name
		if m, err := c.store.Get(ctx, Key{Owner: r.Owner, Model: MemberModel, UID: c.owner}); err == nil && !m.IsDeleted {
			var role struct{ Role string }
			_ = json.Unmarshal(m.Data, &role)
			info.Role = role.Role
		}
		out = append(out, info)
	}
	return out, nil
}

// errSpaceRemoved is the reason given to Config.OnRejected for a local
// change to a space the user lost before it was pushed.
var errSpaceRemoved = []FieldError{{Path: "/space", Message: "the user can no longer read this space (removed, left, or the space was deleted); the change was dropped"}}

// dropSpace removes every local record of a space the server said the
// user lost, and the queued changes to it, each reported to
// Config.OnRejected as forbidden. It is idempotent: a pull restarted from
// the same cursor says removed again and finds nothing left.
func (c *Client) dropSpace(ctx context.Context, uid string, res *SyncResult) error {
	refused, err := c.dropSpaceRecords(ctx, uid)
	if err != nil {
		return fmt.Errorf("drop space %s: %w", uid, err)
	}
	res.Removed = append(res.Removed, uid)
	res.Forbidden += len(refused)
	for _, r := range refused {
		c.reject(ctx, r)
	}
	return nil
}

// dropSpaceRecords is dropSpace's work on the store, under the edit lock
// (a Put into the space must not slip between the steps); it returns the
// changes it dropped.
func (c *Client) dropSpaceRecords(ctx context.Context, uid string) ([]Rejection, error) {
	owner := SpaceOwner(uid)
	c.editMu.Lock()
	defer c.editMu.Unlock()
	pending, err := c.store.Pending(ctx, PendingParams{})
	if err != nil {
		return nil, err
	}
	var acks []Ack
	var refused []Rejection
	for _, p := range pending {
		if p.Owner == owner {
			acks = append(acks, Ack{Key: p.Key, Seq: p.Seq})
			refused = append(refused, Rejection{Change: p, Status: StatusForbidden, Errors: errSpaceRemoved})
		}
	}
	if _, err := c.store.Acknowledge(ctx, acks); err != nil {
		return nil, err
	}
	recs, err := c.store.List(ctx, ListParams{Owner: owner, IncludeDeleted: true})
	if err != nil {
		return nil, err
	}
	// Synced tombstones first, so that Forget, which drops synced records
	// only, drops the unsynced ones too.
	gone := make([]*Record, len(recs))
	keys := make([]Key, len(recs))
	for i, r := range recs {
		gone[i] = &Record{Model: r.Model, UID: r.UID, Owner: owner, ModifyAt: r.ModifyAt, IsDeleted: true, Version: r.Version + 1, Data: r.Data}
		keys[i] = r.Key()
	}
	if _, err := c.store.ApplyRemote(ctx, gone); err != nil {
		return nil, err
	}
	if err := c.store.Forget(ctx, keys); err != nil {
		return nil, err
	}
	return refused, nil
}

// sweepSpaces forgets the synced records of shared spaces a complete
// pull's last page did not list (see wire.PullResponse.Spaces): what a pull
// cut short brought of a space the user lost before the next pull, which
// that pull's removed list cannot name. Records with local changes stay:
// their push is answered (a space just created is not listed until its
// push). It reads the whole store only when the list changed, after a pull
// was cut short, and once per client.
func (c *Client) sweepSpaces(ctx context.Context, spaces []string) error {
	if c.spacesSwept && slices.Equal(spaces, c.spaces) {
		return nil
	}
	recs, err := c.store.List(ctx, ListParams{IncludeDeleted: true})
	if err != nil {
		return fmt.Errorf("sweep spaces: %w", err)
	}
	var gone []Key
	for _, r := range recs {
		if uid := spaceOf(r.Owner); uid != "" && r.Synced && !slices.Contains(spaces, uid) {
			gone = append(gone, r.Key())
		}
	}
	if len(gone) > 0 {
		if err := c.store.Forget(ctx, gone); err != nil {
			return fmt.Errorf("sweep spaces: %w", err)
		}
	}
	c.spaces, c.spacesSwept = slices.Clone(spaces), true
	return nil
}
