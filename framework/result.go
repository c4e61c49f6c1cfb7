package framework

import "github.com/ferrysync/ferry/framework/wire"

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
	// written is set when this push wrote the record (not for a retried
	// change answered applied from the stored state); only such writes
	// may move a push's cursor.
	written bool
}

func (r *outcome) reject(code string, errs ...FieldError) { rejectResult(r.Result, code, errs...) }

// rejectResult answers r rejected with code and errs.
func rejectResult(r *Result, code string, errs ...FieldError) {
	r.Status, r.Code, r.Errors, r.Record = StatusRejected, code, errs, nil
}
