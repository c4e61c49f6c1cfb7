package blobs

import (
	"hash"
	"io"
	"sync"
)

// A PATCH's bytes are hashed on a goroutine of their own, beside the
// request's, through pipeBufs buffers of pipeBufSize: a profile of the
// blobs bench showed the request's goroutine busy reading the socket,
// writing the file and hashing in turn (SHA-256 a third of it), so each
// step waited for the others. The buffers bound what a PATCH holds (1
// MiB) and are reused across requests.
const (
	pipeBufs    = 4
	pipeBufSize = 256 << 10
)

// bufPool keeps the pipelines' buffers between requests.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, pipeBufSize)
}

func (bp *bufPool) put(b []byte) {
	b = b[:cap(b)]
	bp.p.Put(&b)
}

// hashingBody is a PATCH body that hashes what the store takes of it and
// counts it: n bytes went through h. Read hashes inline (for any store);
// WriteTo, which io.Copy prefers (tusd's file store reaches it through
// os.File.ReadFrom), writes each buffer to the file while the hashing
// goroutine hashes the ones written before it (and, writing to a file,
// starts their write-back to disk). Either way only bytes the
// writer took are hashed, so n equals what the store wrote.
type hashingBody struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	bufs *bufPool
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.h.Write(p[:n]) // a hash never fails
		b.n += int64(n)
	}
	return n, err
}

// WriteTo implements io.WriterTo: read a buffer, write it, hand it to the
// hashing goroutine, which gives it back once hashed.
func (b *hashingBody) WriteTo(w io.Writer) (int64, error) {
	free := make(chan []byte, pipeBufs)
	for range pipeBufs {
		free <- b.bufs.get()
	}
	full := make(chan []byte, pipeBufs)
	hashed := make(chan struct{})
	wb := newWriteback(w)
	go func() {
		defer close(hashed)
		for p := range full {
			b.h.Write(p)
			if wb != nil {
				wb.wrote(len(p))
			}
			free <- p
		}
	}()
	var written int64
	var err error
	for err == nil {
		p := <-free
		n, rerr := b.r.Read(p[:cap(p)])
		m := 0
		if n > 0 {
			var werr error
			m, werr = w.Write(p[:n])
			switch {
			case werr != nil:
				err = werr
			case m < n:
				err = io.ErrShortWrite
			}
		}
		if m > 0 {
			written += int64(m)
			full <- p[:m]
		} else {
			free <- p
		}
		if err == nil && rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	close(full)
	<-hashed
	for range pipeBufs {
		b.bufs.put(<-free)
	}
	b.n += written
	return written, err
}
