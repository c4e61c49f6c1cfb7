package realtime

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/sse"
	"github.com/gin-gonic/gin"
)

// An idle stream should cost little: a replica holds thousands. So once
// the first event is decided, an HTTP/1.1 stream takes its connection
// over (http.Hijacker): net/http's buffers and request state go, the
// handler returns, and the stream lives on in a goroutine of its own
// with a fresh small stack, plus one that blocks reading the connection
// to notice the client leave. The scope counters are read by a few
// worker goroutines, so a stream's own stack never grows through the
// database driver. Where the connection cannot be taken over (HTTP/2),
// the stream is served on the handler's goroutine, through net/http.

var (
	keepAliveEvent = sse.Comment(nil, "keep-alive")
	expiredEvent   = sse.Comment(nil, "the credentials expired; reconnect with fresh ones")
	revokedEvent   = sse.Comment(nil, "the credentials are no longer valid; reconnect with fresh ones")
	closingEvent   = sse.Comment(nil, "the server is stopping; reconnect")
	failedEvent    = sse.Comment(nil, "the server could not check for changes; reconnect")
)

// headsTimeout bounds a stream's read of the scope counters.
const headsTimeout = 30 * time.Second

// liveStream is a stream past its first event.
type liveStream struct {
	p   *Plugin
	s   *stream
	who framework.Principal
	// reauth is the request to authenticate again at keep-alives (nil
	// for a stream opened with a stream token, which is not re-checked).
	reauth *http.Request
	told   map[string]int64
}

// sender writes a stream's events.
type sender interface {
	Send(b []byte) error
}

func (p *Plugin) serveStream(c *gin.Context) error {
	who, viaToken, err := p.streamPrincipal(c.Request)
	if err != nil {
		return err
	}
	if !who.ExpiresAt.IsZero() && !who.ExpiresAt.After(p.app.Config().Now()) {
		return framework.NewError(framework.CodeUnauthenticated, "the credentials have expired")
	}
	s, err := p.reg.open(who.UserID, []string{who.UserID})
	switch {
	case errors.Is(err, errUserStreams):
		return framework.StreamRefused(true, p.cfg.MaxStreamsPerUser)
	case errors.Is(err, errTotalStreams):
		p.app.Logger().Warn("realtime: stream refused: the server holds its maximum of streams", "max", p.cfg.MaxStreams)
		return framework.StreamRefused(false, p.cfg.MaxStreams)
	case err != nil:
		return err
	}
	select {
	case <-s.done:
		return &framework.Error{Code: framework.CodeUnavailable, RetryAfter: time.Second,
			Message: "this server is stopping; connect again"}
	default:
	}
	handedOver := false
	defer func() {
		if !handedOver {
			p.reg.remove(s)
		}
	}()
	// Registered before reading the counters: a commit after this read
	// wakes the stream, one before it is in what it reads.
	heads, err := p.heads(c.Request.Context(), who, s)
	if err != nil {
		return err
	}
	behind, err := p.behind(c.Request, heads)
	if err != nil {
		return err
	}
	first := append([]byte(nil), "retry: 2000\n\n"...)
	kind := "ready"
	if behind {
		kind = "changes"
	}
	first = changesEvent(first, kind, heads)
	ls := &liveStream{p: p, s: s, who: who, told: heads}
	if !viaToken {
		ls.reauth = authRequest(c.Request)
	}

	if conn, took := takeOver(c, first, p.cfg.WriteTimeout); took {
		if conn == nil {
			return nil // the client left before its first event
		}
		handedOver = true
		go func() {
			defer p.reg.remove(s)
			ls.runOn(conn)
		}()
		return nil
	}
	w := sse.NewWriter(c.Writer, p.cfg.WriteTimeout)
	c.Status(http.StatusOK)
	if w.Send(first) != nil {
		return nil
	}
	ls.run(w, c.Request.Context().Done())
	return nil
}

// takeOver hijacks an HTTP/1.x connection and writes the response head
// and first event itself. It returns took false, having written nothing,
// when the connection cannot be taken over, and a nil conn when it was
// but the client is gone.
func takeOver(c *gin.Context, first []byte, timeout time.Duration) (conn *rawConn, took bool) {
	if c.Request.ProtoMajor != 1 {
		return nil, false
	}
	hj, ok := c.Writer.(http.Hijacker)
	if !ok {
		return nil, false
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, false
	}
	_ = brw // its buffers are dropped: a GET has no body, and nothing else may follow on this connection
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := c.Writer.Header().Clone() // what middleware set (CORS, say) goes out too
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close") // the body ends when the connection does
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	_ = h.Write(&head)
	head.WriteString("\r\n")
	head.Write(first)
	_ = nc.SetReadDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(head.Bytes()); err != nil {
		nc.Close()
		return nil, true
	}
	return &rawConn{Conn: nc, timeout: timeout}, true
}

// rawConn sends events on a taken-over connection, each under its own
// write deadline.
type rawConn struct {
	net.Conn
	timeout time.Duration
}

func (r *rawConn) Send(b []byte) error {
	if err := r.SetWriteDeadline(time.Now().Add(r.timeout)); err != nil {
		return err
	}
	_, err := r.Write(b)
	return err
}

// runOn serves the stream on a taken-over connection until it ends, then
// closes the connection.
func (ls *liveStream) runOn(sc *rawConn) {
	defer sc.Close()
	gone := make(chan struct{})
	go func() {
		// The client sends nothing; a read returns when it leaves (or
		// when the stream closes the connection).
		var b [64]byte
		for {
			if _, err := sc.Conn.Read(b[:]); err != nil {
				close(gone)
				return
			}
		}
	}()
	ls.run(sc, gone)
}

// run sends hints until the client leaves (gone), the credentials expire
// or are revoked, or the plugin closes.
func (ls *liveStream) run(w sender, gone <-chan struct{}) {
	p, s, who := ls.p, ls.s, ls.who
	var expired <-chan time.Time
	if !who.ExpiresAt.IsZero() {
		t := time.NewTimer(who.ExpiresAt.Sub(p.app.Config().Now()))
		defer t.Stop()
		expired = t.C
	}
	keepAlive := time.NewTicker(p.cfg.KeepAlive)
	defer keepAlive.Stop()
	var recheck <-chan time.Time
	if p.cfg.Recheck > 0 {
		t := time.NewTicker(p.cfg.Recheck)
		defer t.Stop()
		recheck = t.C
	}
	for {
		var ev []byte
		select {
		case <-gone:
			return
		case <-s.done:
			_ = w.Send(closingEvent)
			return
		case <-expired:
			_ = w.Send(expiredEvent)
			return
		case <-keepAlive.C:
			if ls.reauth != nil && !p.app.StillAuthenticated(ls.reauth, who) {
				_ = w.Send(revokedEvent)
				return
			}
			ev = keepAliveEvent
		case <-recheck:
			s.poke()
			continue
		case <-s.wake:
			// Bounded, not tied to the client: a read takes milliseconds,
			// and a context per stream would cost a goroutine per stream.
			ctx, cancel := context.WithTimeout(context.Background(), headsTimeout)
			now, err := p.heads(ctx, who, s)
			cancel()
			if err != nil {
				p.app.Logger().Error("realtime: stream could not read the scope counters", "err", err, "user", who.UserID)
				_ = w.Send(failedEvent)
				return // the client reconnects and is told where it stands
			}
			if !ahead(now, ls.told) {
				continue
			}
			ls.told = now
			ev = changesEvent(nil, "changes", now)
		}
		if err := w.Send(ev); err != nil {
			p.app.Logger().Debug("realtime: stream dropped", "err", err, "user", who.UserID)
			return
		}
	}
}

// authRequest keeps what an authenticator may look at of the request
// that opened a stream, to ask it again at keep-alives: not the body,
// nor the rest of net/http's state.
func authRequest(r *http.Request) *http.Request {
	return &http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: r.Header.Clone(), Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI}
}

// headsRequest asks a counter worker for who's heads.
type headsRequest struct {
	ctx   context.Context
	who   framework.Principal
	reply chan headsReply
}

type headsReply struct {
	heads map[string]int64
	err   error
}

// startWorkers starts the MaxConcurrentChecks goroutines that read scope
// counters for streams; they end when stop is closed.
func (p *Plugin) startWorkers(stop <-chan struct{}) {
	for range p.cfg.MaxConcurrentChecks {
		go func() {
			for {
				select {
				case <-stop:
					return
				case r := <-p.headsq:
					if r.ctx.Err() != nil {
						r.reply <- headsReply{err: r.ctx.Err()}
						continue
					}
					h, err := p.app.Heads(r.ctx, r.who)
					r.reply <- headsReply{h, err}
				}
			}
		}()
	}
}

// heads reads the counters of the scopes who may read, through the
// workers (directly before Start), and makes s watch them.
func (p *Plugin) heads(ctx context.Context, who framework.Principal, s *stream) (map[string]int64, error) {
	var heads map[string]int64
	var err error
	if p.stopWorkers == nil {
		heads, err = p.app.Heads(ctx, who)
	} else {
		r := headsRequest{ctx: ctx, who: who, reply: make(chan headsReply, 1)}
		select {
		case p.headsq <- r:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.stopWorkers:
			return nil, errors.New("realtime: the plugin is closed")
		}
		select {
		case got := <-r.reply:
			heads, err = got.heads, got.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	scopes := make([]string, 0, len(heads))
	for sc := range heads {
		scopes = append(scopes, sc)
	}
	sort.Strings(scopes)
	p.reg.rescope(s, scopes)
	return heads, nil
}
