package blobs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/uptrace/bun"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// stores are the Store implementations the suite runs on.
func stores(t *testing.T) map[string]blobs.Store {
	t.Helper()
	fs, err := blobs.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mem := memblob.OpenBucket(nil)
	t.Cleanup(func() { mem.Close() })
	dir, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	return map[string]blobs.Store{
		"file": fs, "bucket-mem": blobs.NewBucketStore(mem, "media/"), "bucket-file": blobs.NewBucketStore(dir, ""),
	}
}

// TestStores is the Store suite: every implementation keeps, serves with
// seeks, and deletes bytes alike, and a Put that fails leaves nothing.
func TestStores(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			data := randomBytes(50, 70_000)
			h := hashOf(data)
			if ok, err := s.Exists(ctx, h); err != nil || ok {
				t.Fatalf("Exists before Put: %v %v", ok, err)
			}
			if _, err := s.Open(ctx, h); !errors.Is(err, blobs.ErrNotFound) {
				t.Fatalf("Open before Put: %v", err)
			}
			// A failing reader, a short one: nothing is stored.
			if err := s.Put(ctx, h, iotest.TimeoutReader(bytes.NewReader(data)), int64(len(data))); err == nil {
				t.Fatal("Put from a failing reader succeeded")
			}
			if err := s.Put(ctx, h, bytes.NewReader(data[:100]), int64(len(data))); err == nil {
				t.Fatal("Put of too few bytes succeeded")
			}
			if ok, _ := s.Exists(ctx, h); ok {
				t.Fatal("a failed Put left the blob")
			}
			for range 2 { // a second Put of the same bytes is harmless
				if err := s.Put(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatal(err)
				}
			}
			b, err := s.Open(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if end, err := b.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
				t.Fatalf("Seek to the end: %d %v", end, err)
			}
			if _, err := b.Seek(60_000, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, data[60_000:]) {
				t.Fatalf("read after a seek: %d bytes, %v", len(got), err)
			}
			if b.ModTime().IsZero() {
				t.Error("no ModTime")
			}
			b.Close()
			for range 2 {
				if err := s.Delete(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			if ok, _ := s.Exists(ctx, h); ok {
				t.Fatal("deleted blob exists")
			}
			if err := s.Put(ctx, "../etc", bytes.NewReader(nil), 0); err == nil {
				t.Fatal("a name that is not a digest was accepted")
			}
		})
	}
}

// TestBucketStoreOverHTTP runs uploads, ranges and collection with the
// blobs in a gocloud bucket (the plugin copies the verified upload
// instead of linking it).
func TestBucketStoreOverHTTP(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		bucket := memblob.OpenBucket(nil)
		t.Cleanup(func() { bucket.Close() })
		e := newEnv(t, db, "", blobs.Config{Store: blobs.NewBucketStore(bucket, "b/")})
		data := randomBytes(51, 200_000)
		h := e.upload(t, "alice", data)
		if resp, got := e.get(t, "alice", h, map[string]string{"Range": "bytes=150000-"}); resp.StatusCode != 206 || !bytes.Equal(got, data[150_000:]) {
			t.Fatalf("Range GET from the bucket: %d, %d bytes", resp.StatusCode, len(got))
		}
		if keys := bucketKeys(t, bucket); len(keys) != 1 || keys[0] != "b/"+h[:2]+"/"+h {
			t.Fatalf("bucket holds %v", keys)
		}
		if p := e.partials(t); len(p) != 0 {
			t.Fatalf("partial uploads left: %v", p)
		}
		e.advance(25 * 60 * 60 * 1e9) // past the default grace period: never referred to
		if got, err := e.plug.Collect(context.Background()); err != nil || got.Blobs != 1 {
			t.Fatalf("collect: %+v %v", got, err)
		}
		if keys := bucketKeys(t, bucket); len(keys) != 0 {
			t.Fatalf("bucket holds %v after collection", keys)
		}
	})
}

func bucketKeys(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var keys []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
}
