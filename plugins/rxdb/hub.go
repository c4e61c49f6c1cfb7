package rxdb

import "sync"

// hub wakes the open streams of a key (owner and collection) when a
// commit touched it, in process. Wake-ups coalesce: a stream reads what
// changed from the store itself, so it needs no queue and never depends on
// the order in which after-commit hooks run. It is safe for concurrent
// use.
type hub struct {
	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{}
	closed bool
}

// subscriber is one open stream.
type subscriber struct {
	key string
	// notify holds one pending wake-up.
	notify chan struct{}
	// done is closed when the hub closes: the stream ends.
	done chan struct{}
}

func newHub() *hub {
	return &hub{subs: map[string]map[*subscriber]struct{}{}}
}

func (h *hub) subscribe(key string) *subscriber {
	s := &subscriber{key: key, notify: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.done)
		return s
	}
	if h.subs[key] == nil {
		h.subs[key] = map[*subscriber]struct{}{}
	}
	h.subs[key][s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.key], s)
	if len(h.subs[s.key]) == 0 {
		delete(h.subs, s.key)
	}
}

// wake tells every stream of key that something changed.
func (h *hub) wake(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[key] {
		select {
		case s.notify <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
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
}
