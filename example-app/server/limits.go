package server

import (
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"golang.org/x/time/rate"
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

// keyedLimiter is a token bucket per key (a client IP, an account) with
// bounded memory: a key unused for long enough to have refilled its
// bucket is forgotten (a fresh bucket is the same), and beyond max keys
// the least recently used one is forgotten (which can only forgive, never
// refuse, so a flood of new keys cannot lock anyone out).
type keyedLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration
	max   int
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     list.List // of *limiterEntry, most recent first
}

type limiterEntry struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(l RateLimit, max int, now func() time.Time) *keyedLimiter {
	if l.Off() {
		return nil
	}
	return &keyedLimiter{
		limit: rate.Limit(float64(l.Requests) / l.Per.Seconds()), burst: l.Requests,
		idle: l.Per, max: max, now: now, entries: map[string]*list.Element{},
	}
}

// reserve takes one request from key's bucket. When the bucket is empty it
// takes nothing and returns how long until it has a request again.
func (k *keyedLimiter) reserve(key string) (ok bool, wait time.Duration) {
	if k == nil {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	// Forget idle keys from the cold end.
	for back := k.lru.Back(); back != nil; back = k.lru.Back() {
		e := back.Value.(*limiterEntry)
		if now.Sub(e.seen) < k.idle {
			break
		}
		k.lru.Remove(back)
		delete(k.entries, e.key)
	}
	var e *limiterEntry
	if el, ok := k.entries[key]; ok {
		e = el.Value.(*limiterEntry)
		k.lru.MoveToFront(el)
	} else {
		for len(k.entries) >= k.max {
			back := k.lru.Back()
			k.lru.Remove(back)
			delete(k.entries, back.Value.(*limiterEntry).key)
		}
		e = &limiterEntry{key: key, lim: rate.NewLimiter(k.limit, k.burst)}
		k.entries[key] = k.lru.PushFront(e)
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // not yet acted on, so it gives the token back
		return false, d
	}
	return true, 0
}

// forget drops key's bucket (a fresh one is full).
func (k *keyedLimiter) forget(key string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.entries[key]; ok {
		k.lru.Remove(el)
		delete(k.entries, key)
	}
}

// size is the number of keys remembered.
func (k *keyedLimiter) size() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}

// authLimits are the limits of the password-checked /auth routes.
type authLimits struct {
	perIP, perAccount *keyedLimiter
}

// admit counts one attempt of the client at ip on account. It returns a
// rate_limited error when either is over its limit, and otherwise a
// function to call after a correct password: it forgets the account's
// failed attempts, so that only wrong passwords count against an account
// (as usual, a successful login resets the count).
func (l *authLimits) admit(ip, account string) (success func(), err error) {
	if _, wait := l.perIP.reserve(ipKey(ip)); wait > 0 {
		return nil, rateLimited(wait, "too many sign-in attempts from this address")
	}
	key := accountKey(account)
	if _, wait := l.perAccount.reserve(key); wait > 0 {
		return nil, rateLimited(wait, "too many sign-in attempts for this account")
	}
	return func() { l.perAccount.forget(key) }, nil
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
