package blobs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/internal/faultio"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/ferrysync/ferry/plugins/blobs/blobclient"
	"github.com/uptrace/bun"
)

func TestUploadPushAndDownload(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		data := randomBytes(1, 300_000)
		h := hashOf(data)

		// The record may arrive first: applied, and told what to upload.
		res := e.push(t, "alice", "data.Note", "n1", note(h), false)
		if res.Status != "applied" || !slices.Equal(res.MissingBlobs, []string{"sha256:" + h}) {
			t.Fatalf("push before upload: %+v", res)
		}
		if has, err := e.client("alice").Has(context.Background(), h); err != nil || has {
			t.Fatalf("HEAD before upload: %v %v", has, err)
		}
		e.upload(t, "alice", data)
		if has, err := e.client("alice").Has(context.Background(), h); err != nil || !has {
			t.Fatalf("HEAD after upload: %v %v", has, err)
		}
		if res := e.push(t, "alice", "data.Note", "n1", note(h)+" ", false); len(res.MissingBlobs) != 0 {
			t.Fatalf("push after upload: %+v", res)
		}
		// A retried push of the same state is answered the same way.
		if res := e.push(t, "alice", "data.Note", "n2", note(h), false); len(res.MissingBlobs) != 0 {
			t.Fatalf("second record: %+v", res)
		}

		resp, got := e.get(t, "alice", h, nil)
		if resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(got))
		}
		for k, want := range map[string]string{
			"Content-Type": "image/jpeg", "ETag": `"sha256:` + h + `"`,
			"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
			"Accept-Ranges": "bytes",
		} {
			if resp.Header.Get(k) != want {
				t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), want)
			}
		}
		resp, got = e.get(t, "alice", h, map[string]string{"Range": "bytes=1000-1999"})
		if resp.StatusCode != 206 || !bytes.Equal(got, data[1000:2000]) {
			t.Fatalf("Range GET: %d, %d bytes", resp.StatusCode, len(got))
		}
		resp, _ = e.get(t, "alice", h, map[string]string{"If-None-Match": `"sha256:` + h + `"`})
		if resp.StatusCode != 304 {
			t.Fatalf("If-None-Match: %d", resp.StatusCode)
		}
		// The hex alone names it too.
		if resp, _ := e.do(t, "alice", "HEAD", "/sync/blobs/"+h, nil, nil); resp.StatusCode != 200 ||
			resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Fatalf("HEAD by hex: %d %s", resp.StatusCode, resp.Header.Get("Content-Length"))
		}
		// A model that is not a blob model: references are its own data.
		if res := e.push(t, "alice", "data.Other", "o1", note(hashOf([]byte("x"))), false); res.Status != "applied" || len(res.MissingBlobs) != 0 {
			t.Fatalf("other model: %+v", res)
		}
	})
}

func TestDedupe(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		data := randomBytes(2, 100_000)
		h := e.upload(t, "alice", data)

		// Alice again: the creation is answered complete, nothing sent.
		u := &blobclient.Upload{Hash: h, Size: int64(len(data))}
		sent := &countingReaderAt{r: bytes.NewReader(data)}
		if err := e.client("alice").Send(context.Background(), u, sent, nil); err != nil {
			t.Fatal(err)
		}
		if sent.n != 0 || u.Offset != u.Size {
			t.Fatalf("a second upload sent %d bytes (offset %d)", sent.n, u.Offset)
		}
		// And a HEAD or PATCH of that pseudo upload says complete.
		resp, _ := e.do(t, "alice", "HEAD", strings.TrimPrefix(u.URL, e.url), nil, map[string]string{"Tus-Resumable": "1.0.0"})
		if resp.StatusCode != 200 || resp.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
			t.Fatalf("HEAD of the deduplicated upload: %d %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
		}
		if resp, _ := e.do(t, "bob", "HEAD", strings.TrimPrefix(u.URL, e.url), nil, map[string]string{"Tus-Resumable": "1.0.0"}); resp.StatusCode != 404 {
			t.Fatalf("another user's HEAD of it: %d", resp.StatusCode)
		}

		// Bob must prove he has the bytes: he uploads them, and they are
		// not stored twice.
		if res := e.push(t, "bob", "data.Note", "b1", note(h), false); !slices.Equal(res.MissingBlobs, []string{"sha256:" + h}) {
			t.Fatalf("bob's push: %+v", res)
		}
		sent = &countingReaderAt{r: bytes.NewReader(data)}
		ub := &blobclient.Upload{Hash: h, Size: int64(len(data))}
		if err := e.client("bob").Send(context.Background(), ub, sent, nil); err != nil {
			t.Fatal(err)
		}
		if sent.n != int64(len(data)) {
			t.Fatalf("bob sent %d bytes", sent.n)
		}
		if resp, got := e.get(t, "bob", h, nil); resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("bob's GET: %d", resp.StatusCode)
		}
		if n := countRows(t, db, "ferry_blobs"); n != 1 {
			t.Fatalf("%d blob rows", n)
		}
		if p := e.partials(t); len(p) != 0 {
			t.Fatalf("partial uploads left: %v", p)
		}
	})
}

// countingReaderAt counts the bytes read from it.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func countRows(t *testing.T, db *bun.DB, table string) int {
	t.Helper()
	var n int
	if err := db.NewRaw("SELECT COUNT(*) FROM "+table).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHashMismatch(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		data := randomBytes(3, 50_000)
		wrong := hashOf([]byte("something else"))
		u := &blobclient.Upload{Hash: wrong, Size: int64(len(data))}
		err := e.client("alice").Send(context.Background(), u, bytes.NewReader(data), nil)
		var be *blobclient.Error
		if !errors.As(err, &be) || be.Status != 460 || be.Code != "hash_mismatch" {
			t.Fatalf("mismatch answered %v", err)
		}
		if p := e.partials(t); len(p) != 0 {
			t.Fatalf("partial data left: %v", p)
		}
		if n := countRows(t, db, "ferry_blob_uploads"); n != 0 {
			t.Fatalf("%d upload rows left", n)
		}
		if has, _ := e.client("alice").Has(context.Background(), wrong); has {
			t.Fatal("the wrong hash is served")
		}
		if has, _ := e.client("alice").Has(context.Background(), hashOf(data)); has {
			t.Fatal("the bytes' real hash is served")
		}
		// The upload is gone: resuming it is 404 (the client starts anew).
		resp, b := e.do(t, "alice", "HEAD", strings.TrimPrefix(u.URL, e.url), nil, map[string]string{"Tus-Resumable": "1.0.0"})
		if resp.StatusCode != 404 {
			t.Fatalf("HEAD of the refused upload: %d %s", resp.StatusCode, b)
		}
	})
}

func TestBadUploads(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{MaxUploadBytes: 1000})
		tus := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "10"}
		meta := func(h string) string { return "sha256 " + base64.StdEncoding.EncodeToString([]byte(h)) }
		for name, c := range map[string]struct {
			header map[string]string
			status int
			code   string
		}{
			"no hash":       {map[string]string{}, 400, "invalid"},
			"bad hash":      {map[string]string{"Upload-Metadata": meta("abc")}, 400, "invalid"},
			"upper hex":     {map[string]string{"Upload-Metadata": meta(strings.ToUpper(hashOf(nil)))}, 400, "invalid"},
			"too large":     {map[string]string{"Upload-Metadata": meta(hashOf(nil)), "Upload-Length": "1001"}, 413, "too_large"},
			"no length":     {map[string]string{"Upload-Metadata": meta(hashOf(nil)), "Upload-Length": ""}, 400, "invalid"},
			"no tus header": {map[string]string{"Upload-Metadata": meta(hashOf(nil)), "Tus-Resumable": ""}, 412, "invalid"},
		} {
			h := map[string]string{}
			for k, v := range tus {
				h[k] = v
			}
			for k, v := range c.header {
				h[k] = v
			}
			resp, b := e.do(t, "alice", "POST", "/sync/blobs/uploads", nil, h)
			if resp.StatusCode != c.status || errorCode(t, b) != c.code {
				t.Errorf("%s: %d %s", name, resp.StatusCode, b)
			}
		}
		if resp, b := e.do(t, "", "POST", "/sync/blobs/uploads", nil, tus); resp.StatusCode != 401 || errorCode(t, b) != "unauthenticated" {
			t.Errorf("no credentials: %d %s", resp.StatusCode, b)
		}
		if resp, b := e.get(t, "alice", "nothex", nil); resp.StatusCode != 400 || errorCode(t, b) != "invalid" {
			t.Errorf("bad name: %d %s", resp.StatusCode, b)
		}
		if resp, b := e.do(t, "alice", "PATCH", "/sync/blobs/uploads/nosuch", strings.NewReader("x"),
			map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}); resp.StatusCode != 404 || errorCode(t, b) != "not_found" {
			t.Errorf("PATCH of no upload: %d %s", resp.StatusCode, b)
		}
		// A malformed reference rejects the change, with its path.
		res := e.push(t, "alice", "data.Note", "n1", `{"a":{"b":[{"$blob":"md5:00"}]}}`, false)
		if res.Status != "rejected" || len(res.Errors) != 1 || res.Errors[0].Path != "/data/a/b/0/$blob" {
			t.Fatalf("bad reference: %+v", res)
		}
		// Too many references too.
		var many []string
		for i := range 101 {
			many = append(many, hashOf([]byte{byte(i)}))
		}
		if res := e.push(t, "alice", "data.Note", "n2", note(many...), false); res.Status != "rejected" {
			t.Fatalf("101 references: %+v", res)
		}
	})
}

// cutTransport cuts the PATCH whose body reaches offset cut of the file
// right there, once, as a dropped connection does, and counts the bytes
// PATCHed in all.
type cutTransport struct {
	cut  int64        // -1: cut already
	sent atomic.Int64 // the transport's writer may still run after an answer
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && r.Body != nil {
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		left := int64(-1)
		if c.cut >= off && c.cut < off+r.ContentLength {
			left, c.cut = c.cut-off, -1
		}
		r.Body = &faultio.CutReader{R: r.Body, Left: left, Sent: &c.sent}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestResumeAfterCut(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		const size, chunk = 1 << 20, 256 << 10
		for i, cut := range []int64{0, 1, 100_000, chunk - 1, chunk, chunk + 7, size / 2, size - 1} {
			data := randomBytes(uint64(100+i), size)
			tr := &cutTransport{cut: cut}
			c := e.client("alice")
			c.HTTP, c.ChunkSize = &http.Client{Transport: tr}, chunk
			u := &blobclient.Upload{Hash: hashOf(data), Size: size}
			err := c.Send(context.Background(), u, bytes.NewReader(data), nil)
			if err == nil {
				t.Fatalf("cut at %d: no error", cut)
			}
			if u.URL == "" {
				t.Fatalf("cut at %d: no upload URL kept", cut)
			}
			// The device resumes: the server says where it stands.
			if err := c.Send(context.Background(), u, bytes.NewReader(data), nil); err != nil {
				t.Fatalf("cut at %d: resume: %v", cut, err)
			}
			resp, got := e.get(t, "alice", u.Hash, nil)
			if resp.StatusCode != 200 || !bytes.Equal(got, data) {
				t.Fatalf("cut at %d: the server's bytes differ (%d, %d bytes)", cut, resp.StatusCode, len(got))
			}
			// What was sent again is at most the cut chunk: the resumed
			// request waits for the cut one to store what it got.
			if extra := tr.sent.Load() - size; extra > chunk {
				t.Errorf("cut at %d: %d bytes sent again", cut, extra)
			}
		}
		if p := e.partials(t); len(p) != 0 {
			t.Fatalf("partial uploads left: %v", p)
		}
	})
}

func TestResumeAfterServerRestart(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		dir := t.TempDir()
		e := newEnv(t, db, dir, blobs.Config{})
		data := randomBytes(7, 700_000)
		c := e.client("alice")
		c.ChunkSize = 300_000
		u := &blobclient.Upload{Hash: hashOf(data), Size: int64(len(data))}
		ctx, stop := context.WithCancel(context.Background())
		err := c.Send(ctx, u, bytes.NewReader(data), func(u *blobclient.Upload) {
			if u.Offset >= 300_000 {
				stop() // the device is switched off after one chunk
			}
		})
		if !errors.Is(err, context.Canceled) || u.Offset != 300_000 {
			t.Fatalf("stopped upload: offset %d, %v", u.Offset, err)
		}
		// The server restarts (its running hash is lost) and so does the
		// device, with the upload state it stored.
		e.close()
		e2 := newEnv(t, db, dir, blobs.Config{})
		u.URL = e2.url + strings.TrimPrefix(u.URL, e.url)
		c = e2.client("alice")
		c.ChunkSize = 300_000
		sent := &countingReaderAt{r: bytes.NewReader(data)}
		if err := c.Send(context.Background(), u, sent, nil); err != nil {
			t.Fatalf("resume after restart: %v", err)
		}
		if sent.n != int64(len(data))-300_000 {
			t.Fatalf("resume sent %d bytes", sent.n)
		}
		if resp, got := e2.get(t, "alice", u.Hash, nil); resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("after restart the server's bytes differ: %d", resp.StatusCode)
		}
	})
}

func TestAnotherUsersBlob(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		data := randomBytes(4, 20_000)
		ctx := context.Background()
		// Alice's upload stops half way, then she finishes another.
		c := e.client("alice")
		c.ChunkSize = 10_000
		half := &blobclient.Upload{Hash: hashOf(data), Size: int64(len(data))}
		cctx, stop := context.WithCancel(ctx)
		_ = c.Send(cctx, half, bytes.NewReader(data), func(u *blobclient.Upload) {
			if u.Offset > 0 {
				stop()
			}
		})
		other := randomBytes(5, 1000)
		h := e.upload(t, "alice", other)
		e.push(t, "alice", "data.Note", "n1", note(h), false)

		absent := hashOf([]byte("never uploaded"))
		for _, name := range []string{h, absent} {
			for _, method := range []string{"HEAD", "GET"} {
				resp, b := e.do(t, "bob", method, "/sync/blobs/sha256:"+name, nil, nil)
				if resp.StatusCode != 404 || (method == "GET" && errorCode(t, b) != "not_found") {
					t.Errorf("bob %s %s: %d %s", method, name[:8], resp.StatusCode, b)
				}
			}
		}
		// The same answer as for a blob nobody has: nothing tells them apart.
		r1, b1 := e.get(t, "bob", h, nil)
		r2, b2 := e.get(t, "bob", absent, nil)
		if r1.StatusCode != r2.StatusCode || !bytes.Equal(b1, b2) {
			t.Errorf("another user's blob answers %d %s, an absent one %d %s", r1.StatusCode, b1, r2.StatusCode, b2)
		}
		// Referring to it grants nothing.
		if res := e.push(t, "bob", "data.Note", "n1", note(h), false); !slices.Equal(res.MissingBlobs, []string{"sha256:" + h}) {
			t.Fatalf("bob's reference: %+v", res)
		}
		if resp, _ := e.get(t, "bob", h, nil); resp.StatusCode != 404 {
			t.Fatalf("bob reads alice's blob by referring to it: %d", resp.StatusCode)
		}
		// Alice's unfinished upload is not bob's to see, write or delete.
		path := strings.TrimPrefix(half.URL, e.url)
		tus := map[string]string{"Tus-Resumable": "1.0.0"}
		for _, method := range []string{"HEAD", "PATCH", "DELETE"} {
			h := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "10000", "Content-Type": "application/offset+octet-stream"}
			if resp, b := e.do(t, "bob", method, path, strings.NewReader("xx"), h); resp.StatusCode != 404 {
				t.Errorf("bob %s alice's upload: %d %s", method, resp.StatusCode, b)
			}
		}
		if resp, _ := e.do(t, "alice", "HEAD", path, nil, tus); resp.StatusCode != 200 || resp.Header.Get("Upload-Offset") != "10000" {
			t.Fatalf("alice's upload after bob tried: %d %s", resp.StatusCode, resp.Header.Get("Upload-Offset"))
		}
		// Alice may delete it; then it is gone.
		if err := c.Delete(ctx, half); err != nil {
			t.Fatal(err)
		}
		if resp, _ := e.do(t, "alice", "HEAD", path, nil, tus); resp.StatusCode != 404 {
			t.Fatalf("deleted upload: %d", resp.StatusCode)
		}
		if n := countRows(t, db, "ferry_blob_uploads"); n != 0 {
			t.Fatalf("%d upload rows after the deletion", n)
		}
	})
}

func TestCollect(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		const grace = time.Hour
		e := newEnv(t, db, "", blobs.Config{GracePeriod: grace})
		ctx := context.Background()
		kept, dropped, never, shared := randomBytes(10, 5000), randomBytes(11, 6000), randomBytes(12, 7000), randomBytes(13, 8000)
		hk, hd, hn, hs := e.upload(t, "alice", kept), e.upload(t, "alice", dropped), e.upload(t, "alice", never), e.upload(t, "alice", shared)
		e.upload(t, "bob", shared)
		e.push(t, "alice", "data.Note", "k", note(hk, hs), false)
		e.push(t, "alice", "data.Note", "d", note(hd), false)
		e.push(t, "bob", "data.Note", "s", note(hs), false)
		// Alice edits d to drop its photo, and deletes k (a tombstone
		// refers to nothing); bob still refers to shared.
		e.push(t, "alice", "data.Note", "d", note(), false)
		e.push(t, "alice", "data.Note", "k2", note(hk), false)
		e.push(t, "alice", "data.Note", "k", note(hk, hs), true)

		e.advance(grace - time.Minute)
		if got, err := e.plug.Collect(ctx); err != nil || got != (blobs.Collected{}) {
			t.Fatalf("collect within the grace period: %+v %v", got, err)
		}
		for _, h := range []string{hk, hd, hn, hs} {
			if has, _ := e.client("alice").Has(ctx, h); !has {
				t.Fatalf("%s gone within the grace period", h[:8])
			}
		}
		e.advance(2 * time.Minute)
		got, err := e.plug.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// dropped and never are gone; alice's hold on shared too, but bob's
		// keeps the bytes; kept is still referred to by k2.
		if want := (blobs.Collected{Holdings: 3, Blobs: 2, Bytes: 6000 + 7000}); got != want {
			t.Fatalf("collected %+v, want %+v", got, want)
		}
		for h, want := range map[string]bool{hk: true, hd: false, hn: false, hs: false} {
			if has, _ := e.client("alice").Has(ctx, h); has != want {
				t.Errorf("alice has %s: %v, want %v", h[:8], has, want)
			}
		}
		if has, _ := e.client("bob").Has(ctx, hs); !has || !e.stored(hs) {
			t.Fatal("bob's shared blob collected")
		}
		if e.stored(hd) || e.stored(hn) || !e.stored(hk) {
			t.Fatal("the files on disk do not follow the collection")
		}
		// Referring to a collected blob again: applied, and told to upload.
		if res := e.push(t, "alice", "data.Note", "d", note(hd), false); !slices.Equal(res.MissingBlobs, []string{"sha256:" + hd}) {
			t.Fatalf("reference to a collected blob: %+v", res)
		}
		e.upload(t, "alice", dropped)
		if resp, b := e.get(t, "alice", hd, nil); resp.StatusCode != 200 || !bytes.Equal(b, dropped) {
			t.Fatalf("re-uploaded blob: %d", resp.StatusCode)
		}
		// Referred to again, it survives any number of collections.
		e.advance(10 * grace)
		if _, err := e.plug.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		if has, _ := e.client("alice").Has(ctx, hd); !has {
			t.Fatal("a referred blob was collected")
		}
	})
}

func TestQuota(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{MaxBytesPerUser: 10_000, MaxUploadsPerUser: 2})
		ctx := context.Background()
		e.upload(t, "alice", randomBytes(20, 6000))
		big := randomBytes(21, 5000)
		err := e.client("alice").Send(ctx, &blobclient.Upload{Hash: hashOf(big), Size: 5000}, bytes.NewReader(big), nil)
		var be *blobclient.Error
		if !errors.As(err, &be) || be.Status != 413 || be.Code != "quota_exceeded" || !strings.Contains(be.Message, "10000") {
			t.Fatalf("over the quota: %v", err)
		}
		// Another user has a quota of their own.
		e.upload(t, "bob", big)
		// Unfinished uploads count toward it, and toward the upload cap.
		meta := "sha256 " + base64.StdEncoding.EncodeToString([]byte(hashOf(nil)))
		create := func(size int) (int, []byte) {
			resp, b := e.do(t, "alice", "POST", "/sync/blobs/uploads", nil, map[string]string{
				"Tus-Resumable": "1.0.0", "Upload-Length": strconv.Itoa(size), "Upload-Metadata": meta})
			return resp.StatusCode, b
		}
		if st, b := create(3000); st != 201 {
			t.Fatalf("an upload within the quota: %d %s", st, b)
		}
		if st, b := create(3000); st != 413 || errorCode(t, b) != "quota_exceeded" {
			t.Fatalf("unfinished uploads over the quota: %d %s", st, b)
		}
		if st, b := create(10); st != 201 {
			t.Fatalf("a second unfinished upload: %d %s", st, b)
		}
		if st, b := create(10); st != 413 || errorCode(t, b) != "too_large" {
			t.Fatalf("a third unfinished upload: %d %s", st, b)
		}
	})
}

func TestAbandonedUpload(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		const abandon = 2 * time.Hour
		e := newEnv(t, db, "", blobs.Config{AbandonAfter: abandon})
		ctx := context.Background()
		data := randomBytes(30, 40_000)
		c := e.client("alice")
		c.ChunkSize = 10_000
		u := &blobclient.Upload{Hash: hashOf(data), Size: int64(len(data))}
		cctx, stop := context.WithCancel(ctx)
		_ = c.Send(cctx, u, bytes.NewReader(data), func(u *blobclient.Upload) {
			if u.Offset >= 20_000 {
				stop()
			}
		})
		e.advance(abandon - time.Minute)
		if got, _ := e.plug.Collect(ctx); got.Uploads != 0 || len(e.partials(t)) == 0 {
			t.Fatalf("collected a live upload: %+v", got)
		}
		// A write keeps it alive.
		cctx, stop = context.WithCancel(ctx)
		_ = c.Send(cctx, u, bytes.NewReader(data), func(u *blobclient.Upload) {
			if u.Offset >= 30_000 {
				stop()
			}
		})
		if u.Offset != 30_000 {
			t.Fatalf("offset %d after one more chunk", u.Offset)
		}
		e.advance(abandon - time.Minute)
		if got, _ := e.plug.Collect(ctx); got.Uploads != 0 {
			t.Fatalf("collected an upload written to: %+v", got)
		}
		e.advance(2 * time.Minute)
		if got, err := e.plug.Collect(ctx); err != nil || got.Uploads != 1 {
			t.Fatalf("collect: %+v %v", got, err)
		}
		if p := e.partials(t); len(p) != 0 {
			t.Fatalf("partial data left: %v", p)
		}
		if resp, _ := e.do(t, "alice", "HEAD", strings.TrimPrefix(u.URL, e.url), nil, map[string]string{"Tus-Resumable": "1.0.0"}); resp.StatusCode != 404 {
			t.Fatalf("abandoned upload: %d", resp.StatusCode)
		}
		// The device starts anew and finishes.
		if err := c.Send(ctx, u, bytes.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
		if has, _ := c.Has(ctx, u.Hash); !has {
			t.Fatal("not stored after starting anew")
		}
	})
}

// The single-record endpoint answers missing_blobs too.
func TestSingleEndpointMissingBlobs(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		h := hashOf([]byte("photo"))
		body := `{"model":"data.Note","uid":"s1","modify_at":"2026-11-25T10:00:00Z","data":` + note(h) + `}`
		resp, b := e.do(t, "alice", "POST", "/sync/", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"missing_blobs":["sha256:`+h+`"]`) {
			t.Fatalf("POST /sync/: %d %s", resp.StatusCode, b)
		}
		e.upload(t, "alice", []byte("photo"))
		resp, b = e.do(t, "alice", "POST", "/sync/", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 200 || strings.Contains(string(b), "missing_blobs") {
			t.Fatalf("POST /sync/ after the upload: %d %s", resp.StatusCode, b)
		}
	})
}

// Uploads of one blob by several users, its references and collections
// running side by side end consistent: whoever the database says holds
// the blob can read it, bytes intact, and the store holds exactly the
// blobs the database lists.
func TestConcurrentUploadsAndCollections(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{GracePeriod: time.Nanosecond})
		ctx := context.Background()
		data := randomBytes(60, 64_000)
		h := hashOf(data)
		users := []string{"u1", "u2", "u3", "u4"}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range 4 {
					up := &blobclient.Upload{Hash: h, Size: int64(len(data))}
					if err := e.client(u).Send(ctx, up, bytes.NewReader(data), nil); err != nil {
						errs <- fmt.Errorf("%s: %w", u, err)
						return
					}
					// Half the users refer to it, half let it go. A
					// collection may take a referring user's hold between
					// their upload and their push (the grace period is
					// 1 ns): the push says the blob is missing, and the
					// device uploads it again, as devices do.
					if i%2 == 0 && round == 3 {
						res, err := e.tryPush(u, "data.Note", "n", note(h), false)
						if err != nil {
							errs <- err
							return
						}
						if len(res.MissingBlobs) > 0 {
							up := &blobclient.Upload{Hash: h, Size: int64(len(data))}
							if err := e.client(u).Send(ctx, up, bytes.NewReader(data), nil); err != nil {
								errs <- fmt.Errorf("%s: %w", u, err)
							}
						}
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := e.plug.Collect(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		e.advance(time.Second)
		if _, err := e.plug.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		for i, u := range users {
			resp, got := e.get(t, u, h, nil)
			referred := i%2 == 0
			if referred && (resp.StatusCode != 200 || !bytes.Equal(got, data)) {
				t.Errorf("%s refers to the blob: %d", u, resp.StatusCode)
			}
			if !referred && resp.StatusCode != 404 {
				t.Errorf("%s let it go but reads it: %d", u, resp.StatusCode)
			}
		}
		if !e.stored(h) || countRows(t, db, "ferry_blobs") != 1 {
			t.Fatal("the store and the database disagree")
		}
		if p := e.partials(t); len(p) != 0 {
			t.Fatalf("partial uploads left: %v", p)
		}
	})
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]blobs.Config{
		"no models":         {Dir: dir},
		"no dir":            {Models: []string{"data.Note"}},
		"store but no dir":  {Models: []string{"data.Note"}, Store: &blobs.FileStore{}},
		"negative quota":    {Models: []string{"data.Note"}, Dir: dir, MaxBytesPerUser: -1},
		"negative grace":    {Models: []string{"data.Note"}, Dir: dir, GracePeriod: -time.Second},
		"negative ref caps": {Models: []string{"data.Note"}, Dir: dir, MaxRefsPerRecord: -1},
	} {
		if _, err := blobs.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "blobs: Config.") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A model that is not registered fails the App's start, naming it.
	db := synctest.OpenSQLite(t)
	app, err := framework.New(framework.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(blobs.MustNew(blobs.Config{Models: []string{"data.Nope"}, Dir: dir}))
	if err := app.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "data.Nope") {
		t.Fatalf("start with an unknown model: %v", err)
	}
}

// A device's background uploader sends what it captured offline once the
// server answers, resuming where the server stands.
func TestDeviceRun(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		f := &faults{r: rand.New(rand.NewPCG(1, 2)), on: true} // a bad network first
		c := e.client("alice")
		c.HTTP, c.ChunkSize = &http.Client{Transport: f}, 32<<10
		dev, err := blobclient.OpenDevice(c, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(70, 200_000)
		ref, err := dev.PutBlob(context.Background(), bytes.NewReader(data), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var failures atomic.Int64
		go func() { done <- dev.Run(ctx, 50*time.Millisecond, func(error) { failures.Add(1) }) }()
		// Wait (a condition, not a duration) until the queue is empty.
		for deadline := time.Now().Add(30 * time.Second); ; {
			p, err := dev.Pending()
			if err != nil {
				t.Fatal(err)
			}
			if len(p) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still pending after 30 s: %+v (%d failures)", p, failures.Load())
			}
			if failures.Load() > 3 {
				f.set(false) // the network comes back
			}
			dev.Kick()
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
		if resp, got := e.get(t, "alice", ref.Hash(), nil); resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("after Run: %d", resp.StatusCode)
		}
	})
}
