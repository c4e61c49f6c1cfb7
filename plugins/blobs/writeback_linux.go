package blobs

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// writebackEvery is how many written bytes start the disk's write-back of
// an upload's file.
const writebackEvery = 8 << 20

// writeback starts writing an upload's file to disk while it is still
// being uploaded (sync_file_range, which does not wait), so the sync
// that makes a finished blob durable ([FileStore.Adopt]) has little left
// to wait for: the disk works beside the network instead of after it.
type writeback struct {
	rc      syscall.RawConn
	pending int
}

// newWriteback returns a writeback for w when w is a file, else nil.
func newWriteback(w io.Writer) *writeback {
	sc, ok := w.(syscall.Conn) // *os.File, or os's wrapper of one in io.Copy
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &writeback{rc: rc}
}

// wrote counts n bytes written to the file and starts the write-back of
// its dirty pages every writebackEvery. Failures are ignored: the final
// sync reports them.
func (wb *writeback) wrote(n int) {
	wb.pending += n
	if wb.pending < writebackEvery {
		return
	}
	wb.pending = 0
	_ = wb.rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}
