package rxdb

import (
	"errors"
	"sync"
)

// hub wakes the open streams of a key (owner and collection) when a
// commit touched it, in process. Wake-ups coalesce: a stream reads what
// changed from the store itself, so it needs no queue and never depends on
// the order in which after-commit hooks run. Each wake-up also adds the
// size of what the commit wrote, so a stream can tell, before it reads
// anything, that the changes are more than one event may carry. The hub
// counts streams per user and in total and refuses more than its caps. It
// is safe for concurrent use.
type hub struct {
	maxPerUser, maxTotal int

	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{}
	users  map[string]int // open streams per user
	total  int
	closed bool
}

// subscriber is one open stream.
type subscriber struct {
	key, user string
	// notify holds one pending wake-up.
	notify chan struct{}
	// done is closed when the hub closes: the stream ends.
	done chan struct{}
	// pending is what the commits since the last take wrote (under the
	// hub's lock).
	pending pending
}

// pending sums the documents and bytes commits wrote for a stream since it
// last looked. The sums saturate, so no number of commits overflows them.
type pending struct {
	docs  int
	bytes int64
	// unknown is set when a hint from another replica woke the stream:
	// it does not say how much was written.
	unknown bool
}

const saturated = 1 << 30

func (p *pending) add(docs int, bytes int64) {
	p.docs = min(p.docs+docs, saturated)
	p.bytes = min(p.bytes+bytes, saturated)
}

var (
	errUserStreams  = errors.New("rxdb: the user holds the maximum of open streams")
	errTotalStreams = errors.New("rxdb: the server holds the maximum of open streams")
)

func newHub(maxPerUser, maxTotal int) *hub {
	return &hub{maxPerUser: maxPerUser, maxTotal: maxTotal,
		subs: map[string]map[*subscriber]struct{}{}, users: map[string]int{}}
}

// subscribe opens a stream of user on key, or answers errUserStreams or
// errTotalStreams when a cap is reached. After close it returns a stream
// that is already done.
func (h *hub) subscribe(user, key string) (*subscriber, error) {
	s := &subscriber{key: key, user: user, notify: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.done)
		return s, nil
	}
	if h.users[user] >= h.maxPerUser {
		return nil, errUserStreams
	}
	if h.total >= h.maxTotal {
		return nil, errTotalStreams
	}
	if h.subs[key] == nil {
		h.subs[key] = map[*subscriber]struct{}{}
	}
	h.subs[key][s] = struct{}{}
	h.users[user]++
	h.total++
	return s, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s.key][s]; !ok {
		return // never counted (opened after close), or the hub closed
	}
	delete(h.subs[s.key], s)
	if len(h.subs[s.key]) == 0 {
		delete(h.subs, s.key)
	}
	if h.users[s.user]--; h.users[s.user] == 0 {
		delete(h.users, s.user)
	}
	h.total--
}

// wake tells every stream of key that a commit wrote docs documents of
// about bytes bytes.
func (h *hub) wake(key string, docs int, bytes int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[key] {
		s.pending.add(docs, bytes)
		s.poke()
	}
}

// wakeUnknown tells every stream of key that something was written, not
// how much (a hint from the bus).
func (h *hub) wakeUnknown(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[key] {
		s.pending.unknown = true
		s.poke()
	}
}

// wakeAll wakes every stream: hints may have been lost.
func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.subs {
		for s := range subs {
			s.pending.unknown = true
			s.poke()
		}
	}
}

func (s *subscriber) poke() {
	select {
	case s.notify <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// take returns what was written for s since the last take, and starts
// counting again.
func (h *hub) take(s *subscriber) pending {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := s.pending
	s.pending = pending{}
	return p
}

// open is the number of open streams.
func (h *hub) open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// close ends every open stream and every stream opened later.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, subs := range h.subs {
		for s := range subs {
			close(s.done)
		}
	}
	h.subs = map[string]map[*subscriber]struct{}{}
	h.users = map[string]int{}
	h.total = 0
}
