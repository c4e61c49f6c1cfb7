package client

import (
	"context"
	"errors"
	"time"
)

// RunOptions configures the background loop of [Client.Run]. The zero
// value is useful.
type RunOptions struct {
	// Interval is the time between periodic syncs (default one minute; a
	// negative value disables them).
	Interval time.Duration
	// Debounce is how long the loop waits after a local change for more
	// changes before it syncs (default 500ms). A steady stream of changes
	// still syncs at least every 10 Debounce.
	Debounce time.Duration
	// OnSync, when set, is called from the loop's goroutine after every
	// sync with its result and error. Errors do not stop the loop: after a
	// failed sync it tries again with exponential backoff, from 2 Debounce
	// up to Interval (or one minute when periodic syncs are disabled).
	OnSync func(res SyncResult, err error)
}

// ErrRunning is returned by [Client.Run] when another Run of the same
// client has not returned yet.
var ErrRunning = errors.New("client: Run is already running")

// Run syncs in the background until ctx is done, then returns ctx.Err():
// once at start, after local changes (debounced), periodically, after a
// failed sync (with backoff), and soon after every [Client.Trigger]. Syncs
// are the same as [Client.Sync] and are serialized with the
// application's own calls of it. Run is meant to run in its own
// goroutine; one Run at a time per client.
func (c *Client) Run(ctx context.Context, opts RunOptions) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	interval := opts.Interval
	if interval == 0 {
		interval = time.Minute
	}
	debounce := opts.Debounce
	if debounce <= 0 {
		debounce = 500 * time.Millisecond
	}
	maxBackoff := interval
	if maxBackoff < 0 {
		maxBackoff = time.Minute
	}
	maxBackoff = max(maxBackoff, 2*debounce)

	// Timers that are not armed hold a nil channel: a receive from it
	// blocks forever, so the select below ignores them.
	var (
		periodic, quiet, retry    *time.Timer
		periodicC, quietC, retryC <-chan time.Time
		firstChange               time.Time
		backoff                   time.Duration
	)
	arm := func(t **time.Timer, ch *<-chan time.Time, d time.Duration) {
		if *t == nil {
			*t = time.NewTimer(d)
		} else {
			(*t).Reset(d)
		}
		*ch = (*t).C
	}
	defer func() {
		for _, t := range []*time.Timer{periodic, quiet, retry} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	// Drop a trigger or change signal from before Run: the first sync
	// covers it.
	select {
	case <-c.changed:
	default:
	}
	select {
	case <-c.trigger:
	default:
	}
	syncNow := func() {
		quietC, retryC, firstChange = nil, nil, time.Time{}
		res, err := c.Sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if opts.OnSync != nil {
			opts.OnSync(res, err)
		}
		if err != nil {
			backoff = min(max(2*backoff, 2*debounce), maxBackoff)
			arm(&retry, &retryC, backoff)
		} else {
			backoff = 0
		}
		if interval > 0 {
			arm(&periodic, &periodicC, interval)
		}
	}
	syncNow()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.trigger:
			syncNow()
		case <-c.changed:
			now := time.Now()
			if firstChange.IsZero() {
				firstChange = now
			}
			// Wait for the changes to pause, but not forever.
			wait := min(debounce, firstChange.Add(10*debounce).Sub(now))
			arm(&quiet, &quietC, max(wait, 0))
		case <-quietC:
			syncNow()
		case <-retryC:
			syncNow()
		case <-periodicC:
			syncNow()
		}
	}
}

// Trigger asks a running [Client.Run] loop to sync now, for instance when
// a realtime notification says the server has news. It never blocks;
// triggers that arrive while a sync is already pending are merged, and
// without a running loop it does nothing.
func (c *Client) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// notifyChanged tells a running loop that a local change was written.
func (c *Client) notifyChanged() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}
