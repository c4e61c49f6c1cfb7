package blobs

import (
	"hash"
	"io"
	"sync"
)

// A PATCH's bytes are read, written and hashed on three goroutines, in
// a pipeline through pipeBufs buffers of pipeBufSize: a profile of the
// blobs bench showed the request's goroutine busy reading the socket,
// writing the file and hashing in turn (SHA-256 a third of it), so each
// step waited for the others; a writer of its own lets the socket be
// read while the kernel takes the last buffer into the file. The buffers
// bound what a PATCH holds (1 MiB) and are reused across requests.
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
// os.File.ReadFrom), reads the next buffer while the ones before are
// written to the file and hashed (and, written to a file, their
// write-back to disk started). Either way only bytes the
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

// WriteTo implements io.WriterTo: the request's goroutine reads buffers
// of the body, a writing goroutine writes each to w, a hashing goroutine
// hashes what was written; each buffer comes back to the reader once
// hashed. A failed write stops the reading: what was read after it is
// neither written nor hashed (the client sends it again from the
// upload's offset).
func (b *hashingBody) WriteTo(w io.Writer) (int64, error) {
	free := make(chan []byte, pipeBufs)
	for range pipeBufs {
		free <- b.bufs.get()
	}
	// Only pipeBufs buffers exist, so no send below blocks.
	toWrite := make(chan []byte, pipeBufs)
	toHash := make(chan []byte, pipeBufs)
	failed := make(chan struct{})
	var written int64
	var werr error
	go func() {
		defer close(toHash)
		for p := range toWrite {
			if werr != nil {
				free <- p
				continue
			}
			m, err := w.Write(p)
			if err == nil && m < len(p) {
				err = io.ErrShortWrite
			}
			if m > 0 {
				written += int64(m)
				toHash <- p[:m]
			} else {
				free <- p
			}
			if err != nil {
				werr = err
				close(failed)
			}
		}
	}()
	hashed := make(chan struct{})
	wb := newWriteback(w)
	go func() {
		defer close(hashed)
		for p := range toHash {
			b.h.Write(p)
			if wb != nil {
				wb.wrote(len(p))
			}
			free <- p
		}
	}()
	var rerr error
read:
	for {
		var p []byte
		select {
		case p = <-free:
		case <-failed:
			break read
		}
		n, err := b.r.Read(p[:cap(p)])
		if n > 0 {
			toWrite <- p[:n]
		} else {
			free <- p
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	close(toWrite)
	<-hashed // the writer has finished too: it closes toHash
	for range pipeBufs {
		b.bufs.put(<-free)
	}
	b.n += written
	if werr != nil {
		return written, werr
	}
	return written, rerr
}
