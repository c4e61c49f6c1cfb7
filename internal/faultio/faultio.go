// Package faultio holds readers that fail on purpose, for tests and
// benchmarks that cut connections: a request body that breaks after a
// given byte, as a dropped connection does, and counts what it gave.
package faultio

import (
	"errors"
	"io"
	"sync/atomic"
)

// ErrCut is what a [CutReader] returns once it is cut.
var ErrCut = errors.New("faultio: connection cut")

// CutReader reads from R until Left bytes were read (never, when Left
// is negative), then fails with ErrCut; every byte it gives is added to
// Sent (if set), atomically, since an HTTP transport may still read a
// body after its answer arrived.
type CutReader struct {
	R    io.ReadCloser
	Left int64
	Sent *atomic.Int64
}

// Read implements io.Reader.
func (c *CutReader) Read(p []byte) (int, error) {
	if c.Left == 0 {
		return 0, ErrCut
	}
	if c.Left > 0 && int64(len(p)) > c.Left {
		p = p[:c.Left]
	}
	n, err := c.R.Read(p)
	if c.Left > 0 {
		c.Left -= int64(n)
	}
	if c.Sent != nil {
		c.Sent.Add(int64(n))
	}
	return n, err
}

// Close closes R.
func (c *CutReader) Close() error { return c.R.Close() }
