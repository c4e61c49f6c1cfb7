package blobs

import (
	"context"
	"fmt"
	"io"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// BucketStore is a [Store] on a gocloud.dev/blob bucket: S3 and
// S3-compatible object storage (MinIO, Cloudflare R2, Ceph…) through
// gocloud.dev/blob/s3blob, Google Cloud Storage, Azure Blob Storage, or a
// folder (fileblob). The application opens the bucket, importing the
// driver it needs:
//
//	import _ "gocloud.dev/blob/s3blob"
//	bucket, err := blob.OpenBucket(ctx, "s3://media?region=eu-west-1")
//	store := blobs.NewBucketStore(bucket, "blobs/")
//
// Each blob is one object, prefix + "ab/abcdef…". A Put the bucket does not
// finish (a copy error, a short reader) is aborted, so no half object is
// left under the name. Ranges are read with the bucket's range reads.
type BucketStore struct {
	bucket *blob.Bucket
	prefix string
}

var _ Store = (*BucketStore)(nil)

// NewBucketStore returns a store keeping blobs in bucket under prefix.
// The caller closes the bucket after the App.
func NewBucketStore(bucket *blob.Bucket, prefix string) *BucketStore {
	return &BucketStore{bucket: bucket, prefix: prefix}
}

func (s *BucketStore) key(hash string) (string, error) {
	if !validHex(hash) {
		return "", fmt.Errorf("blobs: %q is not a hex SHA-256 digest", hash)
	}
	return s.prefix + hash[:2] + "/" + hash, nil
}

// Put implements [Store].
func (s *BucketStore) Put(ctx context.Context, hash string, r io.Reader, size int64) error {
	key, err := s.key(hash)
	if err != nil {
		return err
	}
	// Cancelling the writer's context is how gocloud aborts a write.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	n, err := io.Copy(w, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err != nil {
		cancel()
		_ = w.Close()
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	return nil
}

// Open implements [Store].
func (s *BucketStore) Open(ctx context.Context, hash string) (Blob, error) {
	key, err := s.key(hash)
	if err != nil {
		return nil, err
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blobs: open %s: %w", hash, err)
	}
	return r, nil
}

// Exists implements [Store].
func (s *BucketStore) Exists(ctx context.Context, hash string) (bool, error) {
	key, err := s.key(hash)
	if err != nil {
		return false, err
	}
	ok, err := s.bucket.Exists(ctx, key)
	if err != nil {
		return false, fmt.Errorf("blobs: stat %s: %w", hash, err)
	}
	return ok, nil
}

// Delete implements [Store].
func (s *BucketStore) Delete(ctx context.Context, hash string) error {
	key, err := s.key(hash)
	if err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("blobs: delete %s: %w", hash, err)
	}
	return nil
}
