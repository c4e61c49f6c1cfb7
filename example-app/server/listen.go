package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/netutil"
)

// HTTPConfig bounds what one client may hold of the HTTP server: time to
// send a request, idle connections, header size and connections. Zero
// fields take the defaults below; each is also read from the environment
// by [ConfigFromEnv].
type HTTPConfig struct {
	// ReadHeaderTimeout is the time a client has to send a request's
	// headers (FERRY_READ_HEADER_TIMEOUT, default 10s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout is the time a client has to send a whole request,
	// headers and body, counted from the connection's accept or, on a
	// kept-alive connection, from the request's first byte
	// (FERRY_READ_TIMEOUT, default 30s). A client that is slower is cut off: the body's read
	// fails, the request is answered 400 "could not read the body" and
	// the connection is closed. net/http lifts the deadline once the body
	// has been read to its end (and at once for requests without a body),
	// so a handler that runs long, or a live stream, is not cut by it.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer (FERRY_WRITE_TIMEOUT, default 60s); the answer of a
	// slower request is cut. Live streams set their own deadline for each
	// write (rxdb.Config.WriteTimeout) and are not bound by it.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no request
	// for that long (FERRY_IDLE_TIMEOUT, default 60s).
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's header block
	// (FERRY_MAX_HEADER_BYTES, default 64 KiB; net/http allows 4 KiB
	// more). Larger headers are answered 431 by net/http, as plain text.
	MaxHeaderBytes int
	// MaxConns caps the open connections (FERRY_MAX_CONNS, default
	// 20,000). Connection MaxConns+1 is not refused: it waits in the
	// kernel's accept queue (its handshake completes, nothing is read)
	// until a connection closes, as with nginx's worker_connections or
	// HAProxy's maxconn. Every connection that is not a live stream ends
	// within the timeouts above, and streams are capped below MaxConns, so
	// the wait is bounded; a full accept queue makes the kernel drop new
	// handshakes, which clients retry. Keep it below the process's limit
	// of open files.
	MaxConns int
}

// Defaults of [HTTPConfig].
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 20_000
)

// withDefaults fills in zero fields and refuses negative ones.
func (c HTTPConfig) withDefaults() (HTTPConfig, error) {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ReadHeaderTimeout", &c.ReadHeaderTimeout, DefaultReadHeaderTimeout},
		{"ReadTimeout", &c.ReadTimeout, DefaultReadTimeout},
		{"WriteTimeout", &c.WriteTimeout, DefaultWriteTimeout},
		{"IdleTimeout", &c.IdleTimeout, DefaultIdleTimeout},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("server: HTTPConfig.%s %s must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{{"MaxHeaderBytes", &c.MaxHeaderBytes, DefaultMaxHeaderBytes}, {"MaxConns", &c.MaxConns, DefaultMaxConns}} {
		if *n.v < 0 {
			return c, fmt.Errorf("server: HTTPConfig.%s %d must not be negative", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	return c, nil
}

// connEnv reads the connection and stream limits from the environment
// into cfg; a value that does not parse is an error naming the variable.
func connEnv(cfg *Config) error {
	var errs []error
	dur := func(key string, v *time.Duration) {
		if s := os.Getenv(key); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 30s", key, s))
				return
			}
			*v = d
		}
	}
	num := func(key string, v *int) {
		if s := os.Getenv(key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", key, s))
				return
			}
			*v = n
		}
	}
	dur("FERRY_READ_HEADER_TIMEOUT", &cfg.HTTP.ReadHeaderTimeout)
	dur("FERRY_READ_TIMEOUT", &cfg.HTTP.ReadTimeout)
	dur("FERRY_WRITE_TIMEOUT", &cfg.HTTP.WriteTimeout)
	dur("FERRY_IDLE_TIMEOUT", &cfg.HTTP.IdleTimeout)
	num("FERRY_MAX_HEADER_BYTES", &cfg.HTTP.MaxHeaderBytes)
	num("FERRY_MAX_CONNS", &cfg.HTTP.MaxConns)
	num("FERRY_STREAMS_PER_USER", &cfg.RxDB.MaxStreamsPerUser)
	num("FERRY_MAX_STREAMS", &cfg.RxDB.MaxStreams)
	dur("FERRY_STREAM_WRITE_TIMEOUT", &cfg.RxDB.WriteTimeout)
	dur("FERRY_STREAM_KEEPALIVE", &cfg.RxDB.KeepAlive)
	num("FERRY_STREAM_EVENT_DOCUMENTS", &cfg.RxDB.MaxEventDocuments)
	var eventBytes int
	num("FERRY_STREAM_EVENT_BYTES", &eventBytes)
	if eventBytes > 0 {
		cfg.RxDB.MaxEventBytes = int64(eventBytes)
	}
	return errors.Join(errs...)
}

// connDefaults fills in the HTTP limits, and the stream cap when unset (half
// the connections), and checks that streams cannot take every connection.
func connDefaults(cfg *Config) error {
	var err error
	if cfg.HTTP, err = cfg.HTTP.withDefaults(); err != nil {
		return err
	}
	// Two kinds of live streams (RxDB's and /sync/stream) each get the
	// cap: together they keep half the connections for everything else.
	if cfg.RxDB.MaxStreams == 0 {
		cfg.RxDB.MaxStreams = cfg.HTTP.MaxConns / 4
	}
	if 2*cfg.RxDB.MaxStreams >= cfg.HTTP.MaxConns {
		return fmt.Errorf("server: the stream cap (FERRY_MAX_STREAMS %d, for each of RxDB's streams and /sync/stream) must be below half the connection cap (FERRY_MAX_CONNS %d), or streams could take every connection",
			cfg.RxDB.MaxStreams, cfg.HTTP.MaxConns)
	}
	return nil
}

// httpServer is an http.Server of h with the configured limits.
func (s *Server) httpServer(h http.Handler) *http.Server {
	c := s.cfg.HTTP
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
}

// Serve serves on l, at most HTTPConfig.MaxConns connections at a time,
// until ctx is cancelled, then shuts down gracefully: live streams are
// ended and requests in flight get 15 seconds to finish. It closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := s.httpServer(s.engine)
	// Live streams never end by themselves: closing the App ends them
	// (and disconnects the realtime bus) when shutdown begins.
	srv.RegisterOnShutdown(func() {
		if err := s.App.Close(); err != nil {
			s.cfg.Logger.Warn("close plugins", "err", err)
		}
	})
	s.cfg.Logger.Info("ferry example app listening", "addr", l.Addr().String(), "store", s.DB.Dialect().Name().String(),
		"max_conns", s.cfg.HTTP.MaxConns, "max_streams", s.RxDB.Config().MaxStreams)
	return serveUntil(ctx, srv, netutil.LimitListener(l, s.cfg.HTTP.MaxConns), 15*time.Second)
}

// MetricsOff is the MetricsAddr (FERRY_METRICS_ADDR) that serves no
// metrics.
const MetricsOff = "off"

// ServeMetrics serves GET /metrics alone on l (the listener of
// Config.MetricsAddr) until ctx is cancelled, then shuts down; it
// closes l. Without metrics (MetricsAddr "off") it refuses.
func (s *Server) ServeMetrics(ctx context.Context, l net.Listener) error {
	if s.Metrics == nil {
		l.Close()
		return errors.New("serve metrics: metrics are off")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Metrics.Handler())
	s.cfg.Logger.Info("metrics listening", "addr", l.Addr().String())
	// A scraper needs few connections; the cap keeps this port from
	// being a way around MaxConns.
	return serveUntil(ctx, s.httpServer(mux), netutil.LimitListener(l, 64), 5*time.Second)
}

// serveUntil serves srv on l until ctx is cancelled, then shuts it down,
// giving requests in flight grace to finish.
func serveUntil(ctx context.Context, srv *http.Server, l net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
