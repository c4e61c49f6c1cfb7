package blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// ErrNotFound is returned by a [Store] for a blob it does not hold.
var ErrNotFound = errors.New("blobs: blob not found")

// Store keeps blobs' bytes under their hex SHA-256 digest. The plugin
// verifies the bytes before it hands them to Put, and keeps in the
// database which blobs exist and who may read them: a Store is only
// bytes. Implementations are safe for concurrent use; Put of a digest
// the store holds already replaces it with the same bytes.
type Store interface {
	// Put stores size bytes from r under hash.
	Put(ctx context.Context, hash string, r io.Reader, size int64) error
	// Open returns the blob's bytes, seekable (for Range requests), or
	// ErrNotFound.
	Open(ctx context.Context, hash string) (Blob, error)
	// Exists reports whether the store holds hash.
	Exists(ctx context.Context, hash string) (bool, error)
	// Delete removes hash; deleting what is not there is no error.
	Delete(ctx context.Context, hash string) error
}

// Blob is an open blob.
type Blob interface {
	io.ReadSeekCloser
	// ModTime is when the blob was stored (Last-Modified).
	ModTime() time.Time
}

// FileAdopter is an optional interface of a [Store] on the local file
// system: it takes a finished upload's file as the blob by linking it,
// instead of copying its bytes.
type FileAdopter interface {
	Adopt(ctx context.Context, hash, path string) error
}

// FileStore is the file-system [Store]: each blob is one file,
// dir/ab/abcdef…, written to a temporary file and renamed into place so a
// reader never sees half a blob.
type FileStore struct {
	dir string
}

var (
	_ Store       = (*FileStore)(nil)
	_ FileAdopter = (*FileStore)(nil)
)

// NewFileStore returns a FileStore in dir, creating it if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blobs: file store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(hash string) (string, error) {
	if !validHex(hash) {
		return "", fmt.Errorf("blobs: %q is not a hex SHA-256 digest", hash)
	}
	return filepath.Join(s.dir, hash[:2], hash), nil
}

// Put implements [Store]. The blob is on disk when Put returns: its
// file and its directory are synced (an upload answered as stored
// survives a crash).
func (s *FileStore) Put(ctx context.Context, hash string, r io.Reader, size int64) error {
	p, err := s.path(hash)
	if err != nil {
		return err
	}
	if err := s.mkdir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	return nil
}

// Adopt implements [FileAdopter]: it links path (which must be on the
// same file system, and stays for its owner to remove) as the blob,
// through a temporary name so the blob appears whole or not at all. As
// with Put, the blob is on disk when Adopt returns: the file's bytes
// are synced before it is linked, and its directory after.
func (s *FileStore) Adopt(ctx context.Context, hash, path string) error {
	p, err := s.path(hash)
	if err != nil {
		return err
	}
	if err := syncFile(path); err != nil {
		return fmt.Errorf("blobs: adopt %s: %w", hash, err)
	}
	if err := s.mkdir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("blobs: adopt %s: %w", hash, err)
	}
	tmp := filepath.Join(filepath.Dir(p), ".adopt-"+filepath.Base(path))
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		return fmt.Errorf("blobs: adopt %s: %w", hash, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("blobs: adopt %s: %w", hash, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("blobs: adopt %s: %w", hash, err)
	}
	return nil
}

// mkdir makes a blob's directory (dir/ab) if it is missing, and syncs
// the store's directory after creating it, so the new entry survives a
// crash with the blob in it.
func (s *FileStore) mkdir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// syncFile flushes a file's bytes to the disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir flushes a directory's entries (a new name in it) to the disk.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing; NTFS journals names
	}
	return syncFile(dir)
}

// Open implements [Store].
func (s *FileStore) Open(ctx context.Context, hash string) (Blob, error) {
	p, err := s.path(hash)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blobs: open %s: %w", hash, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobs: open %s: %w", hash, err)
	}
	return fileBlob{File: f, mod: st.ModTime()}, nil
}

type fileBlob struct {
	*os.File
	mod time.Time
}

func (b fileBlob) ModTime() time.Time { return b.mod }

// Exists implements [Store].
func (s *FileStore) Exists(ctx context.Context, hash string) (bool, error) {
	p, err := s.path(hash)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("blobs: stat %s: %w", hash, err)
	}
}

// Delete implements [Store].
func (s *FileStore) Delete(ctx context.Context, hash string) error {
	p, err := s.path(hash)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blobs: delete %s: %w", hash, err)
	}
	return nil
}
