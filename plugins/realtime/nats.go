package realtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSBus is the bus on NATS core publish/subscribe, for deployments
// whose hint traffic outgrows PostgreSQL's NOTIFY (which serialises
// committing transactions that notify). Every replica subscribes to one
// subject; the client library reconnects by itself, and after every
// reconnect the bus delivers a resync, since NATS core does not keep
// messages for a subscriber that was away.
type NATSBus struct {
	url     string
	subject string
	opts    []nats.Option
	log     *slog.Logger

	mu    sync.Mutex
	nc    *nats.Conn
	sub   *nats.Subscription
	stop  context.CancelFunc
	done  sync.WaitGroup
	batch *batcher
}

// NATSOptions tunes a [NATSBus].
type NATSOptions struct {
	// Subject is the subject hints travel on (default "ferry.hints").
	Subject string
	// Options are passed to nats.Connect (credentials, TLS, a name); the
	// bus adds its own reconnect handling.
	Options []nats.Option
	// Logger receives connection events (default: discarded).
	Logger *slog.Logger
}

// NATSPayloadLimit is the largest message the bus publishes; NATS's own
// default limit is 1 MB.
const NATSPayloadLimit = 64 << 10

// NewNATSBus returns a bus on the NATS server at url (e.g.
// nats://127.0.0.1:4222); it connects at Start.
func NewNATSBus(url string, opts NATSOptions) *NATSBus {
	if opts.Subject == "" {
		opts.Subject = "ferry.hints"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &NATSBus{url: url, subject: opts.Subject, opts: opts.Options, log: opts.Logger}
}

// Start implements [Bus].
func (b *NATSBus) Start(ctx context.Context, deliver func(Hint)) error {
	opts := append([]nats.Option{
		nats.Name("ferry-realtime"),
		nats.MaxReconnects(-1),
		nats.ReconnectJitter(100_000_000, 1_000_000_000), // 100ms, 1s (TLS)
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("realtime: NATS disconnected; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// Messages published while this replica was away are gone: its
			// streams check again. Only once the server has our
			// subscription back (a flush is a round trip, and the server
			// reads a connection in order), or a hint published between
			// the check and the subscription would be lost.
			if err := nc.FlushTimeout(10 * time.Second); err != nil {
				b.log.Warn("realtime: NATS reconnected but did not answer a flush", "err", err)
			}
			deliver(Hint{Resync: true})
		}),
	}, b.opts...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	got := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(b.url, opts...)
		got <- result{nc, err}
	}()
	var nc *nats.Conn
	select {
	case <-ctx.Done():
		go func() {
			if r := <-got; r.nc != nil {
				r.nc.Close()
			}
		}()
		return fmt.Errorf("realtime: NATS bus: %w", ctx.Err())
	case r := <-got:
		if r.err != nil {
			return fmt.Errorf("realtime: NATS bus: connect to %s: %w", b.url, r.err)
		}
		nc = r.nc
	}
	sub, err := nc.Subscribe(b.subject, func(m *nats.Msg) {
		h, err := decodeHint(m.Data)
		if err != nil {
			b.log.Warn("realtime: ignored a message", "err", err)
			return
		}
		deliver(h)
	})
	if err == nil {
		// The subscription is in place before Start returns.
		if _, ok := ctx.Deadline(); ok {
			err = nc.FlushWithContext(ctx)
		} else {
			err = nc.FlushTimeout(10 * time.Second)
		}
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("realtime: NATS bus: subscribe to %s: %w", b.subject, err)
	}
	run, stop := context.WithCancel(context.Background())
	batch := newBatcher(func(_ context.Context, p []byte) error { return nc.Publish(b.subject, p) },
		NATSPayloadLimit, maxPendingScopes, func(err error) {
			b.log.Warn("realtime: could not publish hints; replicas will resync", "err", err)
		})
	b.mu.Lock()
	b.nc, b.sub, b.stop, b.batch = nc, sub, stop, batch
	b.mu.Unlock()
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		batch.run(run)
	}()
	return nil
}

// Publish implements [Bus].
func (b *NATSBus) Publish(scopes []string) {
	b.mu.Lock()
	batch := b.batch
	b.mu.Unlock()
	if batch != nil {
		batch.add(scopes)
	}
}

// Conn is the bus's NATS connection (nil before Start), for tests and
// metrics.
func (b *NATSBus) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nc
}

// Close implements [Bus].
func (b *NATSBus) Close() error {
	b.mu.Lock()
	nc, stop := b.nc, b.stop
	b.nc, b.sub, b.stop, b.batch = nil, nil, nil, nil
	b.mu.Unlock()
	if nc == nil {
		return nil
	}
	stop()
	b.done.Wait()
	// Drain delivers what arrived and flushes what was published.
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("realtime: close NATS: %w", err)
	}
	return nil
}
