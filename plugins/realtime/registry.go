package realtime

import (
	"errors"
	"slices"
	"sync"
)

// registry holds this replica's open streams by the scopes they watch,
// wakes them when a hint names one of their scopes (or every stream on a
// resync), and caps them per user and in total. Wake-ups coalesce: a
// stream reads the scope counters itself when it wakes, so one pending
// wake-up is all it needs.
type registry struct {
	maxPerUser, maxTotal int

	mu      sync.Mutex
	byScope map[string]map[*stream]struct{}
	all     map[*stream]struct{}
	users   map[string]int
	closed  bool
	// listeners hear every hint after the streams ([Plugin.OnHint]).
	listeners map[int]func(scopes []string, resync bool)
	nextID    int
}

// stream is one open stream's registration.
type stream struct {
	user   string
	scopes []string // under the registry's lock
	wake   chan struct{}
	done   chan struct{} // closed when the registry closes
}

var (
	errUserStreams  = errors.New("realtime: the user holds the maximum of open streams")
	errTotalStreams = errors.New("realtime: the server holds the maximum of open streams")
)

func newRegistry(maxPerUser, maxTotal int) *registry {
	return &registry{maxPerUser: maxPerUser, maxTotal: maxTotal,
		byScope: map[string]map[*stream]struct{}{}, all: map[*stream]struct{}{}, users: map[string]int{}}
}

// open registers a stream of user watching scopes; after close it returns
// a stream that is already done.
func (r *registry) open(user string, scopes []string) (*stream, error) {
	s := &stream{user: user, wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		close(s.done)
		return s, nil
	}
	if r.users[user] >= r.maxPerUser {
		return nil, errUserStreams
	}
	if len(r.all) >= r.maxTotal {
		return nil, errTotalStreams
	}
	r.users[user]++
	r.all[s] = struct{}{}
	r.watch(s, scopes)
	return s, nil
}

// rescope changes the scopes s watches (a user's readable scopes change
// with sharing).
func (r *registry) rescope(s *stream, scopes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.all[s]; !ok || slices.Equal(s.scopes, scopes) {
		return
	}
	r.unwatch(s)
	r.watch(s, scopes)
}

func (r *registry) watch(s *stream, scopes []string) {
	s.scopes = slices.Clone(scopes)
	for _, sc := range s.scopes {
		set := r.byScope[sc]
		if set == nil {
			set = map[*stream]struct{}{}
			r.byScope[sc] = set
		}
		set[s] = struct{}{}
	}
}

func (r *registry) unwatch(s *stream) {
	for _, sc := range s.scopes {
		delete(r.byScope[sc], s)
		if len(r.byScope[sc]) == 0 {
			delete(r.byScope, sc)
		}
	}
	s.scopes = nil
}

// remove unregisters s.
func (r *registry) remove(s *stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.all[s]; !ok {
		return
	}
	r.unwatch(s)
	delete(r.all, s)
	if r.users[s.user]--; r.users[s.user] == 0 {
		delete(r.users, s.user)
	}
}

// deliver wakes the streams a hint concerns, then tells the listeners.
func (r *registry) deliver(h Hint) {
	r.mu.Lock()
	if h.Resync {
		for s := range r.all {
			s.poke()
		}
	} else {
		for _, sc := range h.Scopes {
			for s := range r.byScope[sc] {
				s.poke()
			}
		}
	}
	listeners := make([]func([]string, bool), 0, len(r.listeners))
	for _, fn := range r.listeners {
		listeners = append(listeners, fn)
	}
	r.mu.Unlock()
	for _, fn := range listeners {
		fn(h.Scopes, h.Resync)
	}
}

// listen adds a listener; the returned function removes it.
func (r *registry) listen(fn func(scopes []string, resync bool)) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listeners == nil {
		r.listeners = map[int]func([]string, bool){}
	}
	id := r.nextID
	r.nextID++
	r.listeners[id] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.listeners, id)
	}
}

func (s *stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends every stream; later ones open already done.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for s := range r.all {
		close(s.done)
	}
}

// count is the number of open streams.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}
