package client

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferrysync/ferry/framework/wire"
)

// Sentinel errors, for errors.Is. An [*Error] from the server matches the
// sentinel of its code.
var (
	// ErrNotFound: the local store has no record under that key.
	ErrNotFound = errors.New("client: record not found")
	// ErrUnauthenticated: the server refused the token (401). Sign in
	// again and retry; nothing local was lost.
	ErrUnauthenticated = errors.New("client: unauthenticated")
	// ErrForbidden: the server answered 403.
	ErrForbidden = errors.New("client: forbidden")
	// ErrResetRequired: the server purged changes after the cursor (410).
	// [Client.Sync] handles it by pulling from the start; it reaches the
	// caller only when the reset itself fails.
	ErrResetRequired = errors.New("client: reset required")
)

// Error codes of the wire protocol that the client acts upon ([wire]
// has them all).
const (
	CodeUnauthenticated = wire.CodeUnauthenticated
	CodeForbidden       = wire.CodeForbidden
	CodeResetRequired   = wire.CodeResetRequired
	CodeTooLarge        = wire.CodeTooLarge
	CodeInternal        = wire.CodeInternal
)

// FieldError is one problem with one place of a change, named by a JSON
// pointer ("/data/title") ([wire.FieldError]).
type FieldError = wire.FieldError

// Error is an error answer of the server: the HTTP status and the
// protocol's {"error": {"code", "message", "details"}} body. When the body
// does not have that shape (a proxy's error page), Code is derived from the
// status and Message is the status text.
type Error struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is the protocol's error code, such as "invalid" or
	// "reset_required".
	Code    string
	Message string
	Details []FieldError
	// Method and Path name the request that failed.
	Method string
	Path   string
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("client: %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, e.Code, e.Message)
	if len(e.Details) > 0 {
		msg += fmt.Sprintf(" (%s: %s", e.Details[0].Path, e.Details[0].Message)
		if len(e.Details) > 1 {
			msg += fmt.Sprintf(" and %d more", len(e.Details)-1)
		}
		msg += ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnauthenticated), ErrForbidden and
// ErrResetRequired match on the code (or, without one, the status).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthenticated:
		return e.Code == CodeUnauthenticated || e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.Code == CodeForbidden || e.StatusCode == http.StatusForbidden
	case ErrResetRequired:
		return e.Code == CodeResetRequired || e.StatusCode == http.StatusGone
	}
	return false
}

// Temporary reports whether retrying the same request later may succeed:
// 429 and 5xx answers.
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}
