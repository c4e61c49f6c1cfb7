package blobs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// limitWriter takes at most left bytes, then fails (or writes short).
type limitWriter struct {
	buf   bytes.Buffer
	left  int
	short bool
}

var errDiskFull = errors.New("disk full")

func (w *limitWriter) Write(p []byte) (int, error) {
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

// TestHashingBodyWriteTo checks the pipelined hash covers exactly the
// bytes written, whatever stops the copy: the end of the body, a body
// that fails, a writer that fails or writes short, reads of every size.
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
		body    io.Reader
		left    int // what the writer takes; -1: all
		short   bool
		written int
		err     error
	}{
		{"whole", bytes.NewReader(data), -1, false, len(data), nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data[:5000])), -1, false, 5000, nil},
		{"half reads", iotest.HalfReader(bytes.NewReader(data)), -1, false, len(data), nil},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(data)), -1, false, len(data), nil},
		{"empty", bytes.NewReader(nil), -1, false, 0, nil},
		{"body fails", io.MultiReader(bytes.NewReader(data[:pipeBufSize+7]), iotest.ErrReader(errCut)), -1, false, pipeBufSize + 7, errCut},
		{"writer fails", bytes.NewReader(data), 2*pipeBufSize + 3, false, 2*pipeBufSize + 3, errDiskFull},
		{"writer short", bytes.NewReader(data), pipeBufSize/2 + 1, true, pipeBufSize/2 + 1, io.ErrShortWrite},
		{"writer takes nothing", bytes.NewReader(data), 0, false, 0, errDiskFull},
	}
	pool := &bufPool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &limitWriter{left: c.left, short: c.short}
			if c.left < 0 {
				w.left = len(data)
			}
			b := &hashingBody{r: c.body, h: sha256.New(), bufs: pool}
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
		})
	}
}
