package framework

import (
	"context"
	"net/http"
	"time"
)

// Principal is the authenticated caller: a user id, which is also the
// owner of everything the user creates.
type Principal struct {
	UserID string
	// ExpiresAt is when the credentials that authenticated this principal
	// stop being valid (zero: not known). Long-lived answers such as live
	// streams end then, so a stream never outlives its token.
	ExpiresAt time.Time
}

// Authenticator turns a request into a principal. It returns an error
// matching [ErrUnauthenticated] when the credentials are missing or bad;
// the core hard-codes no scheme (see plugins/jwtauth).
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(r *http.Request) (Principal, error)

// Authenticate implements [Authenticator].
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Principal, error) { return f(r) }

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the sync routes authenticated.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
