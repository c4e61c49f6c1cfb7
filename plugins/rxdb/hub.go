package rxdb

import "sync"

// hub fans stream events out to the subscribers of a key (owner and
// collection), in process. It is safe for concurrent use.
type hub struct {
	buffer int
	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{}
	closed bool
}

// subscriber is one open stream.
type subscriber struct {
	key    string
	notify chan struct{}
	// done is closed when the hub closes: the stream ends.
	done chan struct{}

	mu      sync.Mutex
	pending [][]byte
	resync  bool
}

func newHub(buffer int) *hub {
	return &hub{buffer: buffer, subs: map[string]map[*subscriber]struct{}{}}
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

// publish queues ev for every subscriber of key; a subscriber that fell
// behind by more than the buffer gets a resync instead of the events.
func (h *hub) publish(key string, ev []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[key] {
		s.mu.Lock()
		if len(s.pending) >= h.buffer {
			s.pending, s.resync = nil, true
		} else if !s.resync {
			s.pending = append(s.pending, ev)
		}
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// take returns the queued events, or resync when they were dropped.
func (s *subscriber) take() (events [][]byte, resync bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, resync = s.pending, s.resync
	s.pending, s.resync = nil, false
	return events, resync
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
