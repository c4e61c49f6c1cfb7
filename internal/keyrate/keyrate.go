// Package keyrate is a token bucket per key (a user, a client address, an
// account) with bounded memory, on golang.org/x/time/rate. The framework's
// per-user request rate and the example app's sign-in limits share it.
package keyrate

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one bucket per key. A key unused for long enough to have
// refilled its bucket is forgotten (a fresh bucket is the same), and
// beyond Max keys the least recently used one is forgotten, which can
// only forgive, never refuse: a flood of new keys cannot lock anyone out.
// A nil *Limiter admits everything. It is safe for concurrent use.
type Limiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration
	max   int
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     list.List // of *entry, most recent first
}

type entry struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// New returns a Limiter allowing perSecond requests per key with bursts
// of burst, remembering at most max keys (at least 1); now is the clock.
func New(perSecond float64, burst, max int, now func() time.Time) *Limiter {
	burst, max = maxInt(burst, 1), maxInt(max, 1)
	return &Limiter{
		limit: rate.Limit(perSecond), burst: burst, max: max, now: now,
		// The time an empty bucket takes to fill again.
		idle:    time.Duration(float64(burst) / perSecond * float64(time.Second)),
		entries: map[string]*list.Element{},
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// Reserve takes one request from key's bucket. When the bucket is empty
// it takes nothing and returns how long until it has a request again.
func (k *Limiter) Reserve(key string) (ok bool, wait time.Duration) {
	if k == nil {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	for back := k.lru.Back(); back != nil; back = k.lru.Back() {
		e := back.Value.(*entry)
		if now.Sub(e.seen) < k.idle {
			break
		}
		k.lru.Remove(back)
		delete(k.entries, e.key)
	}
	var e *entry
	if el, ok := k.entries[key]; ok {
		e = el.Value.(*entry)
		k.lru.MoveToFront(el)
	} else {
		for len(k.entries) >= k.max {
			back := k.lru.Back()
			k.lru.Remove(back)
			delete(k.entries, back.Value.(*entry).key)
		}
		e = &entry{key: key, lim: rate.NewLimiter(k.limit, k.burst)}
		k.entries[key] = k.lru.PushFront(e)
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // not yet acted on, so it gives the token back
		return false, d
	}
	return true, 0
}

// Forget drops key's bucket (a fresh one is full).
func (k *Limiter) Forget(key string) {
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

// Len is the number of keys remembered.
func (k *Limiter) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}
