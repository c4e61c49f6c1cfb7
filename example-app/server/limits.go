package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/internal/keyrate"
)

// RateLimit allows Requests requests per Per, in bursts of up to Requests.
// The zero value takes the default of the field it is in; a negative
// Requests turns the limit off.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Off reports whether the limit is turned off.
func (l RateLimit) Off() bool { return l.Requests < 0 }

func (l RateLimit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.Requests, l.Per)
}

// ParseRateLimit reads "10/1m" (10 requests per minute) or "off".
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return RateLimit{Requests: -1}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	reqs, err := strconv.Atoi(n)
	d, derr := time.ParseDuration(per)
	if !ok || err != nil || derr != nil || reqs <= 0 || d <= 0 {
		return RateLimit{}, fmt.Errorf("rate limit %q: want requests/duration such as 10/1m, or off", s)
	}
	return RateLimit{Requests: reqs, Per: d}, nil
}

func (l RateLimit) withDefault(def RateLimit) RateLimit {
	if l.Requests == 0 {
		return def
	}
	if l.Per <= 0 {
		l.Per = def.Per
	}
	return l
}

// newKeyedLimiter is a bucket per key (a client IP, an account) for l,
// remembering at most max keys; nil when l is off.
func newKeyedLimiter(l RateLimit, max int, now func() time.Time) *keyrate.Limiter {
	if l.Off() {
		return nil
	}
	return keyrate.New(float64(l.Requests)/l.Per.Seconds(), l.Requests, max, now)
}

// authLimits are the limits of the password-checked /auth routes.
type authLimits struct {
	perIP, perAccount *keyrate.Limiter
}

// admit counts one attempt of the client at ip on account. It returns a
// rate_limited error when either is over its limit, and otherwise a
// function to call after a correct password: it forgets the account's
// failed attempts, so that only wrong passwords count against an account
// (as usual, a successful login resets the count).
func (l *authLimits) admit(ip, account string) (success func(), err error) {
	if _, wait := l.perIP.Reserve(ipKey(ip)); wait > 0 {
		return nil, rateLimited(wait, "too many sign-in attempts from this address")
	}
	key := accountKey(account)
	if _, wait := l.perAccount.Reserve(key); wait > 0 {
		return nil, rateLimited(wait, "too many sign-in attempts for this account")
	}
	return func() { l.perAccount.Forget(key) }, nil
}

// accountKey is the limiter key of an account: a digest of its email, so
// that a key costs the same few bytes however long an email a client
// sends (the body may hold 64 KiB).
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return string(sum[:16])
}

func rateLimited(wait time.Duration, msg string) error {
	secs := int((wait + time.Second - 1) / time.Second)
	return &framework.Error{Code: framework.CodeRateLimited, RetryAfter: wait,
		Message: fmt.Sprintf("%s; try again in %d s", msg, secs)}
}

// ipKey is the limiter key of a client address: IPv4 addresses count one
// by one, IPv6 ones by /64 (one subscriber's prefix, which one attacker
// holds whole).
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// hashGate caps the password hashes computed at once: bcrypt is the most
// expensive thing an unauthenticated client can ask for, and queueing it
// without bound would let a flood of logins take every core and starve
// sync.
type hashGate struct {
	slots chan struct{}
	wait  time.Duration
}

func newHashGate(n int, wait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, n), wait: wait}
}

// do runs fn when a slot is free within the gate's wait, and otherwise
// answers unavailable (503) with Retry-After.
func (g *hashGate) do(ctx context.Context, fn func() error) error {
	select {
	case g.slots <- struct{}{}:
	default:
		t := time.NewTimer(g.wait)
		defer t.Stop()
		select {
		case g.slots <- struct{}{}:
		case <-t.C:
			return &framework.Error{Code: framework.CodeUnavailable, RetryAfter: time.Second,
				Message: "the server is busy checking passwords; try again in a second"}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	return fn()
}
