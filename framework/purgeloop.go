package framework

import (
	"context"
	"fmt"
	"time"
)

// purger is the App's own tombstone purge, run while the App is started
// (Config.TombstoneRetention).
type purger struct {
	stop context.CancelFunc
	done chan struct{}
}

// purgeInterval is Config.PurgeInterval's default: a 24th of the
// retention (a purge is late by at most that much), between a minute and
// an hour.
func purgeInterval(retention time.Duration) time.Duration {
	return min(max(retention/24, time.Minute), time.Hour)
}

func (c *Config) checkPurge() error {
	if c.TombstoneRetention < 0 {
		return fmt.Errorf("framework: Config.TombstoneRetention %v is negative (0 turns the purge off)", c.TombstoneRetention)
	}
	if c.PurgeInterval < 0 {
		return fmt.Errorf("framework: Config.PurgeInterval %v is negative", c.PurgeInterval)
	}
	if c.TombstoneRetention > 0 && c.PurgeInterval == 0 {
		c.PurgeInterval = purgeInterval(c.TombstoneRetention)
	}
	return nil
}

// startPurger starts the purge loop when the configuration asks for one:
// a run at once (a server restarted more often than the interval still
// purges), then one every PurgeInterval, until [App.Close].
func (a *App) startPurger() {
	if a.cfg.TombstoneRetention <= 0 {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &purger{stop: stop, done: make(chan struct{})}
	a.mu.Lock()
	a.purger = p
	a.mu.Unlock()
	go func() {
		defer close(p.done)
		tick := time.NewTicker(a.cfg.PurgeInterval)
		defer tick.Stop()
		for {
			a.purgeOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

func (a *App) purgeOnce(ctx context.Context) {
	n, err := a.PurgeTombstones(ctx, a.cfg.TombstoneRetention)
	switch {
	case err != nil && ctx.Err() != nil:
		// Closing: the purge stopped between two owners, and the next
		// start takes it up again.
	case err != nil:
		a.log.ErrorContext(ctx, "tombstone purge failed", "err", err, "purged", n)
	case n > 0:
		a.log.InfoContext(ctx, "tombstones purged", "purged", n, "retention", a.cfg.TombstoneRetention)
	}
}

// stopPurger stops the purge loop and waits for a run in progress to
// end (it stops between two owners' transactions).
func (a *App) stopPurger() {
	a.mu.Lock()
	p := a.purger
	a.purger = nil
	a.mu.Unlock()
	if p != nil {
		p.stop()
		<-p.done
	}
}
