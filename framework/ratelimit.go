package framework

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userLimits holds one token bucket per user for [Config.RateLimit]. Its
// memory is bounded: when it holds maxTracked users it first forgets the
// ones whose buckets are full again (idle users lose nothing by it), and
// if every one is busy, it starts over.
type userLimits struct {
	every rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

const maxTracked = 100_000

func newUserLimits(perSecond float64, burst int, now func() time.Time) *userLimits {
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &userLimits{every: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token of user's bucket, or says how long until one is
// there.
func (l *userLimits) allow(user string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[user]
	if !ok {
		if len(l.buckets) >= maxTracked {
			l.forgetIdle(now)
		}
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[user] = b
	}
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *userLimits) forgetIdle(now time.Time) {
	for u, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, u)
		}
	}
	if len(l.buckets) >= maxTracked {
		clear(l.buckets)
	}
}
