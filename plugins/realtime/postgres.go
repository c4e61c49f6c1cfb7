package realtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBus is the bus on PostgreSQL's LISTEN/NOTIFY: no infrastructure
// besides the database the replicas already share. Each replica holds
// one dedicated listening connection (it must reach PostgreSQL directly:
// a PgBouncer in transaction mode does not keep LISTEN) and one
// connection for publishing; a push's hint is a NOTIFY sent after its
// commit, coalesced with those of concurrent pushes.
//
// PostgreSQL drops notifications for a listener that is not connected.
// So the listener reconnects with backoff, and after every reconnect
// delivers a resync: each stream checks its scopes again, and no change
// that committed meanwhile goes unannounced.
type PostgresBus struct {
	listenCfg, publishCfg *pgx.ConnConfig
	channel               string
	log                   *slog.Logger
	linger                time.Duration

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     sync.WaitGroup
	listener uint32 // the listening connection's backend pid
	pub      *pgx.Conn
	batch    *batcher
}

// PostgresOptions tunes a [PostgresBus].
type PostgresOptions struct {
	// Channel is the NOTIFY channel (default "ferry_hints"); deployments
	// sharing one database keep apart with different channels.
	Channel string
	// Logger receives connection failures (default: discarded).
	Logger *slog.Logger
	// Linger is the shortest time between two notifications of this
	// replica (default 5ms; negative: none). Every NOTIFY commits a
	// transaction of its own: under load the hints of the pushes within
	// a linger travel in one, at a cost of at most Linger of latency; a
	// lone hint is sent at once.
	Linger time.Duration
}

// PostgresPayloadLimit is the largest NOTIFY payload the bus sends, under
// PostgreSQL's 8,000 bytes; more scopes travel in several notifications.
const PostgresPayloadLimit = 7000

// maxPendingScopes bounds the scopes a networked bus holds before it
// sends them: past it, one resync replaces them.
const maxPendingScopes = 10_000

// ListenerApplicationName is the application_name of the bus's listening
// connection, by which an operator (or a test) finds it in
// pg_stat_activity.
const ListenerApplicationName = "ferry-realtime-listener"

// NewPostgresBus returns a bus on the PostgreSQL at databaseURL (a pgx
// connection string); it connects at Start.
func NewPostgresBus(databaseURL string, opts PostgresOptions) (*PostgresBus, error) {
	listen, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("realtime: postgres bus: %w", err)
	}
	publish := listen.Copy()
	listen.RuntimeParams["application_name"] = ListenerApplicationName
	publish.RuntimeParams["application_name"] = "ferry-realtime-publisher"
	if opts.Channel == "" {
		opts.Channel = "ferry_hints"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case opts.Linger == 0:
		opts.Linger = 5 * time.Millisecond
	case opts.Linger < 0:
		opts.Linger = 0
	}
	return &PostgresBus{listenCfg: listen, publishCfg: publish, channel: opts.Channel, log: opts.Logger, linger: opts.Linger}, nil
}

// Start implements [Bus]: it connects the listener (failing when
// PostgreSQL cannot be reached) and starts listening and publishing.
func (b *PostgresBus) Start(ctx context.Context, deliver func(Hint)) error {
	conn, err := b.connectListener(ctx)
	if err != nil {
		return fmt.Errorf("realtime: postgres bus: %w", err)
	}
	run, cancel := context.WithCancel(context.Background())
	batch := newBatcher(b.notify, PostgresPayloadLimit, maxPendingScopes, func(err error) {
		b.log.Warn("realtime: could not publish hints; replicas will resync", "err", err)
	})
	batch.linger = b.linger
	b.mu.Lock()
	b.cancel, b.batch = cancel, batch
	b.mu.Unlock()
	b.done.Add(2)
	go func() {
		defer b.done.Done()
		b.listen(run, conn, deliver)
	}()
	go func() {
		defer b.done.Done()
		batch.run(run)
	}()
	return nil
}

func (b *PostgresBus) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, b.listenCfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	b.mu.Lock()
	b.listener = conn.PgConn().PID()
	b.mu.Unlock()
	return conn, nil
}

// listen delivers notifications until ctx ends, reconnecting when the
// connection fails.
func (b *PostgresBus) listen(ctx context.Context, conn *pgx.Conn, deliver func(Hint)) {
	backoff := newBackoff()
	for {
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					b.log.Warn("realtime: the listening connection failed; reconnecting", "err", err)
				}
				break
			}
			h, err := decodeHint([]byte(n.Payload))
			if err != nil {
				b.log.Warn("realtime: ignored a notification", "err", err)
				continue
			}
			deliver(h)
		}
		conn.Close(context.Background())
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff.next()):
			}
			var err error
			if conn, err = b.connectListener(ctx); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("realtime: could not reconnect the listener", "err", err)
		}
		backoff.reset()
		// Notifications sent while the listener was away are gone.
		deliver(Hint{Resync: true})
	}
}

// notify sends one payload, connecting the publishing connection when it
// has none (again after a failure).
func (b *PostgresBus) notify(ctx context.Context, payload []byte) error {
	if b.pub == nil {
		conn, err := pgx.ConnectConfig(ctx, b.publishCfg)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		b.pub = conn
	}
	if _, err := b.pub.Exec(ctx, "SELECT pg_notify($1, $2)", b.channel, string(payload)); err != nil {
		b.pub.Close(context.Background())
		b.pub = nil
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Publish implements [Bus].
func (b *PostgresBus) Publish(scopes []string) {
	b.mu.Lock()
	batch := b.batch
	b.mu.Unlock()
	if batch != nil {
		batch.add(scopes)
	}
}

// ListenerPID is the backend pid of the listening connection (0 before
// Start), for operators and tests.
func (b *PostgresBus) ListenerPID() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.listener
}

// Close implements [Bus].
func (b *PostgresBus) Close() error {
	b.mu.Lock()
	cancel := b.cancel
	b.cancel, b.batch = nil, nil
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	b.done.Wait()
	if b.pub != nil {
		err := b.pub.Close(context.Background())
		b.pub = nil
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("realtime: close the publishing connection: %w", err)
		}
	}
	return nil
}
