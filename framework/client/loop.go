package client

import (
	"context"
	"errors"
	"time"
)

// RunOptions configures the background loop of [Client.Run]. The zero
// value is useful.
type RunOptions struct {
	// Interval is the time between periodic syncs while the server's live
	// stream is not up (default one minute; a negative value disables
	// them). While it is up, syncs follow its hints, and periodic ones
	// come every Stream.Interval instead.
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
	// Stream configures the live stream (by default used when the server
	// offers it; see the package documentation).
	Stream StreamOptions
}

// ErrRunning is returned by [Client.Run] when another Run of the same
// client has not returned yet.
var ErrRunning = errors.New("client: Run is already running")

// Run syncs in the background until ctx is done, then returns ctx.Err():
// once at start, after local changes (debounced), after hints of the
// server's live stream (debounced), periodically, after a failed sync
// (with backoff), and soon after every [Client.Trigger]. Syncs are the
// same as [Client.Sync] and are serialized with the application's own
// calls of it. Run is meant to run in its own goroutine; one Run at a time
// per client.
//
// After the first sync, and unless opts.Stream.Mode is StreamOff, Run
// keeps the server's live stream open in a goroutine of its own, which
// ends before Run returns (see the package documentation).
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

	var (
		periodic, retry loopTimer
		changes         = debouncer{delay: debounce}
		hinted          debouncer
		backoff         time.Duration
		st              *streamer
		streamUp        bool
		// Channels of a stream that does not run stay nil: a receive
		// from nil blocks forever, so the select below ignores them.
		hintC, streamC <-chan struct{}
	)
	defer func() {
		for _, t := range []*loopTimer{&periodic, &retry, &changes.loopTimer, &hinted.loopTimer} {
			t.stop()
		}
	}()
	// periodicEvery is the periodic interval as things stand.
	periodicEvery := func() time.Duration {
		if streamUp {
			return st.opts.Interval
		}
		return interval
	}
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
		changes.clear()
		hinted.clear()
		retry.disarm()
		res, err := c.Sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if opts.OnSync != nil {
			opts.OnSync(res, err)
		}
		if err != nil {
			backoff = min(max(2*backoff, 2*debounce), maxBackoff)
			retry.arm(backoff)
		} else {
			backoff = 0
			if st != nil {
				signal(st.synced)
			}
		}
		if d := periodicEvery(); d > 0 {
			periodic.arm(d)
		}
	}
	syncNow()
	if opts.Stream.Mode != StreamOff && ctx.Err() == nil {
		st = c.newStreamer(opts.Stream, interval)
		hinted.delay = st.opts.Debounce
		hintC, streamC = st.hints, st.changed
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			st.run(sctx)
		}()
		// Run does not return before the stream's goroutine ended.
		defer func() {
			cancel()
			<-done
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.trigger:
			syncNow()
		case <-c.changed:
			changes.touch()
		case <-hintC:
			hinted.touch()
		case <-streamC:
			if up := st.up.Load(); up != streamUp {
				streamUp = up
				// Periodic syncs slow down while hints flow, and speed up
				// again while they cannot; a stream that comes up says at
				// once whether the device is behind.
				if d := periodicEvery(); d > 0 {
					periodic.arm(d)
				} else {
					periodic.disarm()
				}
			}
		case <-changes.C:
			syncNow()
		case <-hinted.C:
			syncNow()
		case <-retry.C:
			syncNow()
		case <-periodic.C:
			syncNow()
		}
	}
}

// loopTimer is a timer of the loop whose channel is nil while it is not
// armed, so that a select ignores it.
type loopTimer struct {
	t *time.Timer
	C <-chan time.Time
}

func (t *loopTimer) arm(d time.Duration) {
	if t.t == nil {
		t.t = time.NewTimer(d)
	} else {
		t.t.Reset(d)
	}
	t.C = t.t.C
}

func (t *loopTimer) disarm() {
	if t.t != nil {
		t.t.Stop()
	}
	t.C = nil
}

func (t *loopTimer) stop() {
	if t.t != nil {
		t.t.Stop()
	}
}

// debouncer fires when signals pause for delay, and at the latest 10
// delay after the first signal it has not fired for.
type debouncer struct {
	loopTimer
	delay time.Duration
	first time.Time
}

// touch notes a signal.
func (d *debouncer) touch() {
	now := time.Now()
	if d.first.IsZero() {
		d.first = now
	}
	// Wait for the signals to pause, but not forever.
	d.arm(max(min(d.delay, d.first.Add(10*d.delay).Sub(now)), 0))
}

// clear forgets the signals: a sync is starting.
func (d *debouncer) clear() {
	d.disarm()
	d.first = time.Time{}
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
