package blobs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// limitWriter takes at most left bytes, then fails (or writes short),
// and keeps the largest write it was given.
type limitWriter struct {
	buf     bytes.Buffer
	left    int
	short   bool
	largest int
}

var errDiskFull = errors.New("disk full")

func (w *limitWriter) Write(p []byte) (int, error) {
	w.largest = max(w.largest, len(p))
	if len(p) > w.left {
		n := w.left
		w.buf.Write(p[:n])
		w.left = 0
		if w.short {
			return n, nil
		}
		return n, errDiskFull
	}
	w.left -= len(p)
	return w.buf.Write(p)
}

// TestHashingBodyWriteTo checks the hash covers exactly the bytes
// written, whatever stops the copy (the end of the body, a body that
// fails, a writer that fails or writes short, reads of every size),
// through the pipeline and, when every pipeline is busy, through the
// request's goroutine alone.
func TestHashingBodyWriteTo(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*pipeBufSize*pipeBufs+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	errCut := errors.New("connection reset")
	cases := []struct {
		name    string
		body    func() io.Reader
		left    int // what the writer takes; -1: all
		short   bool
		written int
		err     error
	}{
		{"whole", func() io.Reader { return bytes.NewReader(data) }, -1, false, len(data), nil},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:5000])) }, -1, false, 5000, nil},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }, -1, false, len(data), nil},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }, -1, false, len(data), nil},
		{"empty", func() io.Reader { return bytes.NewReader(nil) }, -1, false, 0, nil},
		{"body fails", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:pipeBufSize+7]), iotest.ErrReader(errCut))
		}, -1, false, pipeBufSize + 7, errCut},
		{"writer fails", func() io.Reader { return bytes.NewReader(data) }, 2*pipeBufSize + 3, false, 2*pipeBufSize + 3, errDiskFull},
		{"writer short", func() io.Reader { return bytes.NewReader(data) }, pipeBufSize/2 + 1, true, pipeBufSize/2 + 1, io.ErrShortWrite},
		{"writer takes nothing", func() io.Reader { return bytes.NewReader(data) }, 0, false, 0, errDiskFull},
	}
	for _, busy := range []bool{false, true} {
		ps := newPipes(1)
		if busy {
			ps.acquire() // the one pipeline is taken
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s busy=%v", c.name, busy), func(t *testing.T) {
				w := &limitWriter{left: c.left, short: c.short}
				if c.left < 0 {
					w.left = len(data)
				}
				b := &hashingBody{r: c.body(), h: sha256.New(), pipes: ps}
				n, err := io.Copy(w, b) // io.Copy uses WriteTo, as tusd's file store does
				if !errors.Is(err, c.err) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				if n != int64(c.written) || b.n != n || w.buf.Len() != c.written {
					t.Fatalf("copied %d, hashed %d, writer has %d; want %d", n, b.n, w.buf.Len(), c.written)
				}
				if !bytes.Equal(w.buf.Bytes(), data[:c.written]) {
					t.Fatal("the writer got other bytes")
				}
				if want := sha256.Sum256(data[:c.written]); !bytes.Equal(b.h.Sum(nil), want[:]) {
					t.Fatal("the hash is not of the bytes written")
				}
				// The pipeline writes its large buffers whole; the
				// serial copy writes at most serialBufSize at a time.
				if c.name == "whole" && busy != (w.largest <= serialBufSize) {
					t.Fatalf("busy=%v: largest write %d bytes", busy, w.largest)
				}
				if !busy && len(ps.slots) != 0 {
					t.Fatal("the pipeline's slot was not given back")
				}
			})
		}
	}
}
