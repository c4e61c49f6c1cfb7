// Package sse writes Server-Sent Events streams: each write under its
// own deadline and flushed at once, so a reader that stops reading is
// dropped instead of holding the stream's memory.
package sse

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// Writer writes one stream's events.
type Writer struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// NewWriter prepares w for a stream: the SSE headers (sent with the first
// write), no read deadline, and timeout for each later write. w may be a
// wrapper (gin's ResponseWriter): flushes go through the connection's own
// writer, because a wrapper's Flush may drop the error by which a dead
// connection shows.
func NewWriter(w http.ResponseWriter, timeout time.Duration) *Writer {
	under := w
	for {
		u, ok := under.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		under = u.Unwrap()
	}
	rc := http.NewResponseController(under)
	// A stream has no body to wait for, so it needs no read deadline. A
	// read deadline left on the connection would cut the stream: net/http
	// reads in the background to notice a client that goes away, and that
	// read timing out cancels the request (golang/go#70834).
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	return &Writer{w: w, rc: rc, timeout: timeout}
}

// Send writes b, one or more complete events, and flushes it before the
// write deadline.
func (s *Writer) Send(b []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Event appends one event to b: its id (omitted when empty), its type
// (omitted when empty: a "message") and its data, one data line per line
// of data.
func Event(b []byte, id, event, data string) []byte {
	if id != "" {
		b = append(append(append(b, "id: "...), id...), '\n')
	}
	if event != "" {
		b = append(append(append(b, "event: "...), event...), '\n')
	}
	for line := range strings.SplitSeq(data, "\n") {
		b = append(append(append(b, "data: "...), line...), '\n')
	}
	return append(b, '\n')
}

// Comment appends a comment line, which clients ignore: a keep-alive, or
// a word on why the stream ends.
func Comment(b []byte, text string) []byte {
	return append(append(append(b, ": "...), text...), "\n\n"...)
}
