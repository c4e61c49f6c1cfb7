package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
)

// Retry bounds the retries of one request after a network error, a 429 or
// a 5xx answer. Delays grow exponentially from BaseDelay up to MaxDelay,
// with full jitter (each wait is random between zero and the bound), and a
// Retry-After header can only lengthen a wait. The zero value is useful.
type Retry struct {
	// MaxAttempts is the number of tries per request, the first included
	// (default 5; 1 disables retries).
	MaxAttempts int
	// BaseDelay bounds the wait before the second try (default 250ms).
	BaseDelay time.Duration
	// MaxDelay caps any wait (default 15s).
	MaxDelay time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 5
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 250 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 15 * time.Second
	}
	if r.MaxDelay < r.BaseDelay {
		r.MaxDelay = r.BaseDelay
	}
	return r
}

// delay returns the wait after the given failed try (1-based).
func (r Retry) delay(try int, retryAfter time.Duration) time.Duration {
	bound := r.BaseDelay
	for i := 1; i < try && bound < r.MaxDelay; i++ {
		bound *= 2
	}
	bound = min(bound, r.MaxDelay)
	d := time.Duration(rand.Int64N(int64(bound) + 1))
	if retryAfter > d {
		d = min(retryAfter, r.MaxDelay)
	}
	return d
}

// maxResponseBytes caps how much of an answer the client reads: a pull
// page of 5000 large records still fits.
const maxResponseBytes = 256 << 20

// attemptError is one failed try, with what the retry loop needs to know.
type attemptError struct {
	err        error
	retryable  bool
	retryAfter time.Duration
}

// do sends one protocol request, retrying as c.retry allows, and decodes
// a 2xx JSON answer into out. body is nil for GET.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	for try := 1; ; try++ {
		ae := c.once(ctx, method, path, query, body, out)
		if ae == nil {
			return nil
		}
		if !ae.retryable || try >= c.retry.MaxAttempts {
			if ae.retryable {
				return fmt.Errorf("client: %s %s failed %d times: %w", method, path, try, ae.err)
			}
			return ae.err
		}
		t := time.NewTimer(c.retry.delay(try, ae.retryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("client: %s %s: %w (last error: %w)", method, path, ctx.Err(), ae.err)
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, query url.Values, body []byte, out any) *attemptError {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	var encoding string
	if body != nil {
		var sent []byte
		sent, encoding = c.encodeBody(body)
		rd = bytes.NewReader(sent)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &attemptError{err: fmt.Errorf("client: build %s %s: %w", method, path, err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	token, err := c.token(ctx)
	if err != nil {
		return &attemptError{err: fmt.Errorf("client: get token: %w", err)}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A cancelled or expired context is the caller's decision, not a
		// network failure.
		return &attemptError{err: fmt.Errorf("client: %s %s: %w", method, path, err), retryable: ctx.Err() == nil}
	}
	defer resp.Body.Close()
	c.noteEncodings(resp.Header, resp.StatusCode, encoding)
	if resp.StatusCode == http.StatusUnsupportedMediaType && encoding != "" {
		// The server (or a proxy) does not take compressed bodies after
		// all: the next try goes uncompressed.
		return &attemptError{err: fmt.Errorf("client: %s %s: compressed body refused", method, path), retryable: true}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return &attemptError{err: fmt.Errorf("client: %s %s: read answer: %w", method, path, err), retryable: ctx.Err() == nil}
	}
	if len(raw) > maxResponseBytes {
		return &attemptError{err: fmt.Errorf("client: %s %s: answer larger than %d bytes", method, path, maxResponseBytes)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		pe := decodeError(resp.StatusCode, raw)
		pe.Method, pe.Path = method, path
		return &attemptError{err: pe, retryable: pe.Temporary(), retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &attemptError{err: fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)}
		}
	}
	return nil
}

// decodeError reads the protocol's error shape from an answer.
func decodeError(status int, raw []byte) *Error {
	var body wire.ErrorBody
	pe := &Error{StatusCode: status, Code: wire.CodeForStatus(status), Message: http.StatusText(status)}
	if pe.Message == "" {
		pe.Message = fmt.Sprintf("unexpected HTTP status %d", status)
	}
	if err := json.Unmarshal(raw, &body); err == nil && body.Error.Code != "" {
		pe.Code, pe.Details = body.Error.Code, body.Error.Details
		if body.Error.Message != "" {
			pe.Message = body.Error.Message
		}
	}
	return pe
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// isTooLarge reports whether err is the server refusing a body as too
// large.
func isTooLarge(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && (pe.Code == CodeTooLarge || pe.StatusCode == http.StatusRequestEntityTooLarge)
}
