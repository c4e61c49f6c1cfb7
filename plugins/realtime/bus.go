package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Bus carries change hints between the replicas of a deployment: every
// replica publishes the scopes its pushes changed, and every replica (the
// publisher too) hears them and wakes its local streams. Hints carry
// scope ids only, never data; a stream that wakes reads the scope
// counters itself, so a bus may coalesce, repeat or reorder hints. What a
// bus must not do is lose one silently: when it may have (it was
// disconnected), it delivers a [Hint] with Resync set, and every stream
// checks again.
type Bus interface {
	// Start connects and delivers hints to deliver until Close: those of
	// every replica, this one's included. deliver must return quickly
	// (the plugin's only wakes streams). ctx bounds the connecting only.
	Start(ctx context.Context, deliver func(Hint)) error
	// Publish announces, after commit, that scopes changed. It never
	// blocks on the network: hints are queued, coalesced and sent in the
	// background.
	Publish(scopes []string)
	// Close stops delivering and releases the bus's connections.
	Close() error
}

// Hint is what a bus delivers: scopes that changed, or Resync when hints
// may have been lost and every stream must check its scopes again.
type Hint struct {
	Scopes []string
	Resync bool
}

// LocalBus is the bus of a single replica: hints go straight from the
// push to this process's streams. It is the default, and the one to use
// with SQLite.
type LocalBus struct {
	mu      sync.RWMutex
	deliver func(Hint)
}

// NewLocalBus returns an in-process bus.
func NewLocalBus() *LocalBus { return &LocalBus{} }

// Start implements [Bus].
func (b *LocalBus) Start(_ context.Context, deliver func(Hint)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliver = deliver
	return nil
}

// Publish implements [Bus].
func (b *LocalBus) Publish(scopes []string) {
	b.mu.RLock()
	deliver := b.deliver
	b.mu.RUnlock()
	if deliver != nil && len(scopes) > 0 {
		deliver(Hint{Scopes: scopes})
	}
}

// Close implements [Bus].
func (b *LocalBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliver = nil
	return nil
}

// payload is a hint on the wire of the PostgreSQL and NATS buses:
// {"s":["scope",…]} or {"r":true}.
type payload struct {
	Scopes []string `json:"s,omitempty"`
	Resync bool     `json:"r,omitempty"`
}

func decodeHint(b []byte) (Hint, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return Hint{}, fmt.Errorf("realtime: a hint that is not one: %w", err)
	}
	return Hint{Scopes: p.Scopes, Resync: p.Resync}, nil
}

// encodeHints splits scopes into payloads of at most max bytes each. A
// scope id too long for any payload turns the lot into a resync.
func encodeHints(scopes []string, resync bool, max int) [][]byte {
	if resync {
		return [][]byte{[]byte(`{"r":true}`)}
	}
	var out [][]byte
	cur := []byte(`{"s":[`)
	n := 0
	for _, s := range scopes {
		q, _ := json.Marshal(s) // a string always encodes
		if len(`{"s":[`)+len(q)+len(`]}`) > max {
			return [][]byte{[]byte(`{"r":true}`)}
		}
		if len(cur)+1+len(q)+len(`]}`) > max {
			out = append(out, append(cur, "]}"...))
			cur, n = []byte(`{"s":[`), 0
		}
		if n > 0 {
			cur = append(cur, ',')
		}
		cur = append(cur, q...)
		n++
	}
	if n > 0 {
		out = append(out, append(cur, "]}"...))
	}
	return out
}

// batcher is the publishing side of a networked bus: Publish adds scopes
// to a pending set, and one goroutine sends them, so the hints of
// concurrent pushes to the same scopes travel once, and a push never
// waits for the network. When the set outgrows maxPending, or a send
// fails, what is pending becomes one resync (sent with backoff until it
// goes through): replicas check every stream, nothing is lost.
type batcher struct {
	send       func(ctx context.Context, payload []byte) error
	maxPayload int
	maxPending int
	onError    func(error)
	// linger is the shortest time between two sends.
	linger time.Duration

	mu      sync.Mutex
	pending map[string]struct{}
	resync  bool
	wake    chan struct{}
}

func newBatcher(send func(context.Context, []byte) error, maxPayload, maxPending int, onError func(error)) *batcher {
	return &batcher{send: send, maxPayload: maxPayload, maxPending: maxPending, onError: onError,
		pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

func (b *batcher) add(scopes []string) {
	if len(scopes) == 0 {
		return
	}
	b.mu.Lock()
	for _, s := range scopes {
		if len(b.pending) >= b.maxPending {
			b.resync = true
			break
		}
		b.pending[s] = struct{}{}
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *batcher) take() ([]string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.resync {
		b.resync = false
		clear(b.pending)
		return nil, true
	}
	scopes := make([]string, 0, len(b.pending))
	for s := range b.pending {
		scopes = append(scopes, s)
	}
	clear(b.pending)
	sort.Strings(scopes)
	return scopes, false
}

// run sends until ctx ends.
func (b *batcher) run(ctx context.Context) {
	backoff := newBackoff()
	var last time.Time // the last send
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		// At most one send per linger: under load the hints of
		// concurrent pushes gather into one message (each NOTIFY is a
		// transaction of its own), while a lone hint goes at once.
		if wait := b.linger - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		scopes, resync := b.take()
		if len(scopes) == 0 && !resync {
			continue
		}
		for {
			err := b.sendAll(ctx, scopes, resync)
			if err == nil {
				backoff.reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			b.onError(err)
			// What failed may have reached some replicas and not others:
			// the next send is a resync, whatever else is pending.
			scopes, resync = nil, true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff.next()):
			}
		}
	}
}

func (b *batcher) sendAll(ctx context.Context, scopes []string, resync bool) error {
	for _, p := range encodeHints(scopes, resync, b.maxPayload) {
		if err := b.send(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// backoff is exponential with full jitter, from 50ms to 5s.
type backoff struct{ n int }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) reset() { b.n = 0 }

func (b *backoff) next() time.Duration {
	d := 50 * time.Millisecond << min(b.n, 7)
	d = min(d, 5*time.Second)
	b.n++
	return d/2 + rand.N(d/2+1)
}
