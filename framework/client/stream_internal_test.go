package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestStreamReconnectDelay(t *testing.T) {
	s := &streamer{opts: StreamOptions{ReconnectDelay: 10 * time.Millisecond, MaxReconnectDelay: 80 * time.Millisecond}}
	for _, tc := range []struct {
		failures   int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, 0, 10 * time.Millisecond},
		{2, 0, 0, 20 * time.Millisecond},
		{4, 0, 0, 80 * time.Millisecond},
		{40, 0, 0, 80 * time.Millisecond}, // capped
		{1, 30 * time.Second, 30 * time.Second, 30*time.Second + 10*time.Millisecond},
		{1, 48 * time.Hour, time.Hour, time.Hour + 10*time.Millisecond}, // an absurd Retry-After
	} {
		for range 200 {
			if d := s.delay(tc.failures, tc.retryAfter); d < tc.lo || d > tc.hi {
				t.Fatalf("delay(%d, %s) = %s, want within [%s, %s]", tc.failures, tc.retryAfter, d, tc.lo, tc.hi)
			}
		}
	}
}

// FuzzEventReader feeds the stream's reader arbitrary bytes: it must not
// panic, must end with the input, and must hold no more than a line's
// cap of any line.
func FuzzEventReader(f *testing.F) {
	f.Add("retry: 2000\n\nid: h1.x\nevent: changes\ndata: {\"cursor\":\"h1.x\"}\n\n: keep-alive\n\n")
	f.Add("event: ready\r\ndata: {}\r\n\r\n")
	f.Add(": " + strings.Repeat("x", maxStreamLine+10) + "\n\nevent:\n\ndata\n\n")
	f.Add("event: " + strings.Repeat("y", 3*maxStreamLine) + "\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := newEventReader(strings.NewReader(in))
		for range len(in) + 1 {
			kind, comment, err := r.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("error %v, want EOF", err)
				}
				return
			}
			if len(kind) > maxStreamLine || len(comment) > maxStreamLine {
				t.Fatalf("held %d and %d bytes of a line", len(kind), len(comment))
			}
		}
		t.Fatal("more events than bytes")
	})
}
