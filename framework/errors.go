package framework

import (
	"errors"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
)

// Error codes of the wire protocol ([wire.CodeInvalid] and the others).
const (
	CodeInvalid          = wire.CodeInvalid
	CodeUnknownModel     = wire.CodeUnknownModel
	CodeInvalidCursor    = wire.CodeInvalidCursor
	CodeUnauthenticated  = wire.CodeUnauthenticated
	CodeForbidden        = wire.CodeForbidden
	CodeNotFound         = wire.CodeNotFound
	CodeMethodNotAllowed = wire.CodeMethodNotAllowed
	CodeConflict         = wire.CodeConflict
	CodeResetRequired    = wire.CodeResetRequired
	CodeTooLarge         = wire.CodeTooLarge
	CodeQuotaExceeded    = wire.CodeQuotaExceeded
	CodeUnsupportedMedia = wire.CodeUnsupportedMedia
	CodeRateLimited      = wire.CodeRateLimited
	CodeInternal         = wire.CodeInternal
	CodeUnavailable      = wire.CodeUnavailable
)

// FieldError is one problem with one place in a request, named by a JSON
// pointer relative to the request body or to one change ("/data/title")
// ([wire.FieldError]).
type FieldError = wire.FieldError

// Error is a protocol error: it carries the code, a message safe to show a
// client, and optional field details. Handlers return it; one adapter
// turns it into the error shape and status.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Details []FieldError `json:"details,omitempty"`
	// Err is the cause, for logs; it is never sent to clients.
	Err error `json:"-"`
	// RetryAfter, when positive, is sent as the Retry-After header (whole
	// seconds, rounded up): with rate_limited and unavailable answers.
	RetryAfter time.Duration `json:"-"`
}

// NewError returns an *Error with the given code and message.
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *Error) Error() string {
	msg := "framework: " + e.Code + ": " + e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Body is the error as the protocol's error body: what [WriteError]
// sends. The cause and RetryAfter stay on the server.
func (e *Error) Body() wire.ErrorBody {
	return wire.ErrorBody{Error: wire.ErrorObject{Code: e.Code, Message: e.Message, Details: e.Details}}
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrForbidden) and friends match on the code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// Status is the HTTP status for the error's code.
func (e *Error) Status() int {
	return wire.HTTPStatus(e.Code)
}

// Sentinels for errors.Is: they match any *Error with the same code.
var (
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrConflict        = &Error{Code: CodeConflict}
	ErrInvalid         = &Error{Code: CodeInvalid}
	ErrRateLimited     = &Error{Code: CodeRateLimited}
	ErrQuotaExceeded   = &Error{Code: CodeQuotaExceeded}
)

// ValidationError carries field errors from a model's Validate method or a
// hook; the change is answered "rejected" (or 400 invalid) with these
// details. Paths are JSON pointers into the change: "/data/title" for a
// field of the record, "/modify_at" for the envelope.
type ValidationError struct {
	Details []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	if len(e.Details) == 0 {
		return "framework: invalid record"
	}
	return fmt.Sprintf("framework: invalid record: %s: %s", e.Details[0].Path, e.Details[0].Message)
}

// Invalid returns a *ValidationError for one place in the change, e.g.
// Invalid("/data/title", "must not be blank").
func Invalid(path, message string) error {
	return &ValidationError{Details: []FieldError{{Path: path, Message: message}}}
}

// asProtocolError maps any error to the *Error sent on the wire; anything
// not already an *Error is internal and its text is kept for logs only.
func asProtocolError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return &Error{Code: CodeInvalid, Message: "invalid record", Details: ve.Details}
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}
