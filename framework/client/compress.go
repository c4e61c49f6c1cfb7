package client

import (
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/zstd"
)

// Compression chooses what travels compressed between the client and
// the server (see [Config.Compression]).
type Compression int

const (
	// CompressAll, the default, asks for zstd or gzip answers
	// (Accept-Encoding) and decompresses them, and sends request bodies
	// of at least 1 KiB zstd-compressed once an answer of the server has
	// said it takes them (Accept-Encoding naming zstd, RFC 7694); a 415
	// answer to a compressed body turns that off for the Client's life,
	// and the request is retried uncompressed. Servers that do not
	// compress (no [framework.Compression]) answer as before and never
	// receive a compressed body.
	CompressAll Compression = iota
	// CompressAnswers asks for compressed answers only.
	CompressAnswers
	// CompressNone asks for no compression either way.
	CompressNone
)

// minCompressedBody is the smallest request body CompressAll compresses.
const minCompressedBody = 1024

// withCompression wraps hc's transport so that answers are asked for and
// decompressed with zstd or gzip (klauspost/compress/gzhttp). hc itself
// is left alone: the caller's client may serve others.
func withCompression(hc *http.Client) *http.Client {
	out := *hc
	parent := out.Transport
	if parent == nil {
		parent = http.DefaultTransport
	}
	out.Transport = gzhttp.Transport(parent)
	return &out
}

// newBodyEncoder returns the zstd encoder of CompressAll's request
// bodies; EncodeAll is safe for concurrent use.
func newBodyEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		panic(err) // constant options
	}
	return enc
}

// encodeBody returns the body to send and its Content-Encoding ("" when
// sent as it is).
func (c *Client) encodeBody(body []byte) ([]byte, string) {
	if c.bodyEncoder == nil || len(body) < minCompressedBody || !c.serverTakesZstd.Load() || c.zstdRefused.Load() {
		return body, ""
	}
	return c.bodyEncoder.EncodeAll(body, make([]byte, 0, len(body)/4)), "zstd"
}

// noteEncodings remembers whether the server takes zstd request bodies,
// from an answer's Accept-Encoding. A 415 to a compressed body turns
// compression off for the Client's life: something on the way (a proxy)
// refuses it, whatever the server says.
func (c *Client) noteEncodings(h http.Header, status int, sent string) {
	if c.bodyEncoder == nil {
		return
	}
	if status == http.StatusUnsupportedMediaType && sent != "" {
		c.zstdRefused.Store(true)
		return
	}
	if ae := h.Get("Accept-Encoding"); ae != "" {
		c.serverTakesZstd.Store(strings.Contains(strings.ToLower(ae), "zstd"))
	}
}
