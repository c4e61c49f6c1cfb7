package framework

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Live streams (a plugin's Server-Sent Events) share these: how a
// refused stream is answered, and how a stream checks its credentials
// again.

// StreamRetryAfter is the Retry-After of a refused live stream: streams
// are long-lived, so a slot frees slowly.
const StreamRetryAfter = 30 * time.Second

// StreamRefused is the answer to a live stream over a cap: perUser says
// which (429 rate_limited for a user's cap, 503 unavailable for the
// server's), with Retry-After.
func StreamRefused(perUser bool, limit int) *Error {
	if perUser {
		return &Error{Code: CodeRateLimited, RetryAfter: StreamRetryAfter,
			Message: fmt.Sprintf("a user may hold at most %d open streams; close one", limit)}
	}
	return &Error{Code: CodeUnavailable, RetryAfter: StreamRetryAfter,
		Message: "this server holds its maximum of open streams; retry later"}
}

// StillAuthenticated asks the authenticator again whether the
// credentials of r, which opened a live stream of who, still hold: a
// revoked token (a password change, a deleted account, a logout) ends
// the stream at its next check. A failure of the authenticator itself
// (its store is down) answers true, as it logs nobody out either; it is
// logged.
func (a *App) StillAuthenticated(r *http.Request, who Principal) bool {
	now, err := a.Authenticate(r)
	if err == nil {
		return now.UserID == who.UserID
	}
	var pe *Error
	if errors.As(err, &pe) && pe.Code == CodeUnauthenticated {
		return false
	}
	a.log.WarnContext(r.Context(), "a live stream could not check its credentials again; it goes on", "err", err, "user", who.UserID)
	return true
}
