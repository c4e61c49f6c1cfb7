package framework_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/sse"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/zstd"
	"github.com/uptrace/bun"
)

// serveCompressed serves app at /sync behind framework.Compression.
func serveCompressed(t *testing.T, app *framework.App, opts framework.CompressionOptions) string {
	t.Helper()
	mw, err := framework.Compression(opts)
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	framework.UseProtocolErrors(engine)
	app.Mount(engine.Group("/sync", mw))
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return srv.URL
}

// limitedEngine is an App on SQLite with test.Item, bodies limited to
// maxBody bytes decoded, mounted at /sync behind Compression with
// compressed bodies limited to maxEncoded bytes.
func limitedEngine(tb testing.TB, maxBody, maxEncoded int64) *gin.Engine {
	tb.Helper()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(tb), Schemas: testSchemas, MaxBodyBytes: maxBody})
	if err != nil {
		tb.Fatal(err)
	}
	app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
	if err := app.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	app.SetAuthenticator(bearerUser)
	mw, err := framework.Compression(framework.CompressionOptions{MaxEncodedBytes: maxEncoded})
	if err != nil {
		tb.Fatal(err)
	}
	engine := gin.New()
	framework.UseProtocolErrors(engine)
	app.Mount(engine.Group("/sync", mw))
	return engine
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

// rawDo sends a request without the transport's own gzip handling and
// returns status, headers and the body as received.
func rawDo(t *testing.T, method, url string, body []byte, headers map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer user:ann")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

func pushBody(n int, at time.Time) []byte {
	var b strings.Builder
	b.WriteString(`{"device_id":"d1","changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"op_id":"%d","model":"test.Item","uid":"u%d","modify_at":%q,"data":{"n":%d,"s":"some text that repeats in every record"}}`,
			i, i, at.Format(time.RFC3339Nano), i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func decodeAnswer(t *testing.T, h http.Header, raw []byte) []byte {
	t.Helper()
	switch h.Get("Content-Encoding") {
	case "":
		return raw
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case "zstd":
		zr, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		out, err := zr.DecodeAll(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("unexpected Content-Encoding %q", h.Get("Content-Encoding"))
	return nil
}

// TestCompression: with framework.Compression on the mount, pushes sent
// gzip or zstd are applied like plain ones, and push answers and pull
// pages come back compressed as the client asked, on both stores.
func TestCompression(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		app := newTestApp(t, db)
		app.SetAuthenticator(bearerUser)
		base := serveCompressed(t, app, framework.CompressionOptions{})
		at := time.Now().UTC().Add(-time.Minute)
		plain := pushBody(200, at)

		for _, c := range []struct {
			name, enc string
			body      []byte
		}{{"identity", "", plain}, {"gzip", "gzip", gzipped(t, plain)}, {"zstd", "zstd", zstded(t, plain)}} {
			t.Run("push "+c.name, func(t *testing.T) {
				status, h, raw := rawDo(t, "POST", base+"/sync/push", c.body, map[string]string{"Content-Encoding": c.enc, "Accept-Encoding": c.enc})
				if status != 200 {
					t.Fatalf("%d %s", status, raw)
				}
				if h.Get("Content-Encoding") != c.enc {
					t.Errorf("answer Content-Encoding %q, want %q", h.Get("Content-Encoding"), c.enc)
				}
				if got := h.Get("Accept-Encoding"); got != "gzip, zstd" {
					t.Errorf("Accept-Encoding %q: the answer does not advertise compressed requests", got)
				}
				var out wire.PushResponse
				if err := json.Unmarshal(decodeAnswer(t, h, raw), &out); err != nil {
					t.Fatal(err)
				}
				if len(out.Results) != 200 {
					t.Fatalf("%d results", len(out.Results))
				}
				for _, r := range out.Results {
					if r.Status != framework.StatusApplied {
						t.Fatalf("%s: %s %v", r.UID, r.Status, r.Errors)
					}
				}
			})
		}

		sizes := map[string]int{}
		var pages [][]byte
		for _, enc := range []string{"", "gzip", "zstd", "zstd;q=0, gzip"} {
			status, h, raw := rawDo(t, "GET", base+"/sync/pull?limit=1000", nil, map[string]string{"Accept-Encoding": enc})
			if status != 200 {
				t.Fatalf("pull %q: %d %s", enc, status, raw)
			}
			want := strings.TrimSuffix(strings.Split(enc, ", ")[len(strings.Split(enc, ", "))-1], ";q=0")
			if got := h.Get("Content-Encoding"); got != want {
				t.Errorf("pull with Accept-Encoding %q: Content-Encoding %q, want %q", enc, got, want)
			}
			if enc != "" && !strings.Contains(h.Get("Vary"), "Accept-Encoding") {
				t.Errorf("pull %q: Vary %q", enc, h.Get("Vary"))
			}
			sizes[enc] = len(raw)
			pages = append(pages, decodeAnswer(t, h, raw))
		}
		for i := 1; i < len(pages); i++ {
			if !bytes.Equal(pages[0], pages[i]) {
				t.Fatalf("a compressed page decodes to other bytes than the plain one")
			}
		}
		if sizes["gzip"]*3 > sizes[""] || sizes["zstd"]*3 > sizes[""] {
			t.Errorf("a 200-record page compressed poorly: %v", sizes)
		}
		var page framework.PullResponse
		if err := json.Unmarshal(pages[0], &page); err != nil || len(page.Changes) != 200 {
			t.Fatalf("pull: %v, %d changes (3 pushes of the same 200 records, applied once)", err, len(page.Changes))
		}

		// A small answer is not worth compressing.
		status, h, _ := rawDo(t, "GET", base+"/sync/pull?limit=1&cursor="+page.Cursor, nil, map[string]string{"Accept-Encoding": "gzip"})
		if status != 200 || h.Get("Content-Encoding") != "" {
			t.Errorf("an empty page: %d, Content-Encoding %q", status, h.Get("Content-Encoding"))
		}
	})
}

// TestCompressedBodyLimits: the body limit counts decompressed bytes (a
// zip bomb is refused before it is inflated whole), bad encodings and
// bad compressed data are refused in the error shape.
func TestCompressedBodyLimits(t *testing.T) {
	srv := httptest.NewServer(limitedEngine(t, 1<<20, 64<<10))
	t.Cleanup(srv.Close)
	base := srv.URL

	// 64 MiB of spaces inside a JSON string: about 64 KiB of gzip, 2 KiB of zstd.
	bomb := append(append([]byte(`{"device_id":"d","changes":[{"model":"test.Item","uid":"x","modify_at":"2026-11-25T10:00:00Z","data":{"n":1,"s":"`),
		bytes.Repeat([]byte(" "), 64<<20)...), `"}}]}`...)
	gz, zs := gzipped(t, bomb), zstded(t, bomb)
	if len(gz) > 64<<10 {
		t.Fatalf("the gzip bomb is %d bytes: over the encoded limit, it would not test the decoded one", len(gz))
	}
	var garbageTail bytes.Buffer
	garbageTail.Write(gzipped(t, pushBody(1, time.Now().UTC()))[:30])
	garbageTail.WriteString("not gzip at all")

	for _, c := range []struct {
		name   string
		enc    string
		body   []byte
		status int
		code   string
	}{
		{"gzip bomb", "gzip", gz, 413, "too_large"},
		{"zstd bomb", "zstd", zs, 413, "too_large"},
		{"compressed body over the encoded limit", "gzip", gzipped(t, randomJSON(200<<10)), 413, "too_large"},
		{"not gzip", "gzip", []byte(`{"device_id":"d","changes":[]}`), 400, "invalid"},
		{"not zstd", "zstd", []byte(`{"device_id":"d","changes":[]}`), 400, "invalid"},
		{"gzip cut short", "gzip", garbageTail.Bytes(), 400, "invalid"},
		{"unknown encoding", "br", []byte("x"), 415, "unsupported_media_type"},
		{"two encodings", "gzip, gzip", gzipped(t, gzipped(t, pushBody(1, time.Now().UTC()))), 415, "unsupported_media_type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, raw := rawDo(t, "POST", base+"/sync/push", c.body, map[string]string{"Content-Encoding": c.enc})
			var eb struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(raw, &eb); err != nil {
				t.Fatalf("%d: not the error shape: %q", status, raw)
			}
			if status != c.status || eb.Error.Code != c.code {
				t.Fatalf("%d %q (%s), want %d %q", status, eb.Error.Code, eb.Error.Message, c.status, c.code)
			}
			if c.status == 415 && h.Get("Accept-Encoding") != "gzip, zstd" {
				t.Errorf("a 415 does not say what is accepted: %q", h.Get("Accept-Encoding"))
			}
		})
	}
	// Within both limits, it is applied.
	ok := gzipped(t, pushBody(3, time.Now().UTC()))
	if status, _, raw := rawDo(t, "POST", base+"/sync/push", ok, map[string]string{"Content-Encoding": "gzip"}); status != 200 {
		t.Fatalf("a small gzip push: %d %s", status, raw)
	}
}

// randomJSON is a JSON string of n bytes that does not compress.
func randomJSON(n int) []byte {
	b := make([]byte, 0, n+2)
	b = append(b, '"')
	x := uint32(2463534242)
	for len(b) < n+1 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = append(b, "abcdefghijklmnopqrstuvwxyz0123456789"[x%36])
	}
	return append(b, '"')
}

// TestCompressionLeavesStreamsAlone: a live stream behind Compression
// delivers its first event while the handler still runs, uncompressed,
// even to a client that accepts gzip and does not say it wants events.
func TestCompressionLeavesStreamsAlone(t *testing.T) {
	mw, err := framework.Compression(framework.CompressionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	release := make(chan struct{})
	engine.Group("/sync", mw).GET("/test/stream", func(c *gin.Context) {
		w := sse.NewWriter(c.Writer, time.Second)
		if err := w.Send(sse.Event(nil, "", "changes", `{"cursor":"c1"}`)); err != nil {
			t.Error(err)
		}
		<-release
	})
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	defer close(release)
	// A buffered stream would never show its first line: fail, not hang.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/sync/test/stream", nil)
	req.Header.Set("Accept-Encoding", "gzip, zstd")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if enc := resp.Header.Get("Content-Encoding"); enc != "" {
		t.Fatalf("the stream is %s-encoded", enc)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "event: changes") {
		t.Fatalf("first line %q, %v", line, err)
	}
}

// TestCompressionLeavesMediaAlone: media and opaque bytes (blobs) go out
// as they are, with their Accept-Ranges, while JSON of the same size is
// compressed.
func TestCompressionLeavesMediaAlone(t *testing.T) {
	mw, err := framework.Compression(framework.CompressionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	body := bytes.Repeat([]byte("a"), 64<<10)
	engine.Group("/sync", mw).GET("/test/:type", func(c *gin.Context) {
		c.Header("Accept-Ranges", "bytes")
		c.Data(http.StatusOK, strings.Replace(c.Param("type"), "_", "/", 1), body)
	})
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	for ct, want := range map[string]string{
		"image_png": "", "image_jpeg": "", "video_mp4": "", "application_octet-stream": "", "application_json": "zstd",
	} {
		_, h, _ := rawDo(t, "GET", srv.URL+"/sync/test/"+ct, nil, map[string]string{"Accept-Encoding": "gzip, zstd"})
		if got := h.Get("Content-Encoding"); got != want {
			t.Errorf("%s answered with Content-Encoding %q, want %q", ct, got, want)
		}
		if h.Get("Accept-Ranges") != "bytes" {
			t.Errorf("%s lost its Accept-Ranges", ct)
		}
	}
}

// FuzzCompressedBody: whatever bytes arrive under Content-Encoding gzip
// or zstd, the push answers 200, 400, 413 or 415 in the protocol's shape,
// never a 500 or a panic.
func FuzzCompressedBody(f *testing.F) {
	body := pushBody(2, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	f.Add(true, gz.Bytes())
	f.Add(false, enc.EncodeAll(body, nil))
	f.Add(true, gz.Bytes()[:20])
	f.Add(false, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x00})
	engine := limitedEngine(f, 64<<10, 64<<10)
	f.Fuzz(func(t *testing.T, gzipped bool, raw []byte) {
		encoding := "zstd"
		if gzipped {
			encoding = "gzip"
		}
		req := httptest.NewRequest("POST", "/sync/push", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", encoding)
		req.Header.Set("Authorization", "Bearer user:ann")
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413, 415:
		default:
			t.Fatalf("%s body of %d bytes: %d %s", encoding, len(raw), rec.Code, rec.Body.Bytes())
		}
		if rec.Code != 200 {
			var eb struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("%d not in the error shape: %s", rec.Code, rec.Body.Bytes())
			}
		}
	})
}
