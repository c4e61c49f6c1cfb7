// Package hook is a small chain-of-handlers mechanism, modelled on
// PocketBase's tools/hook: each handler receives the event and calls
// e.Next() to run the rest of the chain; work before Next is "before", work
// after it is "after", and returning an error without calling Next aborts.
// The core action is the last link of the chain.
package hook

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Event is embedded in every event type; it carries the rest of the chain.
type Event struct {
	next func() error
}

// Next runs the rest of the chain and returns its error.
func (e *Event) Next() error {
	if e.next == nil {
		return nil
	}
	return e.next()
}

func (e *Event) nextFunc() func() error     { return e.next }
func (e *Event) setNextFunc(f func() error) { e.next = f }

// Resolver is implemented by every pointer to a struct embedding Event.
type Resolver interface {
	Next() error
	nextFunc() func() error
	setNextFunc(func() error)
}

// Handler is one link of a chain. Handlers run by ascending Priority, then
// in bind order. Binding a handler with an ID that is already bound
// replaces it, so a plugin set up twice does not run twice.
type Handler[E Resolver] struct {
	ID       string
	Priority int
	// Tags, when set, limit the handler to triggers carrying one of them
	// (Ferry tags data hooks with the model name, e.g. "data.User").
	Tags []string
	Func func(E) error
}

func (h *Handler[E]) matches(tags []string) bool {
	if len(h.Tags) == 0 {
		return true
	}
	for _, want := range h.Tags {
		for _, have := range tags {
			if want == have {
				return true
			}
		}
	}
	return false
}

// Hook is a chain of handlers for one event type. It is safe for
// concurrent use.
type Hook[E Resolver] struct {
	mu       sync.RWMutex
	handlers []*Handler[E]
	seq      int
	gen      atomic.Uint64
}

// Bind adds or replaces (same ID) a handler and returns its ID.
func (h *Hook[E]) Bind(handler *Handler[E]) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.gen.Add(1)
	if handler.ID == "" {
		h.seq++
		handler.ID = "anonymous-" + itoa(h.seq)
	}
	for i, old := range h.handlers {
		if old.ID == handler.ID {
			h.handlers[i] = handler
			h.sort()
			return handler.ID
		}
	}
	h.handlers = append(h.handlers, handler)
	h.sort()
	return handler.ID
}

// BindFunc adds an anonymous handler with priority 0 and returns its ID.
func (h *Hook[E]) BindFunc(fn func(E) error) string {
	return h.Bind(&Handler[E]{Func: fn})
}

// Unbind removes the handlers with the given IDs.
func (h *Hook[E]) Unbind(ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.gen.Add(1)
	kept := h.handlers[:0]
	for _, hd := range h.handlers {
		drop := false
		for _, id := range ids {
			if hd.ID == id {
				drop = true
			}
		}
		if !drop {
			kept = append(kept, hd)
		}
	}
	h.handlers = kept
}

// Len returns the number of bound handlers.
func (h *Hook[E]) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.handlers)
}

func (h *Hook[E]) sort() {
	sort.SliceStable(h.handlers, func(i, j int) bool { return h.handlers[i].Priority < h.handlers[j].Priority })
}

// HasHandlers reports whether a trigger with these tags would run any
// handler, so callers can skip building events nobody listens to.
func (h *Hook[E]) HasHandlers(tags ...string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, hd := range h.handlers {
		if hd.matches(tags) {
			return true
		}
	}
	return false
}

// Matching returns copies of the handlers a trigger with these tags would
// run, in the order they would run; a handler without Tags matches every
// trigger.
func (h *Hook[E]) Matching(tags ...string) []Handler[E] {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []Handler[E]
	for _, hd := range h.handlers {
		if hd.matches(tags) {
			out = append(out, *hd)
		}
	}
	return out
}

// Generation counts the changes to the bound handlers (every Bind and
// Unbind moves it), so that a caller caching what it derived from them,
// such as which handlers run for a tag, sees when the cache is stale. It
// is cheap: one atomic load.
func (h *Hook[E]) Generation() uint64 { return h.gen.Load() }

// Trigger runs the bound handlers that match tags (untagged handlers
// always match) and then final, the core action, as one chain on event.
func (h *Hook[E]) Trigger(event E, final func(E) error, tags ...string) error {
	h.mu.RLock()
	fns := make([]func(E) error, 0, len(h.handlers)+1)
	for _, hd := range h.handlers {
		if hd.matches(tags) {
			fns = append(fns, hd.Func)
		}
	}
	h.mu.RUnlock()
	if final != nil {
		fns = append(fns, final)
	}
	event.setNextFunc(nil)
	for i := len(fns) - 1; i >= 0; i-- {
		fn := fns[i]
		rest := event.nextFunc()
		event.setNextFunc(func() error {
			event.setNextFunc(rest)
			return fn(event)
		})
	}
	return event.Next()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
