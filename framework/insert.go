package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/models"
)

// Insert stores a new typed record written by the server itself (creating
// an account, seeding data), server-only fields included. It bypasses
// validation and conflict policy but not versioning: the record gets the
// next version of its owner's scope and reaches every device's pull, and
// the commit hooks run. A uid or unique field that exists already is
// [ErrConflict]. The record counts toward its owner's [App.Usage], but
// the owner's [Quota] does not refuse it: the server decides what it
// writes.
func Insert[T any, P interface {
	*T
	Syncable
	models.BaseHolder
}](ctx context.Context, a *App, v P) (*Record, error) {
	name := v.ResourceType()
	m, ok := a.model(name)
	if !ok || !m.typed {
		return nil, fmt.Errorf("framework: insert: %s is not a registered typed model", name)
	}
	b := v.SyncBase()
	if !validUID(b.ID) || b.OwnerID == "" {
		return nil, fmt.Errorf("framework: insert %s: uid %q must be 1 to 64 letters, digits, '-' or '_' and the owner set", name, b.ID)
	}
	now := a.cfg.Now().UTC().Truncate(time.Microsecond)
	if b.ModifiedAt.IsZero() {
		b.ModifiedAt = now
	}
	b.ModifiedAt = b.ModifiedAt.UTC().Truncate(time.Microsecond)
	b.CreatedAt, b.UpdatedAt = now, now
	tx, err := a.store.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("framework: insert %s: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ReserveVersion(ctx, models.ReserveVersionParams{Scope: b.OwnerID})
	if err != nil {
		return nil, err
	}
	b.Version = res.Next
	rec, err := tx.InsertValue(ctx, models.InsertValueParams{Model: name, Value: v})
	if models.IsUniqueViolation(err) {
		return nil, &Error{Code: CodeConflict, Message: fmt.Sprintf("%s conflicts with an existing record", name), Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("framework: insert %s/%s: %w", name, b.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("framework: insert %s: commit: %w", name, err)
	}
	out := wireRecord(&rec)
	p := Principal{UserID: b.OwnerID}
	if err := a.onCommit.Trigger(&CommitEvent{Context: ctx, Principal: p, Records: []*Record{out}}, nil); err != nil {
		a.log.ErrorContext(ctx, "after-commit hook failed", "err", err)
	}
	return out, nil
}

// Get returns owner's record of model with uid, for server code (the
// sync routes check the caller's rights themselves; [App.Read] is the
// checked read). A self-owned model's record is its own owner: Get(ctx,
// uid, model, uid). A missing record is [ErrNotFound].
func (a *App) Get(ctx context.Context, owner, model, uid string) (*Record, error) {
	m, ok := a.model(model)
	if !ok {
		return nil, NewError(CodeUnknownModel, "unknown model %q", model)
	}
	rows, err := a.store.Load(ctx, models.LoadParams{Scope: owner, Model: m.name, UIDs: []string{uid}})
	if err != nil {
		return nil, fmt.Errorf("framework: get %s/%s: %w", model, uid, err)
	}
	if len(rows) == 0 {
		return nil, NewError(CodeNotFound, "%s %s not found", model, uid)
	}
	return wireRecord(&rows[0]), nil
}
