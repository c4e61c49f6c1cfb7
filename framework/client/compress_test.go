package client_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
	"github.com/klauspost/compress/zstd"
)

// wireLog is a transport under the client's own that notes how pushes
// went and how pulls came, and can play a proxy refusing compressed
// bodies.
type wireLog struct {
	mu        sync.Mutex
	pushEnc   []string // each push's Content-Encoding
	pullEnc   []string // each pull answer's Content-Encoding
	accept    []string // each request's Accept-Encoding
	refuse415 bool
}

func (w *wireLog) RoundTrip(req *http.Request) (*http.Response, error) {
	w.mu.Lock()
	enc := req.Header.Get("Content-Encoding")
	w.accept = append(w.accept, req.Header.Get("Accept-Encoding"))
	if strings.HasSuffix(req.URL.Path, "/push") {
		w.pushEnc = append(w.pushEnc, enc)
	}
	refuse := w.refuse415 && enc != ""
	w.mu.Unlock()
	if refuse {
		return &http.Response{StatusCode: http.StatusUnsupportedMediaType, Header: http.Header{"Content-Type": {"text/plain"}},
			Body: io.NopCloser(strings.NewReader("no compressed bodies here")), Request: req}, nil
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/pull") {
		w.mu.Lock()
		w.pullEnc = append(w.pullEnc, resp.Header.Get("Content-Encoding"))
		w.mu.Unlock()
	}
	return resp, err
}

// TestCompressionOnTheWire: pull pages come compressed by default and
// decode to the same records; with CompressAll, pushes go
// zstd-compressed once the server has said it takes them, and go plain
// again after a 415; CompressNone asks for nothing.
func TestCompressionOnTheWire(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		acc := e.signUp("Zed")
		long := strings.Repeat("a fairly repetitive note title ", 6)
		for k, c := range []struct {
			name      string
			mode      client.Compression
			refuse415 bool
		}{{"answers", client.CompressAnswers, false}, {"all", client.CompressAll, false}, {"all behind a refusing proxy", client.CompressAll, true}, {"none", client.CompressNone, false}} {
			t.Run(c.name, func(t *testing.T) {
				log := &wireLog{refuse415: c.refuse415}
				d := e.device(acc, func(cfg *client.Config) {
					cfg.HTTPClient = &http.Client{Transport: log, Timeout: time.Minute}
					cfg.Compression = c.mode
					cfg.MaxBatch = 10
				})
				for i := range 40 {
					d.put(fmt.Sprintf("z%d-%d", k, i), note{Title: long})
				}
				res := d.sync()
				if res.Applied != 40 {
					t.Fatalf("applied %d of 40: %+v", res.Applied, res)
				}
				// A fresh device pulls everything, in pages worth compressing.
				fresh := e.device(acc, func(cfg *client.Config) {
					cfg.HTTPClient = &http.Client{Transport: log, Timeout: time.Minute}
					cfg.Compression = c.mode
				})
				if got := fresh.sync(); got.Pulled < 40 {
					t.Fatalf("pulled %d", got.Pulled)
				}
				recs, err := fresh.List(context.Background(), "data.Note")
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, r := range recs {
					if strings.Contains(string(r.Data), long) {
						n++
					}
				}
				if n < 40 {
					t.Fatalf("%d notes decoded intact", n)
				}
				log.mu.Lock()
				defer log.mu.Unlock()
				compressedPushes := 0
				for _, enc := range log.pushEnc {
					if enc == "zstd" {
						compressedPushes++
					}
				}
				lastPull := log.pullEnc[len(log.pullEnc)-1]
				switch c.mode {
				case client.CompressAnswers:
					if compressedPushes != 0 || lastPull != "zstd" {
						t.Errorf("pushes %q, pulls %q: want plain pushes and zstd pulls", log.pushEnc, log.pullEnc)
					}
				case client.CompressAll:
					if log.pushEnc[0] != "" {
						t.Errorf("the first push was %q before the server said it takes compressed bodies", log.pushEnc[0])
					}
					if c.refuse415 {
						// One compressed try, refused, retried plain; then plain.
						if compressedPushes != 1 || log.pushEnc[len(log.pushEnc)-1] != "" {
							t.Errorf("pushes %q: want one compressed try, then plain", log.pushEnc)
						}
					} else if compressedPushes != len(log.pushEnc)-1 {
						t.Errorf("pushes %q: want every push after the first compressed", log.pushEnc)
					}
				case client.CompressNone:
					for _, a := range log.accept {
						if a != "" {
							t.Fatalf("CompressNone sent Accept-Encoding %q", a)
						}
					}
					if lastPull != "" {
						t.Errorf("pull answered %q", lastPull)
					}
				}
			})
		}
	})
}

// plainAnswer is an answer's body as its Content-Encoding says, for
// transports under the client's own (which see what the wire carries).
func plainAnswer(t testing.TB, resp *http.Response, body []byte) []byte {
	t.Helper()
	var out []byte
	var err error
	switch resp.Header.Get("Content-Encoding") {
	case "":
		return body
	case "zstd":
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(nil); err == nil {
			out, err = zr.DecodeAll(body, nil)
			zr.Close()
		}
	case "gzip":
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			out, err = io.ReadAll(zr)
		}
	default:
		t.Errorf("answer in an unknown Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	if err != nil {
		t.Errorf("decode a %s answer: %v", resp.Header.Get("Content-Encoding"), err)
	}
	return out
}

// plainRequest is a request body as its Content-Encoding says, for
// transports under the client's own.
func plainRequest(req *http.Request, raw []byte) ([]byte, error) {
	if req.Header.Get("Content-Encoding") != "zstd" {
		return raw, nil
	}
	zr, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return zr.DecodeAll(raw, nil)
}
