package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
)

// The built-in models of shared spaces (Config.Spaces). Both live in the
// space they describe and sync like any record.
const (
	// SpaceModel is a space's own record: its uid is the space's uid, its
	// data {"name": …}. Pushing one to a space nobody holds creates the
	// space, with the pusher as its first admin; deleting it (an admin's
	// tombstone) removes every membership, so the space leaves every
	// member's pulls.
	SpaceModel = "ferry.Space"
	// MemberModel is one user's membership: its uid is the member's user
	// id, its data {"role": "reader"|"writer"|"admin"}. Only admins write
	// it, except that a member may delete their own (leave).
	MemberModel = "ferry.Member"
)

// Role is what a member may do in a space.
type Role string

// The built-in roles. The zero Role is "not a member".
const (
	RoleReader Role = "reader" // reads the space
	RoleWriter Role = "writer" // reads and writes the application's records
	RoleAdmin  Role = "admin"  // also manages members and the space itself
)

// CanWrite reports whether the role writes application records.
func (r Role) CanWrite() bool { return r == RoleWriter || r == RoleAdmin }

// Space is a shared space as the [Authorizer] sees it: its uid (as
// clients name it) and the caller's role in it.
type Space struct {
	ID   string
	Role Role
}

// Authorizer decides what users may do in shared spaces beyond the
// built-in rules, which no Authorizer relaxes: only admins write
// ferry.Space and ferry.Member records, a member may leave, the last admin
// may not. Set it in Config.Authorizer; the default is [RoleAuthorizer].
// Decisions are made per request and never cached across requests, so a
// change in what it answers takes effect at the next pull or push.
type Authorizer interface {
	// Spaces returns the spaces p reads, given its memberships (the
	// default returns them unchanged). An application may add spaces
	// (every member of team T reads T's project spaces: add them with
	// RoleReader), drop some or lower roles. A space that leaves the
	// answer is reported removed at the device's next pull.
	Spaces(ctx context.Context, p Principal, memberships []Space) ([]Space, error)
	// CanWrite decides a change p makes to an application model in space,
	// where space.Role is p's membership role ("" for none). nil allows
	// it; an error matching [ErrForbidden] (see [Forbidden]) or a
	// *ValidationError is the change's answer; any other error fails the
	// push.
	CanWrite(ctx context.Context, p Principal, space Space, ch *Change) error
}

// RoleAuthorizer is the default [Authorizer]: members read their spaces,
// writers and admins write them, readers may not (forbidden, with the
// reason), and to anyone else a space answers forbidden without details,
// as a space that does not exist does.
type RoleAuthorizer struct{}

// Spaces implements [Authorizer]: the memberships, unchanged.
func (RoleAuthorizer) Spaces(_ context.Context, _ Principal, memberships []Space) ([]Space, error) {
	return memberships, nil
}

// CanWrite implements [Authorizer].
func (RoleAuthorizer) CanWrite(_ context.Context, _ Principal, space Space, _ *Change) error {
	switch {
	case space.Role == "":
		return ErrForbidden
	case !space.Role.CanWrite():
		return Forbidden("/space", fmt.Sprintf("a %s of this space may not write to it", space.Role))
	}
	return nil
}

// Forbidden returns the error a change is answered forbidden with, and
// says why at path: for a caller who may see the record but not write it
// (a reader of a space). Return [ErrForbidden] instead when the answer must
// not reveal that anything is there.
func Forbidden(path, message string) error {
	return &Error{Code: CodeForbidden, Message: message, Details: []FieldError{{Path: path, Message: message}}}
}

// maxSpacesLimit is the most Config.MaxSpaces may be (see maxCursorBytes).
const maxSpacesLimit = 1000

// spaceScope is the scope of the space a client names uid (checkPrincipal
// refuses user ids of that shape, so it is never a user's).
func spaceScope(uid string) string { return wire.SpaceOwner(uid) }

// spaceOf returns the space uid of a shared scope, or "" for a personal
// one.
func spaceOf(scope string) string { return wire.SpaceOf(scope) }

// builtinModel reports whether name is a spaces model; the framework's own
// rules decide their writes.
func builtinModel(name string) bool { return name == SpaceModel || name == MemberModel }

// registerSpaces registers the built-in models of spaces.
func (a *App) registerSpaces() error {
	for name, schema := range map[string]string{SpaceModel: "ferry/space.json", MemberModel: "ferry/member.json"} {
		m := &model{
			name: name, spec: models.Generic(), builtin: true,
			canonical: func(rec *models.Record, _ any) (json.RawMessage, error) { return rec.Data, nil },
		}
		// Built-in rules need every write to pass applyOne in order
		// (membership index, the first admin); LWW decides conflicts.
		if err := a.register(m, ModelOptions{Schema: schema, Policy: LastWriterWins{}}); err != nil {
			return err
		}
	}
	return nil
}

// spaceAccess is a push transaction's view of the space it writes: read
// once, after the transaction took the space's counter lock, so a
// membership change (which takes the same lock) cannot slip between the
// check and the write.
type spaceAccess struct {
	user  string // the caller
	space Space
	// members is the space's membership index as of the lock, kept up to
	// date with the transaction's own member writes.
	members map[string]Role
	// exists says the space has a ferry.Space record (live or deleted): a
	// deleted space is never created again.
	exists bool
	// creating is set while the change being applied creates the space,
	// created once it was written: the creator's membership follows.
	creating, created bool
}

// loadSpaceAccess reads p's access to the shared scope inside tx.
func (a *App) loadSpaceAccess(ctx context.Context, tx models.Tx, p Principal, scope string) (*spaceAccess, error) {
	rows, err := tx.Memberships(ctx, models.MembershipsParams{Scope: scope})
	if err != nil {
		return nil, err
	}
	acc := &spaceAccess{user: p.UserID, space: Space{ID: spaceOf(scope)}, members: make(map[string]Role, len(rows))}
	for _, r := range rows {
		acc.members[r.User] = Role(r.Role)
	}
	acc.space.Role = acc.members[p.UserID]
	recs, err := tx.Load(ctx, models.LoadParams{Scope: scope, Model: SpaceModel, UIDs: []string{acc.space.ID}})
	if err != nil {
		return nil, err
	}
	acc.exists = len(recs) > 0
	return acc, nil
}

// authorizeSpaceWrite decides whether p may make ch (of model m) in the
// space; stored is the record the change replaces (nil: none). It returns
// creates when the change is a ferry.Space that creates the space.
func (a *App) authorizeSpaceWrite(ctx context.Context, tx models.Tx, acc *spaceAccess, p Principal, m *model, ch *Change) (creates bool, err error) {
	role := acc.space.Role
	switch m.name {
	case SpaceModel:
		if ch.UID != acc.space.ID {
			return false, Invalid("/uid", "a ferry.Space record's uid is the uid of its space")
		}
		if !acc.exists && len(acc.members) == 0 {
			if ch.IsDeleted {
				return false, ErrForbidden // nothing to delete, nothing to reveal
			}
			// A new space: its creator becomes its first admin.
			return true, a.checkRoom(ctx, tx, p.UserID, "/space")
		}
		if role != RoleAdmin {
			return false, a.notAdmin(role)
		}
		return false, nil
	case MemberModel:
		if !validUserID(ch.UID) {
			return false, Invalid("/uid", "a ferry.Member record's uid is the member's user id")
		}
		leaving := ch.UID == p.UserID && ch.IsDeleted
		if role != RoleAdmin && !(leaving && role != "") {
			return false, a.notAdmin(role)
		}
		newRole, _ := roleIn(ch.Data) // checked by the schema already
		if acc.members[ch.UID] == RoleAdmin && (ch.IsDeleted || newRole != RoleAdmin) && acc.admins() == 1 && len(acc.members) > 1 {
			return false, &Error{Code: CodeConflict, Message: "the last admin of a space cannot leave it or step down while it has other members; make another member admin first",
				Details: []FieldError{{Path: "/uid", Message: "the space's last admin"}}}
		}
		if !ch.IsDeleted && acc.members[ch.UID] == "" {
			return false, a.checkRoom(ctx, tx, ch.UID, "/uid")
		}
		return false, nil
	}
	if !acc.exists {
		return false, ErrForbidden // no such space (or not yet): nothing revealed
	}
	return false, a.authorizer.CanWrite(ctx, p, acc.space, ch)
}

// checkRoom refuses a membership for a user already in MaxSpaces spaces;
// path is the change's field that names the user.
func (a *App) checkRoom(ctx context.Context, tx models.Tx, user, path string) error {
	n, err := tx.Memberships(ctx, models.MembershipsParams{User: user, Limit: a.cfg.MaxSpaces})
	if err != nil {
		return err
	}
	if len(n) >= a.cfg.MaxSpaces {
		return &Error{Code: CodeQuotaExceeded, Message: fmt.Sprintf("the user belongs to %d spaces, the most allowed", a.cfg.MaxSpaces),
			Details: []FieldError{{Path: path, Message: "in too many spaces"}}}
	}
	return nil
}

// notAdmin is the answer to a member who may not manage the space, and to
// a stranger (who learns nothing).
func (a *App) notAdmin(role Role) error {
	if role == "" {
		return ErrForbidden
	}
	return Forbidden("/model", fmt.Sprintf("only admins manage a space and its members; you are a %s", role))
}

// roleIn is the role a ferry.Member record's data gives ("" when it holds
// none, which the schema refuses).
func roleIn(data json.RawMessage) (Role, error) {
	var d struct {
		Role Role `json:"role"`
	}
	err := json.Unmarshal(data, &d)
	return d.Role, err
}

// checkPrincipal refuses a principal without a user, and one whose user id
// would be a shared space's scope ("s:…": an authenticator's ids must not
// take that shape, or the user would read and write that space as their
// own records).
func checkPrincipal(p Principal) error {
	if p.UserID == "" {
		return NewError(CodeUnauthenticated, "no user")
	}
	if spaceOf(p.UserID) != "" {
		return NewError(CodeUnauthenticated, "a user id must not start with %q, the prefix of shared spaces", "s:")
	}
	return nil
}

func (acc *spaceAccess) admins() int {
	n := 0
	for _, r := range acc.members {
		if r == RoleAdmin {
			n++
		}
	}
	return n
}

// recordSpaceWrite keeps the membership index in step with a record the
// push transaction st wrote, when it is a built-in one.
func (a *App) recordSpaceWrite(ctx context.Context, st *pushTx, rec *models.Record) error {
	acc, tx := st.space, st.tx
	if acc == nil || !builtinModel(rec.Model) {
		return nil
	}
	switch rec.Model {
	case SpaceModel:
		acc.exists = true
		if acc.creating {
			acc.creating, acc.created = false, true
		}
		if !rec.IsDeleted {
			return nil
		}
		clear(acc.members)
		acc.space.Role = ""
		return tx.DropMemberships(ctx, models.DropMembershipsParams{Scope: rec.Owner})
	case MemberModel:
		role := Role("")
		if !rec.IsDeleted {
			var err error
			if role, err = roleIn(rec.Data); err != nil {
				return fmt.Errorf("member record %s: %w", rec.UID, err)
			}
		}
		if role == "" {
			delete(acc.members, rec.UID)
		} else {
			acc.members[rec.UID] = role
		}
		acc.space.Role = acc.members[acc.user]
		return tx.SetMembership(ctx, models.SetMembershipParams{Scope: rec.Owner, User: rec.UID, Role: string(role)})
	}
	return nil
}

// spacesOf returns the spaces p reads, as the Authorizer answers from p's
// memberships read through r (a pull's snapshot), at most MaxSpaces.
func (a *App) spacesOf(ctx context.Context, r models.Reader, p Principal) ([]Space, error) {
	if !a.cfg.Spaces {
		return nil, nil
	}
	rows, err := r.Memberships(ctx, models.MembershipsParams{User: p.UserID, Limit: a.cfg.MaxSpaces})
	if err != nil {
		return nil, fmt.Errorf("read %s's spaces: %w", p.UserID, err)
	}
	mine := make([]Space, len(rows))
	for i, m := range rows {
		mine[i] = Space{ID: spaceOf(m.Scope), Role: Role(m.Role)}
	}
	spaces, err := a.authorizer.Spaces(ctx, p, mine)
	if err != nil {
		return nil, fmt.Errorf("authorizer: spaces of %s: %w", p.UserID, err)
	}
	if len(spaces) > a.cfg.MaxSpaces {
		spaces = spaces[:a.cfg.MaxSpaces]
	}
	return spaces, nil
}

// readScopes are the scopes p reads, through r: its personal scope, then
// its spaces'.
func (a *App) readScopes(ctx context.Context, r models.Reader, p Principal) ([]string, error) {
	spaces, err := a.spacesOf(ctx, r, p)
	if err != nil {
		return nil, err
	}
	scopes := make([]string, 0, 1+len(spaces))
	scopes = append(scopes, p.UserID)
	for _, s := range spaces {
		if s.Role != "" && validUID(s.ID) {
			scopes = append(scopes, spaceScope(s.ID))
		}
	}
	return scopes, nil
}

// validUserID reports whether id can be a user id: what a uid may be
// (letters, digits, '-', '_'), which keeps personal scopes apart from
// spaces' ("s:…").
func validUserID(id string) bool { return validUID(id) }

// removedSpaces lists the spaces cur holds a position in, or carries as
// removed, that are not among scopes (sorted) any more: the device drops
// their records. Other
// scopes a cursor may name (a forged one, another user's) are ignored, as
// the feed never reads them.
func removedSpaces(cur *cursor, scopes []string) []string {
	var out []string
	readable := func(uid string) bool {
		_, found := slices.BinarySearch(scopes, spaceScope(uid))
		return found
	}
	for scope := range cur.Pos {
		if uid := spaceOf(scope); uid != "" && !readable(uid) {
			out = append(out, uid)
		}
	}
	// Carried from earlier pages; a space granted again meanwhile is read
	// from its beginning instead, so the device loses nothing.
	for _, uid := range cur.Removed {
		if !readable(uid) && !slices.Contains(out, uid) {
			out = append(out, uid)
		}
	}
	slices.Sort(out)
	return out
}

// writeFirstAdmin writes, at version, the ferry.Member record that makes
// p the first admin of the space st just created.
func (a *App) writeFirstAdmin(ctx context.Context, st *pushTx, p Principal, version int64) (*Record, error) {
	now := a.cfg.Now().UTC().Truncate(time.Microsecond)
	rec := &models.Record{
		Model: MemberModel, UID: p.UserID, Owner: st.scope, ModifyAt: now, Version: version,
		Data: json.RawMessage(`{"role":"admin"}`), CreatedAt: now, UpdatedAt: now,
	}
	if err := st.tx.Write(ctx, models.WriteParams{Model: MemberModel, Records: []*models.Record{rec}, Mode: models.WriteUpsert}); err != nil {
		return nil, fmt.Errorf("write the first admin of %s: %w", st.scope, err)
	}
	st.last = version
	if err := a.recordSpaceWrite(ctx, st, rec); err != nil {
		return nil, err
	}
	return wireRecord(rec), nil
}

// scopeOf is the scope change ch of model m writes to, or the field error
// that rejects it.
func (a *App) scopeOf(p Principal, m *model, ch *Change) (string, *FieldError) {
	if ch.Space == "" {
		if m.builtin {
			return "", &FieldError{Path: "/space", Message: m.name + " records live in the space they describe: name it in space"}
		}
		return p.UserID, nil
	}
	if !a.cfg.Spaces {
		return "", &FieldError{Path: "/space", Message: "this server has no shared spaces (Config.Spaces is off)"}
	}
	if !validUID(ch.Space) {
		return "", &FieldError{Path: "/space", Message: "a space is named by a uid: 1 to 64 letters, digits, '-' or '_'"}
	}
	if m.selfOwned {
		return "", &FieldError{Path: "/space", Message: m.name + " records own themselves and cannot be in a space"}
	}
	return spaceScope(ch.Space), nil
}

// scopedPreps is one shared scope's changes of a push, in a slice as long
// as the push (nil for the others').
type scopedPreps struct {
	scope string
	preps []*prepared
}

// splitByScope splits a push's prepared changes into the personal scope's
// and each space's, spaces in the order the push first names them. A
// part with no change is nil.
func splitByScope(p Principal, preps []*prepared) (personal []*prepared, shared []scopedPreps) {
	for i, pr := range preps {
		if pr == nil {
			continue
		}
		if pr.scope == p.UserID {
			if personal == nil {
				if len(shared) == 0 && allPersonal(p, preps[i:]) {
					return preps, nil // the usual push: nothing to copy
				}
				personal = make([]*prepared, len(preps))
			}
			personal[i] = pr
			continue
		}
		j := slices.IndexFunc(shared, func(s scopedPreps) bool { return s.scope == pr.scope })
		if j < 0 {
			j = len(shared)
			shared = append(shared, scopedPreps{scope: pr.scope, preps: make([]*prepared, len(preps))})
		}
		shared[j].preps[i] = pr
	}
	return personal, shared
}

func allPersonal(p Principal, preps []*prepared) bool {
	for _, pr := range preps {
		if pr != nil && pr.scope != p.UserID {
			return false
		}
	}
	return true
}

// isAnswer reports whether err is a change's answer (forbidden, invalid,
// a protocol error of the change) rather than a failure of the push.
func isAnswer(err error) bool {
	var ve *ValidationError
	var pe *Error
	return errors.As(err, &ve) || errors.As(err, &pe)
}

// spacesOfScopes lists the shared spaces among scopes (sorted).
func spacesOfScopes(scopes []string) []string {
	var out []string
	for _, sc := range scopes {
		if uid := spaceOf(sc); uid != "" {
			out = append(out, uid)
		}
	}
	return out
}

// spaceFilter checks a pull's spaces filter: uids or PersonalSpace, at
// most one more than MaxSpaces, repeats counted once.
func (a *App) spaceFilter(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	bad := func(msg string) error {
		return &Error{Code: CodeInvalid, Message: "spaces: " + msg, Details: []FieldError{{Path: "spaces", Message: msg}}}
	}
	if !a.cfg.Spaces && !(len(names) == 1 && names[0] == PersonalSpace) {
		return nil, bad("this server has no shared spaces")
	}
	if len(names) > a.cfg.MaxSpaces+1 {
		return nil, bad(fmt.Sprintf("at most %d names", a.cfg.MaxSpaces+1))
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != PersonalSpace && !validUID(n) {
			return nil, bad("each name is a space's uid, or ~ for your own")
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// filterScopes keeps the scopes a spaces filter names (all when none).
func filterScopes(p Principal, scopes, filter []string) []string {
	if len(filter) == 0 {
		return scopes
	}
	out := scopes[:0:0]
	for _, sc := range scopes {
		name := spaceOf(sc)
		if sc == p.UserID {
			name = PersonalSpace
		}
		if slices.Contains(filter, name) {
			out = append(out, sc)
		}
	}
	return out
}

// SpaceRole returns p's role in the shared space uid ("" when not a
// member, and for a server without spaces), for plugins that let members
// act on a space outside pushes (the blobs plugin's uploads into a space).
func (a *App) SpaceRole(ctx context.Context, p Principal, uid string) (Role, error) {
	if !a.cfg.Spaces || !validUID(uid) || checkPrincipal(p) != nil {
		return "", nil
	}
	rows, err := a.store.Memberships(ctx, models.MembershipsParams{User: p.UserID, Scope: spaceScope(uid)})
	if err != nil {
		return "", fmt.Errorf("role of %s in %s: %w", p.UserID, uid, err)
	}
	if len(rows) == 0 {
		return "", nil
	}
	return Role(rows[0].Role), nil
}

// ReadableScopes returns the scopes p reads now: its own, then its spaces'
// (as owners of records: the user id, "s:" + a space's uid), for plugins
// that guard data of their own by the records' scopes.
func (a *App) ReadableScopes(ctx context.Context, p Principal) ([]string, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, err
	}
	return a.readScopes(ctx, a.store, p)
}
