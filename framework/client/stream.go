package client

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
)

// DefaultStreamPath is where the realtime plugin serves the live stream by
// default, relative to [Config.BaseURL].
const DefaultStreamPath = "/sync/stream"

// StreamMode says whether [Client.Run] keeps the server's live stream
// open.
type StreamMode int

const (
	// StreamAuto opens the stream when the server offers it (the
	// default).
	StreamAuto StreamMode = iota
	// StreamOff never opens it: Run syncs periodically at
	// [RunOptions.Interval].
	StreamOff
)

// StreamState is what the live stream of a [Client.Run] loop is doing, as
// reported to [StreamOptions.OnState].
type StreamState int

const (
	// StreamUp: the stream is open and the server's first event arrived.
	// Hints flow, and periodic syncs slow down to [StreamOptions.Interval].
	StreamUp StreamState = iota + 1
	// StreamDown: an attempt to open the stream failed, or the stream
	// ended. Run syncs every [RunOptions.Interval] and reconnects after a
	// backoff.
	StreamDown
	// StreamUnsupported: the server does not offer the stream (it answered
	// 404, or something that is not an event stream). Run syncs every
	// Interval and asks again every Interval (every minute when periodic
	// syncs are disabled), in case an upgrade of the server adds it.
	StreamUnsupported
	// StreamStopped: the server refused the credentials (401). Run syncs
	// every Interval, which reports the error through
	// [RunOptions.OnSync], and opens the stream again only after a sync
	// succeeds (the app signed in again, or its TokenFunc refreshed the
	// token).
	StreamStopped
)

// String returns the state's name.
func (s StreamState) String() string {
	switch s {
	case StreamUp:
		return "up"
	case StreamDown:
		return "down"
	case StreamUnsupported:
		return "unsupported"
	case StreamStopped:
		return "stopped"
	}
	return fmt.Sprintf("StreamState(%d)", int(s))
}

// StreamOptions configures the live stream of [Client.Run]; the zero value
// is useful (see the package documentation for how the stream is used).
type StreamOptions struct {
	// Mode is StreamAuto (default) or StreamOff.
	Mode StreamMode
	// Path is the stream's path relative to [Config.BaseURL] (default
	// [DefaultStreamPath], where the realtime plugin serves it; it does
	// not follow Config.Mount, just as the plugin's does not).
	Path string
	// Interval is the time between periodic syncs while the stream is up,
	// a safety net for a hint lost between replicas (default 10
	// RunOptions.Interval, none when periodic syncs are disabled; a
	// negative value disables them).
	Interval time.Duration
	// Debounce is how long the loop waits after a hint for more hints
	// before it syncs (default 100ms). A steady stream of hints still
	// syncs at least every 10 Debounce, so a burst of remote writes costs a
	// bounded number of syncs.
	Debounce time.Duration
	// ReconnectDelay bounds the wait before reconnecting after the stream
	// failed (default 1s); the bound doubles with every failure in a row,
	// up to MaxReconnectDelay (default one minute), and each wait is
	// random below it (full jitter). After a 429 or 503 answer the wait
	// comes on top of its Retry-After (counted up to an hour). A stream
	// that stayed up for MaxReconnectDelay starts the count again.
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	// IdleTimeout is how long a stream may stay silent before it is taken
	// for dead and reconnected (default 90s; the server sends a keep-alive
	// every 25s by default).
	IdleTimeout time.Duration
	// OnState, when set, is called from the stream's goroutine when a
	// stream is up, and each time a stream ends or an attempt to open one
	// fails, with the reason (err is nil for StreamUp). It must not block
	// for long: hints wait meanwhile.
	OnState func(state StreamState, err error)
}

// Defaults of [StreamOptions].
const (
	defaultHintDebounce      = 100 * time.Millisecond
	defaultReconnectDelay    = time.Second
	defaultMaxReconnectDelay = time.Minute
	defaultStreamIdleTimeout = 90 * time.Second
	// maxRetryAfter caps how long a Retry-After may delay a reconnect.
	maxRetryAfter = time.Hour
	// maxStreamLine caps how much of one line of the stream the client
	// holds; longer lines are skipped (the client reads event types and
	// comments, never a hint's data).
	maxStreamLine = 16 << 10
)

// errNotAStream: the server answered the stream's URL with something that
// is not an event stream (a catch-all page): it does not offer one.
var errNotAStream = errors.New("client: the server's answer is not an event stream")

// streamer keeps one Run loop's stream open and tells the loop about
// hints and about the stream going up or down. Its signals are buffered
// channels of one, so that a burst of hints is one pending signal and the
// stream never waits for the loop.
type streamer struct {
	c       *Client
	opts    StreamOptions
	url     string
	recheck time.Duration // after a 404
	http    *http.Client

	hints   chan struct{} // a "changes" event arrived
	changed chan struct{} // up changed
	synced  chan struct{} // a sync succeeded: resumes a stream stopped by a 401
	up      atomic.Bool
}

// newStreamer applies the defaults of opts; interval is the loop's
// periodic interval (negative: none).
func (c *Client) newStreamer(opts StreamOptions, interval time.Duration) *streamer {
	if opts.Path == "" {
		opts.Path = DefaultStreamPath
	}
	if !strings.HasPrefix(opts.Path, "/") {
		opts.Path = "/" + opts.Path
	}
	if opts.Interval == 0 {
		opts.Interval = -1
		if interval > 0 {
			opts.Interval = 10 * interval
		}
	}
	if opts.Debounce <= 0 {
		opts.Debounce = defaultHintDebounce
	}
	if opts.ReconnectDelay <= 0 {
		opts.ReconnectDelay = defaultReconnectDelay
	}
	if opts.MaxReconnectDelay <= 0 {
		opts.MaxReconnectDelay = defaultMaxReconnectDelay
	}
	opts.MaxReconnectDelay = max(opts.MaxReconnectDelay, opts.ReconnectDelay)
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = defaultStreamIdleTimeout
	}
	recheck := interval
	if recheck <= 0 {
		recheck = time.Minute
	}
	// The same transport as the sync requests, without the client's
	// overall timeout: a stream lasts, and IdleTimeout notices a dead one.
	hc := *c.http
	hc.Timeout = 0
	return &streamer{
		c: c, opts: opts, url: c.root + opts.Path, recheck: recheck, http: &hc,
		hints: make(chan struct{}, 1), changed: make(chan struct{}, 1), synced: make(chan struct{}, 1),
	}
}

// streamEnd is how one connection ended.
type streamEnd struct {
	err        error
	retryAfter time.Duration // from a refusal
	upFor      time.Duration // how long the stream was up, zero if never
}

// run keeps a stream open until ctx ends, reconnecting as the package
// documentation says.
func (s *streamer) run(ctx context.Context) {
	failures := 0 // in a row, for the backoff
	withCursor := true
	for {
		end := s.connect(ctx, withCursor)
		s.setUp(false)
		if ctx.Err() != nil {
			return
		}
		withCursor = true
		if end.upFor >= s.opts.MaxReconnectDelay {
			failures = 0
		}
		var pe *Error
		errors.As(end.err, &pe)
		var wait time.Duration
		switch {
		case errors.Is(end.err, errNotAStream) || pe != nil && (pe.StatusCode == http.StatusNotFound || pe.StatusCode == http.StatusMethodNotAllowed):
			failures = 0
			s.report(StreamUnsupported, end.err)
			wait = s.recheck
		case errors.Is(end.err, ErrUnauthenticated):
			s.report(StreamStopped, end.err)
			// A success from before this refusal may be pending: then the
			// stream tries once more, and stops again.
			select {
			case <-ctx.Done():
				return
			case <-s.synced:
			}
			failures++
			wait = s.delay(failures, 0)
		default:
			if pe != nil && pe.Code == wire.CodeInvalidCursor {
				// The server does not know the stored cursor (it was
				// reset, or it is another server): without one the
				// server says "changes", and the sync that follows
				// resets the cursor.
				withCursor = false
			}
			failures++
			s.report(StreamDown, end.err)
			wait = s.delay(failures, end.retryAfter)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// delay is the wait before reconnecting after the given failure in a row
// (1-based): full jitter below an exponential bound, after retryAfter.
// The jitter comes on top of a Retry-After: a replica that refuses
// streams at its cap tells every device the same time, and they should
// not all come back at once.
func (s *streamer) delay(failures int, retryAfter time.Duration) time.Duration {
	r := Retry{BaseDelay: s.opts.ReconnectDelay, MaxDelay: s.opts.MaxReconnectDelay}
	return min(retryAfter, maxRetryAfter) + r.delay(failures, 0)
}

func (s *streamer) report(state StreamState, err error) {
	if s.opts.OnState != nil {
		s.opts.OnState(state, err)
	}
}

// setUp records whether the stream is up and tells the loop when that
// changed.
func (s *streamer) setUp(up bool) {
	if s.up.Swap(up) != up {
		signal(s.changed)
	}
}

// signal sends on a channel buffered for one without blocking: a signal
// already pending covers this one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// connect opens one stream and reads it until it ends. With withCursor
// the request carries the stored pull cursor, so that the server's first
// event says exactly whether the device is behind.
func (s *streamer) connect(ctx context.Context, withCursor bool) streamEnd {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := s.url
	if withCursor {
		cursor, err := s.c.store.Cursor(ctx)
		if err != nil {
			return streamEnd{err: fmt.Errorf("client: stream: read cursor: %w", err)}
		}
		u += "?" + url.Values{wire.QueryCursor: {cursor}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return streamEnd{err: fmt.Errorf("client: stream: build request: %w", err)}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", userAgent)
	token, err := s.c.token(ctx)
	if err != nil {
		return streamEnd{err: fmt.Errorf("client: stream: get token: %w", err)}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A connection that goes silent (a NAT forgot it, the server's host
	// vanished) would otherwise block the read forever.
	var idle atomic.Bool
	timer := time.AfterFunc(s.opts.IdleTimeout, func() { idle.Store(true); cancel() })
	defer timer.Stop()
	failed := func(err error) error {
		if idle.Load() {
			return fmt.Errorf("client: stream: nothing received for %s: %w", s.opts.IdleTimeout, err)
		}
		return fmt.Errorf("client: stream: GET %s: %w", s.opts.Path, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return streamEnd{err: failed(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		pe := decodeError(resp.StatusCode, raw)
		pe.Method, pe.Path = http.MethodGet, s.opts.Path
		return streamEnd{err: pe, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return streamEnd{err: fmt.Errorf("%w (Content-Type %q)", errNotAStream, resp.Header.Get("Content-Type"))}
	}
	var (
		r       = newEventReader(resp.Body)
		upSince time.Time
		said    string // the server's last comment: why it ends the stream
	)
	for {
		kind, comment, err := r.next()
		if err != nil {
			end := streamEnd{err: failed(err)}
			if errors.Is(err, io.EOF) {
				end.err = fmt.Errorf("client: stream: the server ended it (%s)", cmp.Or(said, "without a word"))
			}
			if !upSince.IsZero() {
				end.upFor = time.Since(upSince)
			}
			return end
		}
		timer.Reset(s.opts.IdleTimeout)
		if comment != "" {
			if comment != "keep-alive" {
				said = comment
			}
			continue
		}
		if kind != "changes" && kind != "ready" {
			continue // an event this client does not know
		}
		if upSince.IsZero() {
			upSince = time.Now()
			s.setUp(true)
			s.report(StreamUp, nil)
		}
		if kind == "changes" {
			signal(s.hints)
		}
	}
}

// eventReader reads a Server-Sent Events stream for what the client acts
// on: each event's type, and comments. It holds at most maxStreamLine
// bytes of a line.
type eventReader struct {
	r    *bufio.Reader
	kind string // the type of the event being read
	some bool   // whether a field of the event being read was seen
}

func newEventReader(r io.Reader) *eventReader {
	return &eventReader{r: bufio.NewReaderSize(r, maxStreamLine)}
}

// next returns the type of the next event ("message" when it names none)
// or the next comment.
func (er *eventReader) next() (kind, comment string, err error) {
	for {
		line, err := er.line()
		if err != nil {
			return "", "", err
		}
		if len(line) == 0 {
			// A blank line ends an event.
			if !er.some {
				continue
			}
			kind := cmp.Or(er.kind, "message")
			er.kind, er.some = "", false
			return kind, "", nil
		}
		if line[0] == ':' {
			c := strings.TrimSpace(string(line[1:]))
			if c == "" {
				continue
			}
			return "", c, nil
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			er.kind, er.some = string(value), true
		case "data", "id":
			er.some = true
		}
	}
}

// line returns the next line without its end of line; the part of a long
// line past maxStreamLine is skipped.
func (er *eventReader) line() ([]byte, error) {
	line, err := er.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Keep the first part (its field name), skip the rest.
		line = bytes.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = er.r.ReadSlice('\n')
		}
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
