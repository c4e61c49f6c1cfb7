// Package blobclient is the Go client of the blobs plugin: it asks
// whether the server holds a blob (HEAD /sync/blobs/{sha256}), uploads
// one with the tus protocol, resuming from the server's offset after a
// cut connection or a restart (the caller keeps the [Upload] state), and
// downloads one with Range, resuming where a cut download stopped.
//
// It speaks only the parts of tus 1.0 the plugin serves (creation,
// PATCH from an offset, HEAD for the offset); any tus client
// (tus-js-client, TUSKit, tus-android-client) works as well.
package blobclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/framework/wire"
)

// DefaultChunkSize is the bytes one PATCH carries unless
// Client.ChunkSize says otherwise. A cut costs only the bytes in flight
// (the server keeps what it got, and a resumed request waits for the cut
// one to store it), so chunks are large: each PATCH costs the server a
// few lookups (the blobs bench measured 32 MiB chunks upload about a
// fifth faster than 8 MiB ones).
const DefaultChunkSize = 32 << 20

// Client talks to one server's blob routes.
type Client struct {
	// URL is the sync mount point, e.g. https://example.com/sync.
	URL string
	// HTTP defaults to http.DefaultClient.
	HTTP *http.Client
	// Authorize sets the request's credentials (Authorization: Bearer …).
	Authorize func(*http.Request)
	// ChunkSize is the bytes per PATCH (default DefaultChunkSize).
	ChunkSize int64
}

// Error is an error answer of the server, in the protocol's shape.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("blobs: %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrNotFound is matched (errors.Is) by a 404 answer.
var ErrNotFound = &Error{Status: http.StatusNotFound, Code: "not_found"}

// Is matches errors of the same status and code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.Code == e.Code
}

// Upload is the resumable state of one upload: keep it (a device store
// does) to resume after a restart.
type Upload struct {
	Hash string // hex SHA-256
	Size int64
	Type string
	// Space, when set, uploads into that shared space (the caller must
	// write it): the space holds the blob, and every member may read it.
	Space string
	// URL is the upload's address once created; empty before.
	URL string
	// Offset is how many bytes the server had at the last answer.
	Offset int64
}

// Sum returns the hex SHA-256 and size of r's bytes.
func Sum(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, fmt.Errorf("blobclient: hash: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) chunk() int64 {
	if c.ChunkSize > 0 {
		return c.ChunkSize
	}
	return DefaultChunkSize
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Tus-Resumable", "1.0.0")
	if c.Authorize != nil {
		c.Authorize(req)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("blobclient: %s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, answerError(resp)
	}
	return resp, nil
}

// answerError reads an error answer.
func answerError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		// A HEAD answer has no body; a proxy's has another.
		e.Code, e.Message = wire.CodeForStatus(resp.StatusCode), strings.TrimSpace(string(b))
	}
	return e
}

func (c *Client) blobURL(hash string) string {
	return strings.TrimSuffix(c.URL, "/") + "/blobs/sha256:" + hash
}

// Has reports whether the server holds the blob for this user (HEAD).
func (c *Client) Has(ctx context.Context, hash string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.blobURL(hash), nil)
	if err != nil {
		return false, fmt.Errorf("blobclient: %w", err)
	}
	resp, err := c.do(req)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// Send uploads u's bytes, read from r at their offsets, from where the
// server stands: it creates the upload when u.URL is empty (a blob the
// user holds already is complete at once), else asks the server's offset
// (HEAD), then PATCHes chunk by chunk, keeping u.URL and u.Offset up to
// date so a caller that stores u after each chunk (progress is called
// then) can resume after a restart. A removed upload (404) is created
// anew.
func (c *Client) Send(ctx context.Context, u *Upload, r io.ReaderAt, progress func(*Upload)) error {
	if u.URL != "" {
		off, err := c.offset(ctx, u.URL)
		switch {
		case errors.Is(err, ErrNotFound):
			u.URL, u.Offset = "", 0
		case err != nil:
			return err
		default:
			u.Offset = off
		}
	}
	if u.URL == "" {
		if err := c.create(ctx, u); err != nil {
			return err
		}
		if progress != nil {
			progress(u)
		}
	}
	for conflicts := 0; u.Offset < u.Size; {
		n := min(c.chunk(), u.Size-u.Offset)
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u.URL, io.NewSectionReader(r, u.Offset, n))
		if err != nil {
			return fmt.Errorf("blobclient: %w", err)
		}
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
		resp, err := c.do(req)
		var re *Error
		if errors.As(err, &re) && (re.Status == http.StatusConflict || re.Status == http.StatusLocked) && conflicts < 3 {
			// The server stands elsewhere (a cut request it was still
			// finishing wrote more): ask where, and go on from there.
			conflicts++
			if u.Offset, err = c.offset(ctx, u.URL); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		resp.Body.Close()
		conflicts = 0
		off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
		if err != nil || off <= u.Offset || off > u.Size {
			return fmt.Errorf("blobclient: PATCH answered Upload-Offset %q at offset %d", resp.Header.Get("Upload-Offset"), u.Offset)
		}
		u.Offset = off
		if progress != nil {
			progress(u)
		}
	}
	return nil
}

func (c *Client) create(ctx context.Context, u *Upload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/blobs/uploads", nil)
	if err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	meta := "sha256 " + base64.StdEncoding.EncodeToString([]byte(u.Hash))
	if u.Type != "" {
		meta += ",type " + base64.StdEncoding.EncodeToString([]byte(u.Type))
	}
	if u.Space != "" {
		meta += ",space " + base64.StdEncoding.EncodeToString([]byte(u.Space))
	}
	req.Header.Set("Upload-Length", strconv.FormatInt(u.Size, 10))
	req.Header.Set("Upload-Metadata", meta)
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("blobclient: creation answered Location %q", resp.Header.Get("Location"))
	}
	u.URL, u.Offset = loc.String(), 0
	if off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64); err == nil && off >= 0 && off <= u.Size {
		u.Offset = off // the server holds the blob already: complete
	}
	return nil
}

func (c *Client) offset(ctx context.Context, loc string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, loc, nil)
	if err != nil {
		return 0, fmt.Errorf("blobclient: %w", err)
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("blobclient: HEAD answered Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	return off, nil
}

// Delete removes an unfinished upload.
func (c *Client) Delete(ctx context.Context, u *Upload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.URL, nil)
	if err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Fetch downloads the blob into path, resuming from the bytes a previous
// cut Fetch left there (Range, checked with If-Range on the hash), and
// checks the SHA-256 of the whole file once it is complete; a file that
// does not match is removed.
func (c *Client) Fetch(ctx context.Context, hash, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.blobURL(hash), nil)
	if err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		req.Header.Set("If-Range", `"sha256:`+hash+`"`)
	}
	resp, err := c.do(req)
	var re *Error
	if errors.As(err, &re) && re.Status == http.StatusRequestedRangeNotSatisfiable {
		return c.check(f, hash, path) // complete already
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("blobclient: %w", err)
		}
		have = 0
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		return fmt.Errorf("blobclient: download %s: %w", hash, err)
	}
	return c.check(f, hash, path)
}

func (c *Client) check(f *os.File, hash, path string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	got, _, err := Sum(f)
	if err != nil {
		return err
	}
	if got != hash {
		os.Remove(path)
		return fmt.Errorf("blobclient: downloaded bytes hash to %s, not %s; removed", got, hash)
	}
	return nil
}
