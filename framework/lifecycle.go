package framework

import (
	"context"
	"errors"
	"fmt"
)

// Starter is an optional interface for plugins that own something while
// the App serves: a listener connection, a goroutine, a pool. [App.Start]
// calls Start once, in [App.Use] order, after every plugin's Setup; ctx
// bounds the starting only (a plugin keeps what it started until
// Close). Nothing may start at Setup or import time.
type Starter interface {
	Start(ctx context.Context) error
}

// Closer is an optional interface for plugins that release what they
// hold when the App stops: [App.Close] calls Close once, in reverse
// [App.Use] order, on plugins that started (or that have no Start).
type Closer interface {
	Close() error
}

// Start seals the registry and starts the plugins that implement
// [Starter], in Use order, then the App's own tombstone purge when
// Config.TombstoneRetention asks for it. If one fails, the ones already started are
// closed in reverse order and the error names the plugin; the App can
// then only be closed. Call it once, before serving; [App.Close] ends
// what it started.
func (a *App) Start(ctx context.Context) error {
	a.seal()
	a.mu.Lock()
	if a.lifecycle != lifecycleNew {
		a.mu.Unlock()
		return errors.New("framework: App.Start called twice")
	}
	a.lifecycle = lifecycleStarted
	plugins := append([]Plugin(nil), a.plugins...)
	a.mu.Unlock()
	for i, p := range plugins {
		s, ok := p.(Starter)
		if !ok {
			continue
		}
		if err := s.Start(ctx); err != nil {
			a.mu.Lock()
			a.started = i // the plugins before i started
			a.mu.Unlock()
			return errors.Join(fmt.Errorf("framework: start plugin %q: %w", p.Name(), err), a.Close())
		}
	}
	a.mu.Lock()
	a.started = len(plugins)
	a.mu.Unlock()
	a.startPurger()
	a.logRoutes(ctx, "start")
	return nil
}

// Close stops the App's tombstone purge (waiting for a run in progress),
// closes the plugins that implement [Closer], in reverse Use order, and
// releases the usage accounting hold [App.Migrate] took, and returns
// their errors joined. Only plugins that started are closed
// when Start failed part of the way; after a successful Start (or without
// one) all are. It is safe to call more than once: later calls do
// nothing.
func (a *App) Close() error {
	a.mu.Lock()
	if a.lifecycle == lifecycleClosed {
		a.mu.Unlock()
		return nil
	}
	n := len(a.plugins)
	if a.lifecycle == lifecycleStarted {
		n = a.started
	}
	a.lifecycle = lifecycleClosed
	plugins := append([]Plugin(nil), a.plugins[:n]...)
	a.mu.Unlock()
	a.stopPurger()
	var errs []error
	for i := len(plugins) - 1; i >= 0; i-- {
		if c, ok := plugins[i].(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("framework: close plugin %q: %w", plugins[i].Name(), err))
			}
		}
	}
	errs = append(errs, a.releaseUsageHold())
	return errors.Join(errs...)
}

// The App's lifecycle: new (registering), started, closed.
const (
	lifecycleNew = iota
	lifecycleStarted
	lifecycleClosed
)
