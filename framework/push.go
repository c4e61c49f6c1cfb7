package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/ferrysync/ferry/internal/jsonvalue"
	"github.com/ferrysync/ferry/models"
)

// prepared is a change that passed validation, ready for the transaction.
type prepared struct {
	// scope is where the change writes: the caller's, or a space's.
	scope  string
	model  *model
	plan   *modelPlan // the model's route, as of the push's start
	change *Change
	rec    models.Record // envelope and canonical data; owner and version unset
}

// PushOptions changes how [App.PushWith] applies a batch.
type PushOptions struct {
	// Policy, when set, decides every conflict of this push instead of the
	// models' own policies: protocol adapters bring their protocol's
	// concurrency rule this way.
	Policy ConflictPolicy
	// AbortOnStale applies the batch all or nothing with respect to
	// conflicts: if any change loses its conflict, nothing is written and
	// PushWith returns the results (the losers marked stale, with the
	// server's record; the changes that would have applied with an empty
	// Status) together with an error matching [ErrConflict]. Rejected and
	// forbidden changes do not abort the batch.
	AbortOnStale bool
	// MaxChanges, when positive, replaces Config.MaxChanges for this push
	// (an adapter whose protocol pushes everything at once).
	MaxChanges int
	// DeviceID names the pushing device when its protocol says
	// (wire.PushRequest.DeviceID); it reaches [ResultsEvent.DeviceID] and
	// changes nothing else.
	DeviceID string
}

// errAbortStale rolls back an AbortOnStale push.
var errAbortStale = &Error{Code: CodeConflict, Message: "a change conflicts with the server's state; pull, merge and push again"}

// Push applies changes for p, each on its own, in order, and returns one
// result per change. Invalid changes are rejected before the transaction;
// the valid ones are applied in one transaction, which is retried whole
// when the store reports a concurrency failure. An error is returned only
// when the store fails; then the push may have been applied in part, and
// sending it again is safe (a retried change is answered applied again).
func (a *App) Push(ctx context.Context, p Principal, changes []*Change) ([]Result, error) {
	return a.PushWith(ctx, p, changes, PushOptions{})
}

// PushWith is [App.Push] with options.
func (a *App) PushWith(ctx context.Context, p Principal, changes []*Change, opts PushOptions) ([]Result, error) {
	results, _, err := a.push(ctx, p, changes, opts)
	return results, err
}

// push is [App.PushWith] that also returns the server's side of each
// result: outcomes[i] points at results[i].
func (a *App) push(ctx context.Context, p Principal, changes []*Change, opts PushOptions) ([]Result, []outcome, error) {
	if err := checkPrincipal(p); err != nil {
		return nil, nil, err
	}
	limit := a.cfg.MaxChanges
	if opts.MaxChanges > 0 {
		limit = opts.MaxChanges
	}
	if len(changes) > limit {
		return nil, nil, NewError(CodeTooLarge, "a push carries at most %d changes; split it", limit)
	}
	wires := make([]Result, len(changes))
	results := make([]outcome, len(changes))
	preps := make([]*prepared, len(changes))
	for i, ch := range changes {
		wires[i] = Result{OpID: ch.OpID, Model: ch.Model, UID: ch.UID}
		results[i] = outcome{Result: &wires[i]}
		if preps[i] = a.prepare(ctx, p, ch, &results[i]); preps[i] != nil {
			preps[i].plan = a.planOf(preps[i].model)
		}
	}
	quota, err := a.QuotaOf(ctx, p.UserID)
	if err != nil {
		return nil, nil, err
	}
	personal, shared := splitByScope(p, preps)
	written, err := a.pushPersonal(ctx, p, personal, results, opts, quota)
	for _, sp := range shared {
		if err != nil {
			break
		}
		var more []*Record
		more, err = a.applyRetrying(ctx, p, sp.scope, sp.preps, results, opts, quota, false)
		written = append(written, more...)
	}
	if errors.Is(err, errAbortStale) {
		for i := range results {
			results[i].slot = 0
			if results[i].Status == StatusApplied {
				results[i].Status, results[i].Record = "", nil // not written
			}
		}
		return wires, results, errAbortStale
	}
	// What committed is announced even when a later part of the push
	// failed (a store-decided statement committed before the ordinary
	// path failed).
	if len(written) > 0 {
		ev := &CommitEvent{Context: ctx, Principal: p, Records: written}
		if err := a.onCommit.Trigger(ev, nil); err != nil {
			a.log.ErrorContext(ctx, "after-commit hook failed", "err", err, "user", p.UserID)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("push for %s: %w", p.UserID, err)
	}
	a.annotateResults(ctx, p, opts.DeviceID, wires)
	return wires, results, nil
}

// pushPersonal applies the changes to p's personal scope (preps holds nil
// for the others): by the store-decided statement when it can, else in one
// transaction.
func (a *App) pushPersonal(ctx context.Context, p Principal, preps []*prepared, results []outcome, opts PushOptions, quota Quota) ([]*Record, error) {
	if preps == nil {
		return nil, nil
	}
	var written []*Record
	var err error
	slow := preps
	if a.storeDecides(preps, opts) {
		written, slow, err = a.pushNewer(ctx, p, preps, results, quota)
		switch {
		case errors.Is(err, models.ErrOverQuota):
			// The push might take the user over the quota: nothing was
			// written, and the ordinary path decides change by change.
			written, slow = nil, preps
		case err != nil:
			// Nothing was written (the statement or its transaction
			// failed whole); a unique column or a deadlock is best
			// settled by the ordinary path, change by change if needed.
			a.log.DebugContext(ctx, "store-decided push failed; pushing the ordinary way", "err", err, "user", p.UserID)
			written, slow = nil, preps
		case slow != nil:
			// The ordinary path runs in a transaction of its own, so the
			// push's versions are no longer consecutive: only that
			// transaction's writes may move the push cursor.
			for i := range results {
				results[i].slot = 0
			}
		}
	}
	if slow == nil {
		return written, nil
	}
	more, err := a.applyRetrying(ctx, p, p.UserID, slow, results, opts, quota, false)
	return append(written, more...), err
}

// applyRetrying applies preps (nil for changes not of this scope) to scope
// in one transaction, retried whole when the store reports a concurrency
// failure, and change by change when a bulk write failed.
func (a *App) applyRetrying(ctx context.Context, p Principal, scope string, preps []*prepared, results []outcome, opts PushOptions, quota Quota, careful bool) ([]*Record, error) {
	careful = careful || a.fastestRoute >= routeCareful
	for attempt := 0; ; attempt++ {
		written, err := a.applyAll(ctx, p, scope, preps, results, opts, quota, careful)
		var fe *flushError
		if errors.As(err, &fe) && !careful {
			// A bulk write failed (a unique field, a uid another user just
			// took): run the batch again writing change by change, so the
			// failure lands on the change that caused it.
			careful = true
			continue
		}
		if err == nil || !models.IsRetryable(err) || attempt >= 8 || ctx.Err() != nil {
			return written, err
		}
		a.stats.retries.Add(1)
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
}

// prepare validates one change outside the transaction. It returns nil
// and fills res when the change is rejected.
func (a *App) prepare(ctx context.Context, p Principal, ch *Change, res *outcome) *prepared {
	m, ok := a.model(ch.Model)
	if !ok {
		res.reject(CodeUnknownModel, FieldError{Path: "/model", Message: fmt.Sprintf("unknown model %q", ch.Model)})
		return nil
	}
	if !validUID(ch.UID) {
		res.reject(CodeInvalid, FieldError{Path: "/uid", Message: "uid must be 1 to 64 letters, digits, '-' or '_'"})
		return nil
	}
	scope, fe := a.scopeOf(p, m, ch)
	if fe != nil {
		res.reject(CodeInvalid, *fe)
		return nil
	}
	var out *prepared
	ev := &ValidateEvent{Context: ctx, Principal: p, Change: ch}
	err := a.onValidate.Trigger(ev, func(e *ValidateEvent) error {
		pr, err := a.validate(m, e.Change)
		out = pr
		return err
	}, m.name)
	if err != nil {
		a.failResult(res, err)
		return nil
	}
	out.scope = scope
	return out
}

// validate checks a change's envelope and data and puts the data in the
// model's canonical form.
func (a *App) validate(m *model, ch *Change) (*prepared, error) {
	// The stores keep microseconds; a finer modify_at from the Go API
	// would never equal its stored self, and a retry would win again.
	at := ch.ModifyAt.UTC().Truncate(time.Microsecond)
	rec := models.Record{Model: m.name, UID: ch.UID, ModifyAt: at, IsDeleted: ch.IsDeleted}
	if ch.Data == nil && !ch.IsDeleted {
		return nil, Invalid("/data", "data is required unless is_deleted is true")
	}
	if ch.Data != nil {
		if len(ch.Data) > a.cfg.MaxDataBytes {
			return nil, Invalid("/data", fmt.Sprintf("data is larger than %d bytes", a.cfg.MaxDataBytes))
		}
		v, err := ch.decodedData()
		if err != nil {
			return nil, Invalid("/data", "data is not valid JSON")
		}
		if err := a.checkData(m, &rec, ch.Data, v); err != nil {
			return nil, err
		}
	}
	// Checked on every model (bad input all the same), kept by those
	// whose policy uses them.
	ft, err := checkFieldTimes(ch, at)
	if err != nil {
		return nil, err
	}
	if m.fieldTimes {
		rec.FieldTimes = canonicalFieldTimes(ft, rec.Data, at)
	}
	return &prepared{model: m, change: ch, rec: rec}, nil
}

// checkData checks data, decoded as v (numbers as json.Number), for m
// (a JSON object without U+0000, the model's JSON Schema, then, through
// m.canonical, its Validate) and sets rec.Data to its canonical form
// (and rec.Value for typed models). Every record that is stored passes
// here: incoming changes and the conflict policies' merges alike.
func (a *App) checkData(m *model, rec *models.Record, data json.RawMessage, v any) error {
	if _, isObj := v.(map[string]any); !isObj {
		return Invalid("/data", "data must be a JSON object")
	}
	if hasNULEscape(data) {
		if path, ok := nulPath(v, "/data"); ok {
			return Invalid(path, "must not contain the character U+0000")
		}
	}
	if errs := m.schema.errors(v, "/data"); len(errs) > 0 {
		return &ValidationError{Details: errs}
	}
	rec.Data, rec.Value = data, nil
	canon, err := m.canonical(rec, v)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return Invalid("/data", err.Error())
	}
	rec.Data = canon
	return nil
}

// checkMerge validates data a policy merged or an apply hook set (source
// names which, for the errors) for m and stores it in next, in the form the HTTP layer gives a client's data (compact, keys
// sorted), then the model's canonical form.
func (a *App) checkMerge(m *model, next *models.Record, data json.RawMessage, source string) error {
	if len(data) > a.cfg.MaxDataBytes {
		return Invalid("/data", fmt.Sprintf("%s data is larger than %d bytes", source, a.cfg.MaxDataBytes))
	}
	v, ok := jsonvalue.Parse(data)
	if !ok {
		return Invalid("/data", source+" data is not valid JSON")
	}
	text, err := jsonvalue.Append(make([]byte, 0, len(data)), v)
	if err != nil {
		return Invalid("/data", source+" data is not valid JSON")
	}
	if len(text) > a.cfg.MaxDataBytes {
		return Invalid("/data", fmt.Sprintf("%s data is larger than %d bytes", source, a.cfg.MaxDataBytes))
	}
	return a.checkData(m, next, text, v)
}

// failResult turns a hook's or validation's error into a result.
func (a *App) failResult(res *outcome, err error) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		res.reject(CodeInvalid, ve.Details...)
	case errors.Is(err, ErrForbidden):
		// A reason is given only where the caller may know the record is
		// there (see [Forbidden]).
		res.Status, res.Record, res.Errors = StatusForbidden, nil, nil
		var pe *Error
		if errors.As(err, &pe) {
			res.Errors = pe.Details
		}
	default:
		pe := asProtocolError(err)
		if pe.Code == CodeInternal {
			a.log.Error("change failed", "model", res.Model, "uid", res.UID, "err", err)
		}
		if len(pe.Details) > 0 {
			res.reject(pe.Code, pe.Details...)
			return
		}
		res.reject(pe.Code, FieldError{Path: "", Message: pe.Message})
	}
}

// pushTx is the state of one push transaction.
type pushTx struct {
	tx models.Tx
	// The push's span of versions in the locked scope: first to last, one
	// per valid change in request order, written or not, as the
	// store-decided statement numbers them.
	scope       string
	first, last int64
	// careful writes each change at once inside a savepoint; otherwise
	// changes of models without apply hooks are staged and written in bulk
	// at the end.
	careful bool
	staged  []*stagedModel
	// quota is the user's, and usage what the user stores as of this
	// transaction's writes so far.
	quota Quota
	usage models.Usage
	// space is the caller's access to the shared space the transaction
	// writes; nil for the caller's personal scope.
	space *spaceAccess
	// conflicts are reported just before the transaction commits.
	conflicts []metConflict
}

type stagedModel struct {
	model *model
	index map[string]int // uid -> position in recs
	recs  []*models.Record
}

// stage queues a write; a later write of the same record replaces it, as
// only the last state (and its version) must reach the store.
func (st *pushTx) stage(m *model, rec *models.Record) {
	var sm *stagedModel
	for _, x := range st.staged {
		if x.model == m {
			sm = x
		}
	}
	if sm == nil {
		sm = &stagedModel{model: m, index: map[string]int{}}
		st.staged = append(st.staged, sm)
	}
	if i, ok := sm.index[rec.UID]; ok {
		sm.recs[i] = rec
		return
	}
	sm.index[rec.UID] = len(sm.recs)
	sm.recs = append(sm.recs, rec)
}

// flushError marks a failed bulk write; the push is run again carefully.
type flushError struct{ err error }

func (e *flushError) Error() string { return "bulk write: " + e.err.Error() }
func (e *flushError) Unwrap() error { return e.err }

// flush writes the staged records.
func (st *pushTx) flush(ctx context.Context) error {
	for _, sm := range st.staged {
		if err := st.tx.Write(ctx, models.WriteParams{Model: sm.model.name, Records: sm.recs, Mode: models.WriteUpsert}); err != nil {
			return &flushError{fmt.Errorf("write %s: %w", sm.model.name, err)}
		}
	}
	return nil
}

func (a *App) applyAll(ctx context.Context, p Principal, scope string, preps []*prepared, results []outcome, opts PushOptions, quota Quota, careful bool) ([]*Record, error) {
	byModel := map[*model][]string{}
	for _, pr := range preps {
		if pr != nil {
			byModel[pr.model] = append(byModel[pr.model], pr.rec.UID)
		}
	}
	if len(byModel) == 0 {
		return nil, nil
	}
	tx, err := a.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Every record the transaction writes lives in one scope, so locking
	// that scope first makes the reads below (records, memberships) stable
	// until commit.
	st := &pushTx{tx: tx, scope: scope, careful: careful, quota: quota}
	res, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: st.scope})
	if err != nil {
		return nil, err
	}
	st.first, st.usage = res.Next, res.Usage
	if scope != p.UserID {
		if st.space, err = a.loadSpaceAccess(ctx, tx, p, scope); err != nil {
			return nil, err
		}
	}
	loaded := map[string]*models.Record{}
	for m, uids := range byModel {
		rows, err := tx.Load(ctx, models.LoadParams{Scope: scope, Model: m.name, UIDs: uids})
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", m.name, err)
		}
		for i := range rows {
			loaded[m.name+"\x00"+rows[i].UID] = &rows[i]
		}
	}
	var written []*Record
	aborted := false
	version := st.first
	for i, pr := range preps {
		if pr == nil {
			continue
		}
		if st.space == nil {
			results[i].slot = version
		}
		rec, err := a.applyOne(ctx, st, p, pr, version, loaded, &results[i], opts.Policy)
		if err != nil {
			return nil, err
		}
		if st.space != nil && st.space.created {
			// The space was created: its creator's membership is written
			// with it, at the next version.
			st.space.created = false
			version++
			member, err := a.writeFirstAdmin(ctx, st, p, version)
			if err != nil {
				return nil, err
			}
			written = append(written, member)
		}
		if opts.AbortOnStale && results[i].Status == StatusStale {
			aborted = true
		}
		if rec != nil {
			written = append(written, rec)
		}
		st.last = version
		version++
	}
	if aborted {
		return nil, errAbortStale
	}
	if len(written) == 0 {
		// Nothing to vouch for: the store-decided route learns its span
		// from a write, and the cursor must move alike on every route.
		for i, pr := range preps {
			if pr != nil {
				results[i].slot = 0
			}
		}
	}
	if err := st.flush(ctx); err != nil {
		return nil, err
	}
	// The span is the push's even where nothing was written (stale
	// changes, retries), as the store-decided statement takes it.
	if st.last > st.first {
		if err := tx.SetScopeVersion(ctx, models.SetScopeVersionParams{Scope: st.scope, Version: st.last}); err != nil {
			return nil, err
		}
	}
	if err := a.reportConflicts(ctx, tx.Bun(), p, st.conflicts); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return written, nil
}

// applyOne decides and writes one change at version. It returns the
// written record, or nil when nothing was written.
func (a *App) applyOne(ctx context.Context, st *pushTx, p Principal, pr *prepared, version int64, loaded map[string]*models.Record, res *outcome, policy ConflictPolicy) (*Record, error) {
	m, in := pr.model, pr.rec
	if policy == nil {
		policy = m.policy
	}
	key := m.name + "\x00" + in.UID
	for try := 0; ; try++ {
		stored := loaded[key]
		// Records are the scope's (loaded by scope, model and uid); only a
		// self-owned model's record, whose uid is its owner, can belong to
		// someone else.
		if m.selfOwned && in.UID != p.UserID {
			res.Status, res.Record = StatusForbidden, nil
			return nil, nil
		}
		if st.space != nil {
			creates, err := a.authorizeSpaceWrite(ctx, st.tx, st.space, p, m, pr.change)
			if err != nil {
				if !isAnswer(err) {
					return nil, err
				}
				a.failResult(res, err)
				return nil, nil
			}
			st.space.creating = creates
		}
		next := in
		next.Owner = st.scope
		now := a.cfg.Now().UTC().Truncate(time.Microsecond)
		next.CreatedAt, next.UpdatedAt = now, now
		if stored != nil {
			next.CreatedAt = stored.CreatedAt
			if next.Data == nil {
				next.Data = stored.Data // a tombstone without data keeps the stored data
				if m.fieldTimes {
					next.FieldTimes = canonicalFieldTimes(next.FieldTimes, next.Data, next.ModifyAt)
				}
			}
			write, err := a.resolve(ctx, st, p, m, policy, stored, &next, pr.change.Assumed, res)
			if !write || err != nil {
				return nil, err
			}
		}
		if next.Data == nil {
			next.Data = m.emptyData
			if stored == nil && next.IsDeleted && m.fieldTimes {
				next.FieldTimes = unEditedFieldTimes(next.Data)
			}
		}
		next.Version = version
		if !st.careful && len(pr.plan.hooks) == 0 {
			g := growth(stored, &next)
			if !st.quota.admits(st.usage, g) {
				a.failResult(res, st.quota.exceeded())
				return nil, nil
			}
			st.usage.Records, st.usage.Bytes = st.usage.Records+g.Records, st.usage.Bytes+g.Bytes
			st.stage(m, &next)
			if err := a.wrote(ctx, st, p, stored, &next, res); err != nil {
				return nil, err
			}
			loaded[key] = &next
			rec := wireRecord(&next)
			res.Status, res.Record = StatusApplied, rec
			res.markMerged()
			return rec, nil
		}
		rec, err := a.write(ctx, st, p, m, stored, &next)
		if err == nil {
			if err := a.wrote(ctx, st, p, stored, &next, res); err != nil {
				return nil, err
			}
			loaded[key] = &next
			res.Status, res.Record = StatusApplied, rec
			res.markMerged()
			return rec, nil
		}
		if models.IsUniqueViolation(err) && stored == nil && try == 0 {
			// The record was created since we looked: look again.
			rows, lerr := st.tx.Load(ctx, models.LoadParams{Scope: st.scope, Model: m.name, UIDs: []string{in.UID}})
			if lerr != nil {
				return nil, lerr
			}
			if len(rows) > 0 {
				loaded[key] = &rows[0]
				continue
			}
		}
		if models.IsUniqueViolation(err) {
			res.reject(CodeConflict, FieldError{Path: "/data", Message: "conflicts with another record on a unique field"})
			return nil, nil
		}
		if models.IsContentError(err) {
			// The savepoint rolled the write back; the store's words stay
			// in the log, since they may quote other rows.
			a.log.InfoContext(ctx, "store refused a change's content", "model", m.name, "uid", in.UID, "err", err)
			res.reject(CodeInvalid, FieldError{Path: "/data", Message: "the store cannot keep this content (a value too long for its column, or not allowed there)"})
			return nil, nil
		}
		var ve *ValidationError
		if errors.As(err, &ve) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrQuotaExceeded) {
			a.failResult(res, err)
			return nil, nil
		}
		return nil, err
	}
}

// resolve settles a change to a record the store holds: a repeat of the
// stored state is a retry, answered applied; otherwise the policy decides,
// and a merge is checked like an incoming change. It reports whether next
// (changed by a merge) is to be written; when not, res holds the answer.
func (a *App) resolve(ctx context.Context, st *pushTx, p Principal, m *model, policy ConflictPolicy, stored, next *models.Record, assumed *Record, res *outcome) (bool, error) {
	if models.SameState(stored, next) {
		res.Status, res.Record = StatusApplied, wireRecord(stored)
		return false, nil
	}
	storedWire := wireRecord(stored)
	inWire := wireRecord(next)
	inWire.Version = stored.Version
	resolution, err := policy.Resolve(ctx, &Conflict{Model: m.name, Stored: storedWire, Incoming: inWire, Assumed: assumed, Schema: m.fields})
	if err != nil {
		return false, fmt.Errorf("conflict policy of %s: %w", m.name, err)
	}
	res.conflict = conflictOutcome(resolution.Outcome, stored, next)
	if res.conflict != "" {
		in := *next
		res.incoming = &in
	}
	switch resolution.Outcome {
	case KeepStored:
		res.Status, res.Record = StatusStale, storedWire
		st.conflicts = a.noteConflict(st.conflicts, res.conflict, stored, next, stored)
		return false, nil
	case TakeIncoming:
		// next was checked as the incoming change (or keeps the stored,
		// checked data).
	case Merge:
		if resolution.Deleted != nil {
			next.IsDeleted = *resolution.Deleted
		}
		if !resolution.ModifyAt.IsZero() {
			next.ModifyAt = resolution.ModifyAt.UTC().Truncate(time.Microsecond)
		}
		if resolution.FieldsModifyAt != nil && m.fieldTimes {
			next.FieldTimes = storedFieldTimes(resolution.FieldsModifyAt)
		}
		if next.IsDeleted && resolution.Data != nil && bytes.Equal(resolution.Data, storedWire.Data) {
			// A tombstone that keeps the stored data is not checked again:
			// a delete is never refused over a field's value, and the
			// stored data of a record deleted before the server had it is
			// the model's empty data, which its schema may refuse.
			next.Data = stored.Data
		} else if resolution.Data != nil {
			if err := a.checkMerge(m, next, resolution.Data, "merged"); err != nil {
				a.log.ErrorContext(ctx, "conflict policy merged an invalid record; the change is rejected", "model", m.name, "uid", next.UID, "err", err)
				a.failResult(res, err)
				return false, nil
			}
		}
		if m.fieldTimes {
			for name, t := range next.FieldTimes {
				if t.After(next.ModifyAt) {
					a.log.ErrorContext(ctx, "conflict policy merged a field time after the record's modify_at; the change is rejected", "model", m.name, "uid", next.UID, "field", name)
					a.failResult(res, Invalid("/fields_modify_at/"+pointerToken(name), "the merged field time is after the merged modify_at"))
					return false, nil
				}
			}
			next.FieldTimes = canonicalFieldTimes(next.FieldTimes, next.Data, next.ModifyAt)
		}
	default:
		return false, fmt.Errorf("conflict policy of %s: unknown outcome %d", m.name, resolution.Outcome)
	}
	if models.SameState(stored, next) {
		// The result is the stored record (a retried change that merged):
		// nothing to write, and no conflict.
		res.Status, res.Record, res.conflict = StatusApplied, storedWire, ""
		return false, nil
	}
	return true, nil
}

// wrote finishes a write that stands: the membership index of a space's
// built-in records, and the conflict it resolved.
func (a *App) wrote(ctx context.Context, st *pushTx, p Principal, stored, next *models.Record, res *outcome) error {
	if err := a.recordSpaceWrite(ctx, st, next); err != nil {
		return err
	}
	if stored != nil {
		st.conflicts = a.noteConflict(st.conflicts, res.conflict, stored, res.incoming, next)
	}
	return nil
}

// write runs the apply hooks around the core write, inside a savepoint so
// that a vetoed or failed write leaves the rest of the batch intact.
func (a *App) write(ctx context.Context, st *pushTx, p Principal, m *model, stored *models.Record, next *models.Record) (*Record, error) {
	ev := &ApplyEvent{Context: ctx, Tx: st.tx.Bun(), Principal: p, Record: wireRecord(next)}
	if stored != nil {
		ev.Stored = wireRecord(stored)
	}
	var g models.Usage
	err := st.tx.InSavepoint(ctx, func() error {
		return a.onApply.Trigger(ev, func(e *ApplyEvent) error {
			if !bytes.Equal(next.Data, e.Record.Data) {
				// A hook changed the data: it is checked and stored like
				// an incoming change's (schema, Validate, canonical form).
				if err := a.checkMerge(m, next, e.Record.Data, "an apply hook's"); err != nil {
					a.log.ErrorContext(ctx, "an apply hook set invalid data; the change is rejected", "model", m.name, "uid", next.UID, "err", err)
					return err
				}
			}
			// Checked here, after the hooks before Next changed what is
			// written; counted once the whole write stands.
			if g = growth(stored, next); !st.quota.admits(st.usage, g) {
				return st.quota.exceeded()
			}
			mode := models.WriteUpdate
			if stored == nil {
				mode = models.WriteInsert
			}
			if err := st.tx.Write(ctx, models.WriteParams{Model: m.name, Records: []*models.Record{next}, Mode: mode}); err != nil {
				return fmt.Errorf("write %s/%s: %w", m.name, next.UID, err)
			}
			return nil
		}, m.name)
	})
	if err != nil {
		return nil, err
	}
	st.usage.Records, st.usage.Bytes = st.usage.Records+g.Records, st.usage.Bytes+g.Bytes
	return wireRecord(next), nil
}

// JSONEqual reports whether two JSON texts hold the same value (object key
// order and spacing ignored). Optimistic-concurrency policies use it to
// compare a client's assumed state with the stored one.
func JSONEqual(a, b json.RawMessage) bool {
	return jsonEqual(a, b)
}

func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if decodeJSON(bytes.NewReader(a), &va) != nil || decodeJSON(bytes.NewReader(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
