package blobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/uptrace/bun"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
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
		"bucket-s3": blobs.NewBucketStore(fakeS3(t), "media/"),
	}
}

// fakeS3 is a bucket of an in-process S3 server (gofakes3, over real
// HTTP) through gocloud's s3blob and the AWS SDK, as a deployment on S3
// or an S3-compatible store opens it.
func fakeS3(t *testing.T) *blob.Bucket {
	t.Helper()
	srv := httptest.NewUnstartedServer(gofakes3.New(s3mem.New()).Server())
	// The fake answers some errors after it began an answer, which
	// net/http logs ("superfluous WriteHeader"): the tests check answers.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("ferry", "ferry-secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true, // the fake serves buckets in the path, not as host names
		HTTPClient:   srv.Client(),
	})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ferry")}); err != nil {
		t.Fatal(err)
	}
	b, err := s3blob.OpenBucket(ctx, client, "ferry", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
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
// instead of linking it): in memory, and on S3 (the fake), with a blob
// of several multipart-upload parts there.
func TestBucketStoreOverHTTP(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		for _, c := range []struct {
			name string
			open func(*testing.T) *blob.Bucket
			size int
		}{
			{"memblob", func(t *testing.T) *blob.Bucket {
				b := memblob.OpenBucket(nil)
				t.Cleanup(func() { b.Close() })
				return b
			}, 200_000},
			{"s3", fakeS3, 11<<20 + 3},
		} {
			t.Run(c.name, func(t *testing.T) {
				bucket := c.open(t)
				e := newEnv(t, db, "", blobs.Config{Store: blobs.NewBucketStore(bucket, "b/")})
				data := randomBytes(51, c.size)
				h := e.upload(t, "alice", data)
				from := c.size - 50_000
				if resp, got := e.get(t, "alice", h, map[string]string{"Range": fmt.Sprintf("bytes=%d-", from)}); resp.StatusCode != 206 || !bytes.Equal(got, data[from:]) {
					t.Fatalf("Range GET from the bucket: %d, %d bytes", resp.StatusCode, len(got))
				}
				if resp, got := e.get(t, "alice", h, nil); resp.StatusCode != 200 || !bytes.Equal(got, data) {
					t.Fatalf("GET from the bucket: %d, %d bytes", resp.StatusCode, len(got))
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
