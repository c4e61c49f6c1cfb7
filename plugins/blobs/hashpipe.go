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
// read while the kernel takes the last buffer into the file. Buffers are
// small so the bytes are still in the CPU's cache when the next stage
// takes them: on a quiet machine four of 256 KiB uploaded at 340-450
// MB/s, slower than no pipeline (500-570), eight of 64 KiB at 680-700.
// They bound what a PATCH holds (512 KiB) and are reused across
// requests; at most maxPipes PATCHes hold them at once (32 MiB), the
// others are copied on their request's goroutine through serialBufSize,
// as tusd alone copies them.
const (
	pipeBufs      = 8
	pipeBufSize   = 64 << 10
	maxPipes      = 64
	serialBufSize = 32 << 10
)

// pipes are a plugin's upload pipelines: their buffers and the slots
// that bound how many run at once.
type pipes struct {
	slots chan struct{}
	pool  sync.Pool
}

func newPipes(n int) *pipes { return &pipes{slots: make(chan struct{}, n)} }

// acquire takes a slot if one is free.
func (ps *pipes) acquire() bool {
	select {
	case ps.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (ps *pipes) release() { <-ps.slots }

func (ps *pipes) get() []byte {
	if b, ok := ps.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, pipeBufSize)
}

func (ps *pipes) put(b []byte) {
	b = b[:cap(b)]
	ps.pool.Put(&b)
}

// hashingBody is a PATCH body that hashes what the store takes of it and
// counts it: n bytes went through h. Read hashes inline (for any store);
// WriteTo, which io.Copy prefers (tusd's file store reaches it through
// os.File.ReadFrom), reads the next buffer while the ones before are
// written to the file and hashed (and, written to a file, their
// write-back to disk started), or when every pipeline is busy copies
// through Read. Either way only bytes the writer took are hashed, so n
// equals what the store wrote.
type hashingBody struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	pipes *pipes
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
	if !b.pipes.acquire() {
		return b.writeSerially(w)
	}
	defer b.pipes.release()
	free := make(chan []byte, pipeBufs)
	for range pipeBufs {
		free <- b.pipes.get()
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
		b.pipes.put(<-free)
	}
	b.n += written
	if werr != nil {
		return written, werr
	}
	return written, rerr
}

// writeSerially is WriteTo on the request's goroutine alone, for when
// every pipeline is busy: read, write, hash what was written.
func (b *hashingBody) writeSerially(w io.Writer) (int64, error) {
	buf := make([]byte, serialBufSize)
	var written int64
	for {
		n, rerr := b.r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			if m > 0 {
				b.h.Write(buf[:m])
				b.n += int64(m)
				written += int64(m)
			}
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
