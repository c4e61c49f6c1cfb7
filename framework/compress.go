package framework

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/zstd"
)

// CompressionOptions configures [Compression]. The zero value is useful.
type CompressionOptions struct {
	// MinSize is the smallest answer compressed (default 1024 bytes);
	// smaller ones gain too little to pay for it.
	MinSize int
	// MaxEncodedBytes caps a compressed request body as received
	// (default 10 MiB, Config.MaxBodyBytes' default). The decompressed
	// body is bounded by the route's own limit (Config.MaxBodyBytes), so
	// a small body that inflates past it is refused with too_large
	// before it is inflated whole.
	MaxEncodedBytes int64
}

// requestEncodings are the Content-Encodings [Compression] accepts,
// advertised in every answer's Accept-Encoding header (RFC 7694).
const requestEncodings = "gzip, zstd"

// zstdWindow bounds the memory one zstd request body's decoder may take:
// a frame asking for a larger window is refused.
const zstdWindow = 8 << 20

var (
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
	zstdReaders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdWindow), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			panic(err) // constant options
		}
		return d
	}}
)

// Compression returns gin middleware for the sync routes that saves
// bandwidth both ways: answers are compressed with zstd or gzip when the
// request's Accept-Encoding allows it (through
// github.com/klauspost/compress/gzhttp, preferring zstd), and request
// bodies sent with Content-Encoding gzip or zstd are decompressed before
// the handlers read them. Every answer carries Accept-Encoding: gzip,
// zstd (RFC 7694), which tells clients that compressed bodies are
// welcome. Another Content-Encoding is 415 unsupported_media_type; a
// body that is not what its encoding says is 400 invalid. Live streams
// (routes ending in /stream, requests accepting text/event-stream) are
// never compressed: a hint must not wait in a compressor's buffer. Use it
// on the group the App is mounted on:
//
//	mw, err := framework.Compression(framework.CompressionOptions{})
//	app.Mount(router.Group("/sync", mw))
func Compression(opts CompressionOptions) (gin.HandlerFunc, error) {
	if opts.MinSize < 0 || opts.MaxEncodedBytes < 0 {
		return nil, errors.New("framework: CompressionOptions: MinSize and MaxEncodedBytes must not be negative")
	}
	if opts.MinSize == 0 {
		opts.MinSize = 1024
	}
	if opts.MaxEncodedBytes == 0 {
		opts.MaxEncodedBytes = 10 << 20
	}
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(opts.MinSize), gzhttp.EnableZstd(true), gzhttp.PreferZstd(true),
		gzhttp.ContentTypeFilter(compressible), gzhttp.KeepAcceptRanges())
	if err != nil {
		return nil, fmt.Errorf("framework: Compression: %w", err)
	}
	return func(c *gin.Context) {
		c.Header("Accept-Encoding", requestEncodings)
		body, err := decodeRequestBody(c, opts.MaxEncodedBytes)
		if err != nil {
			WriteError(c, err)
			return
		}
		if body != nil {
			// The pooled decoder goes back once the handlers are done,
			// whether they read the body whole or not.
			defer body.Close()
		}
		// Streams flush the connection's own writer (package sse), past
		// any compressor: they must not go through one.
		if strings.HasSuffix(c.Request.URL.Path, "/stream") || strings.Contains(c.GetHeader("Accept"), "text/event-stream") {
			c.Next()
			return
		}
		orig := c.Writer
		wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cw := &compressWriter{ResponseWriter: orig, w: w}
			c.Writer = cw
			c.Next()
			if cw.status != 0 {
				// A status set with no body after it (tus's 201 and 204)
				// goes out now; gin would answer 200 for it.
				cw.WriteHeaderNow()
			}
		})).ServeHTTP(orig, c.Request)
		c.Writer = orig
	}, nil
}

// decodeRequestBody replaces a compressed request body by its
// decompressed stream; the route's own body limit then applies to what
// comes out.
func decodeRequestBody(c *gin.Context, maxEncoded int64) (io.Closer, error) {
	r := c.Request
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc == "" || enc == "identity" || r.Body == nil || r.Body == http.NoBody {
		r.Header.Del("Content-Encoding")
		return nil, nil
	}
	if r.ContentLength > maxEncoded {
		return nil, NewError(CodeTooLarge, "the compressed body is larger than %d bytes", maxEncoded)
	}
	raw := http.MaxBytesReader(c.Writer, r.Body, maxEncoded)
	var body *decodedBody
	switch enc {
	case "gzip", "x-gzip":
		zr := gzipReaders.Get().(*gzip.Reader)
		if err := zr.Reset(raw); err != nil {
			gzipReaders.Put(zr)
			if tooLarge(err) {
				return nil, NewError(CodeTooLarge, "the compressed body is larger than %d bytes", maxEncoded)
			}
			return nil, NewError(CodeInvalid, "the body is not valid gzip")
		}
		body = &decodedBody{Reader: zr, raw: raw, done: func() { gzipReaders.Put(zr) }}
	case "zstd":
		zr := zstdReaders.Get().(*zstd.Decoder)
		if err := zr.Reset(raw); err != nil {
			zstdReaders.Put(zr)
			return nil, NewError(CodeInvalid, "the body is not valid zstd")
		}
		body = &decodedBody{Reader: zr, raw: raw, done: func() {
			_ = zr.Reset(nil) // drop the request's reader before pooling
			zstdReaders.Put(zr)
		}}
	default:
		return nil, NewError(CodeUnsupportedMedia, "Content-Encoding %q is not supported: send gzip, zstd or none", enc)
	}
	r.Header.Del("Content-Encoding")
	r.Header.Del("Content-Length")
	r.ContentLength = -1 // the decompressed size is unknown
	r.Body = body
	return body, nil
}

// decodedBody is a decompressed request body. Read errors from the
// compressed stream keep their cause, so that a body over the encoded
// limit is still reported as too large.
type decodedBody struct {
	io.Reader
	raw  io.ReadCloser
	done func()
	once sync.Once
}

func (b *decodedBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err != nil && err != io.EOF && !tooLarge(err) {
		err = fmt.Errorf("decompress the body: %w", err)
	}
	return n, err
}

func (b *decodedBody) Close() error {
	b.once.Do(b.done)
	return b.raw.Close()
}

// tooLarge reports whether err is a body reader's limit.
func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// compressWriter routes a gin handler's writes through gzhttp's
// compressing writer while keeping gin's bookkeeping (status, size,
// written) truthful for the middleware around it.
type compressWriter struct {
	gin.ResponseWriter
	w      http.ResponseWriter
	status int
	wrote  bool
}

var _ gin.ResponseWriter = (*compressWriter)(nil)

func (cw *compressWriter) Header() http.Header { return cw.w.Header() }

func (cw *compressWriter) WriteHeader(code int) {
	if !cw.wrote {
		cw.status = code
	}
}

func (cw *compressWriter) WriteHeaderNow() {
	if !cw.wrote {
		cw.wrote = true
		cw.w.WriteHeader(cw.Status())
	}
}

func (cw *compressWriter) Write(b []byte) (int, error) {
	cw.WriteHeaderNow()
	return cw.w.Write(b)
}

func (cw *compressWriter) WriteString(s string) (int, error) { return cw.Write([]byte(s)) }

func (cw *compressWriter) Status() int {
	if cw.status != 0 {
		return cw.status
	}
	return cw.ResponseWriter.Status()
}

func (cw *compressWriter) Written() bool { return cw.wrote || cw.ResponseWriter.Written() }

func (cw *compressWriter) Flush() {
	cw.WriteHeaderNow()
	if f, ok := cw.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (cw *compressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("framework: a compressed answer cannot be hijacked")
}

func (cw *compressWriter) Unwrap() http.ResponseWriter { return cw.w }

// compressible says which answers are worth compressing: not streams, not
// media and archives (gzhttp's default list), not opaque bytes (blobs of
// unknown type), which plugins serving media send with Range support
// (KeepAcceptRanges keeps their Accept-Ranges).
func compressible(contentType string) bool {
	ct := strings.ToLower(contentType)
	return gzhttp.DefaultContentTypeFilter(ct) && !strings.Contains(ct, "text/event-stream") &&
		!strings.HasPrefix(ct, "application/octet-stream") && !strings.HasPrefix(ct, "image/")
}
