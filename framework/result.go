package framework

import (
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
)

// Statuses of a change in a push result ([wire.StatusApplied] and the
// others).
const (
	StatusApplied   = wire.StatusApplied
	StatusStale     = wire.StatusStale
	StatusRejected  = wire.StatusRejected
	StatusForbidden = wire.StatusForbidden
)

// Result is the outcome of one change of a push ([wire.Result]).
type Result = wire.Result

// outcome is a push result with what only the server knows of it.
type outcome struct {
	*Result
	// slot is the version the push reserved for this change, written or
	// not (0: none, or not vouched for). Versions are reserved in request
	// order, one per valid change, in one transaction holding the scope:
	// a push's slots are all its own, which lets the push cursor move past
	// them (see advanceCursor).
	slot int64
	// conflict is the conflict the change's write resolves ("" for a
	// clean apply), reported once the write stands; incoming is the change
	// as it came, before a merge.
	conflict string
	incoming *models.Record
}

func (r *outcome) reject(code string, errs ...FieldError) { rejectResult(r.Result, code, errs...) }

// markMerged says so on an applied result the policy merged.
func (r *outcome) markMerged() {
	if r.conflict == ConflictMerged {
		r.Resolution = wire.ResolutionMerged
	}
}

// rejectResult answers r rejected with code and errs.
func rejectResult(r *Result, code string, errs ...FieldError) {
	r.Status, r.Code, r.Errors, r.Record = StatusRejected, code, errs, nil
}
