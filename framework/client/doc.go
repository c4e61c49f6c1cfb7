// Package client is the device side of Ferry's sync protocol (wire
// protocol v1, see DESIGN.md): a local store of records and of the changes
// not yet synced, and a [Client] that pushes those changes to a Ferry
// server and pulls everything the server has that the device has not seen.
//
// A device works offline against its [Store]: [Client.Put] and
// [Client.Delete] write a record locally, stamp its modify_at with the
// device clock (UTC, microseconds) and queue it. The queue holds one entry
// per (owner, model, uid): a record edited ten times offline is pushed
// once, with its latest state. [Client.Sync] then
//
//  1. pushes the queue in batches to POST /sync/push. A change leaves the
//     queue when the server answers applied or stale (on stale the
//     server's winning record replaces the local one), rejected or
//     forbidden (both reported through [Config.OnRejected]). A change
//     edited again while its push was in flight stays queued: each queue
//     entry carries a sequence number, and a push result only acknowledges
//     the sequence number it was sent with. A push carries the stored
//     cursor; the server answers it moved past the device's own writes
//     when that skips nothing else, so the pull does not bring them back.
//  2. pulls GET /sync/pull page by page until has_more is false, applies
//     every record (tombstones included) to the store without queueing it,
//     and stores the new cursor only after the last page. A pulled record
//     whose key has a queued local change is skipped: the local change is
//     pushed at the next sync and the server's conflict policy decides.
//
// Network errors, 429 and 5xx answers are retried with exponential backoff
// and full jitter, a bounded number of times, honouring the context. A 401
// is returned as an error matching [ErrUnauthenticated]; a 410
// reset_required makes the client drop its cursor and pull from the start,
// keeping the local changes still queued. Every error answer of the server
// is decoded into an [*Error].
//
// In short:
//
//	c, err := client.New(client.Config{
//		BaseURL:  "https://api.example.com",
//		Token:    token,   // from POST /auth/login
//		Owner:    userUID, // the signed-in user's uid
//		DeviceID: deviceID,
//		OnRejected: func(ctx context.Context, r client.Rejection) {
//			log.Printf("%s/%s refused: %v", r.Change.Model, r.Change.UID, r.Errors)
//		},
//	})
//	...
//	_, err = c.Put(ctx, "data.Note", client.NewUID(), Note{Title: "Buy milk"})
//	...
//	res, err := c.Sync(ctx) // whenever the network is back
//
// [Client.Run] syncs in the background instead: at start, after local
// changes (debounced), periodically, and on [Client.Trigger].
//
// # The live stream
//
// When the server has the realtime plugin, Run also keeps its live stream
// open (GET /sync/stream, Server-Sent Events; [StreamOptions.Path] is
// relative to Config.BaseURL) in a goroutine of its own, which ends
// before Run returns. The stream carries hints, never data: an event
// "changes" means the server may have something the device has not
// pulled, and Run syncs (after [StreamOptions.Debounce], so that a burst
// of hints costs a few syncs; the syncs are the same serialized
// [Client.Sync]). Each connection sends the stored pull cursor, so the
// server's first event says exactly whether the device is behind
// ("changes") or not ("ready"), and a device that was disconnected
// catches up as soon as it is back. A device's own pushes wake its stream
// too; that costs one pull that finds nothing.
//
// While the stream is up, periodic syncs are only a safety net, every
// [StreamOptions.Interval] (ten RunOptions.Interval by default); while it
// is down, Run syncs every RunOptions.Interval as without a stream. The
// stream reconnects after a wait random below a bound that doubles with
// every failure in a row (from ReconnectDelay, 1s, to MaxReconnectDelay,
// a minute), on top of a 429's or 503's Retry-After. A server
// that answers 404 (or anything that is not an event stream) has no
// stream: Run asks again every Interval, in case an upgrade adds it. A 401
// stops the stream until a sync succeeds (the sync reports the error
// through RunOptions.OnSync). A stream silent for
// [StreamOptions.IdleTimeout] is taken for dead and reconnected.
// [StreamOptions.OnState] reports what the stream does; StreamOff turns
// it off. A stream costs one goroutine and one connection, and the
// client holds at most 16 KiB of its lines.
//
// [Client.Trigger] remains for hints from elsewhere (a push
// notification).
//
// Answers are asked for and decompressed with zstd or gzip, and push
// bodies of 1 KiB or more go zstd-compressed once the server has said it
// takes them (an Accept-Encoding answer header, as servers behind
// [github.com/ferrysync/ferry/framework.Compression] send); see
// [Config.Compression].
//
// The store is the seam for persistence: [MemoryStore] keeps everything in
// memory; [SQLiteStore] ([OpenSQLiteStore]) keeps records, queue and cursor
// in a SQLite file, so a device that restarts picks up where it stopped.
// Package clienttest holds the conformance suite every store passes.
//
// What travels is encoded and decoded with the types of package
// [github.com/ferrysync/ferry/framework/wire], the ones the server uses
// too; [Record] is the device's own type, with what only a device keeps
// ([Record.Synced]).
//
// The package has no global state. A Client is safe for concurrent use;
// syncs are serialized.
package client
