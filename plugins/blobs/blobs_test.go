package blobs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework/synctest"
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
	if err := db.NewRaw("SELECT COUNT(*) FROM " + table).Scan(context.Background(), &n); err != nil {
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
	cut  int64 // -1: cut already
	sent int64
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && r.Body != nil {
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		left := int64(-1)
		if c.cut >= off && c.cut < off+r.ContentLength {
			left, c.cut = c.cut-off, -1
		}
		r.Body = &cutBody{r: r.Body, left: left, t: c}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// cutBody fails after left bytes (never when left is negative).
type cutBody struct {
	r    io.ReadCloser
	left int64
	t    *cutTransport
}

var errCut = errors.New("connection cut")

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, errCut
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	b.t.sent += int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.r.Close() }

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
			// What was sent again is at most the cut chunk.
			if extra := tr.sent - size; extra > chunk {
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
