package framework

import (
	"sync/atomic"
	"time"
)

// Stats are counters of what an App did since it was built, for
// operators' metrics (plugins/metrics reads them at each scrape). They
// are totals over all users: nothing in them names one.
type Stats struct {
	// PullPages and PullRecords count the pull pages answered (the sync
	// route's and [App.Pull]'s) and the records in them, tombstones
	// included.
	PullPages, PullRecords int64
	// MalformedChanges counts the changes of pushes to the sync route
	// answered rejected for their envelope (a bad uid or modify_at, not
	// an object): they are refused before [App.Push], so no hook sees
	// them.
	MalformedChanges int64
	// ContentionRetries counts push transactions run again because the
	// store reported a concurrency failure (a serialization failure or a
	// deadlock on PostgreSQL, a busy database on SQLite).
	ContentionRetries int64
	// PurgeRuns counts [App.PurgeTombstones] calls (the App's own,
	// Config.TombstoneRetention, included), PurgeFailures those that
	// ended in an error (not a cancelled context), and PurgedTombstones
	// the tombstones they removed.
	PurgeRuns, PurgeFailures, PurgedTombstones int64
	// LastPurgeAt is when the last of those runs ended (zero before the
	// first), and LastPurged how many tombstones it removed.
	LastPurgeAt time.Time
	LastPurged  int64
}

// stats is the App's live copy of [Stats].
type stats struct {
	pullPages, pullRecords atomic.Int64
	malformed              atomic.Int64
	retries                atomic.Int64
	purgeRuns, purgeFails  atomic.Int64
	purged                 atomic.Int64
	lastPurgeAt            atomic.Int64 // Unix nanoseconds; 0: never
	lastPurged             atomic.Int64
}

// Stats returns the App's counters. It is safe to call at any time,
// concurrently with everything else; each counter is read on its own, so
// two counters may be a moment apart.
func (a *App) Stats() Stats {
	s := &a.stats
	var last time.Time
	if ns := s.lastPurgeAt.Load(); ns != 0 {
		last = time.Unix(0, ns).UTC()
	}
	return Stats{
		PullPages: s.pullPages.Load(), PullRecords: s.pullRecords.Load(),
		MalformedChanges: s.malformed.Load(), ContentionRetries: s.retries.Load(),
		PurgeRuns: s.purgeRuns.Load(), PurgeFailures: s.purgeFails.Load(), PurgedTombstones: s.purged.Load(),
		LastPurgeAt: last, LastPurged: s.lastPurged.Load(),
	}
}
