package blobclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Ref is a record's reference to a blob, as the record's data holds it
// (the blobs plugin's convention): put it in a record with the framework
// client's Put, e.g. {"photo": ref}.
type Ref struct {
	Blob string `json:"$blob"` // "sha256:<hex>"
	Size int64  `json:"size"`
	Type string `json:"type,omitempty"`
}

// Hash is the reference's hex digest.
func (r Ref) Hash() string { return strings.TrimPrefix(r.Blob, "sha256:") }

// Device keeps one device's blobs and upload queue on its disk, so that
// attaching a file works offline and its upload resumes after a cut
// connection or a restart:
//
//	dir/blobs/<hash>       the bytes, captured here or downloaded
//	dir/queue/<hash>.json  an upload waiting or under way ([Upload]: its
//	                       URL and the offset the server confirmed)
//	dir/fetch/<hash>       a download under way
//
// The record that refers to a blob usually reaches the server before the
// blob does (records are small, pushes come first): the push's result
// lists the blob in missing_blobs, and until the upload finishes the
// user's other devices hold a reference whose blob the server answers
// 404 for; they fetch it later ([Device.Open] fails with ErrNotFound
// meanwhile). One Device, or one process, per dir: PutBlob, Open and
// Pending may be called while Run uploads, but two UploadAll at once
// would send the same bytes twice.
type Device struct {
	Client *Client
	dir    string

	kickOnce sync.Once
	kick     chan struct{}
}

// OpenDevice returns the device keeping its blobs in dir.
func OpenDevice(c *Client, dir string) (*Device, error) {
	for _, sub := range []string{"blobs", "queue", "fetch"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("blobclient: %w", err)
		}
	}
	return &Device{Client: c, dir: dir}, nil
}

func (d *Device) blobPath(hash string) string  { return filepath.Join(d.dir, "blobs", hash) }
func (d *Device) queuePath(hash string) string { return filepath.Join(d.dir, "queue", hash+".json") }

// PutBlob keeps r's bytes on the device and queues their upload; it
// works offline. The returned reference goes into a record.
func (d *Device) PutBlob(ctx context.Context, r io.Reader, contentType string) (Ref, error) {
	tmp, err := os.CreateTemp(filepath.Join(d.dir, "blobs"), ".put-*")
	if err != nil {
		return Ref{}, fmt.Errorf("blobclient: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Ref{}, fmt.Errorf("blobclient: keep blob: %w", err)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), d.blobPath(hash)); err != nil {
		return Ref{}, fmt.Errorf("blobclient: keep blob: %w", err)
	}
	ref := Ref{Blob: "sha256:" + hash, Size: n, Type: contentType}
	if _, err := os.Stat(d.queuePath(hash)); errors.Is(err, os.ErrNotExist) {
		if err := d.save(&Upload{Hash: hash, Size: n, Type: contentType}); err != nil {
			return Ref{}, err
		}
	}
	return ref, nil
}

// save writes an upload's state, whole or not at all.
func (d *Device) save(u *Upload) error {
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	tmp := d.queuePath(u.Hash) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("blobclient: save upload state: %w", err)
	}
	if err := os.Rename(tmp, d.queuePath(u.Hash)); err != nil {
		return fmt.Errorf("blobclient: save upload state: %w", err)
	}
	return nil
}

// Pending returns the queued uploads, by hash.
func (d *Device) Pending() ([]Upload, error) {
	names, err := filepath.Glob(filepath.Join(d.dir, "queue", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("blobclient: %w", err)
	}
	sort.Strings(names)
	var out []Upload
	for _, name := range names {
		b, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // uploaded (and dequeued) since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("blobclient: %w", err)
		}
		var u Upload
		if err := json.Unmarshal(b, &u); err != nil {
			return nil, fmt.Errorf("blobclient: upload state %s: %w", filepath.Base(name), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// Want queues the upload of blobs a push answered missing (by name,
// "sha256:<hex>") that the device holds; the others are not its to send.
func (d *Device) Want(names ...string) error {
	for _, name := range names {
		hash := strings.TrimPrefix(name, "sha256:")
		st, err := os.Stat(d.blobPath(hash))
		if err != nil || len(hash) != 64 {
			continue
		}
		if _, err := os.Stat(d.queuePath(hash)); errors.Is(err, os.ErrNotExist) {
			if err := d.save(&Upload{Hash: hash, Size: st.Size()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// UploadAll sends the queued uploads, oldest hash first, saving each
// one's state after every chunk, and drops each from the queue when the
// server has it all. It stops at the first failure (the connection is
// likely down): call it again later, it resumes.
func (d *Device) UploadAll(ctx context.Context) error {
	pending, err := d.Pending()
	if err != nil {
		return err
	}
	for i := range pending {
		u := &pending[i]
		if err := d.upload(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// Run uploads the queue in the background until ctx ends: at once, then
// whenever [Device.Kick] is called (after PutBlob, say) or every interval
// (default a minute), and after a failure again with a backoff doubling
// from a second to the interval. Errors go to onError, if set; Run
// returns ctx's error.
func (d *Device) Run(ctx context.Context, interval time.Duration, onError func(error)) error {
	if interval <= 0 {
		interval = time.Minute
	}
	d.kickOnce.Do(func() { d.kick = make(chan struct{}, 1) })
	wait := time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-d.kick:
				t.Stop()
			case <-t.C:
			}
		}
		if err := d.UploadAll(ctx); err != nil && ctx.Err() == nil {
			if onError != nil {
				onError(err)
			}
			wait = min(max(2*wait, time.Second), interval)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait = interval
	}
}

// Kick makes a running [Device.Run] upload now.
func (d *Device) Kick() {
	d.kickOnce.Do(func() { d.kick = make(chan struct{}, 1) })
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Device) upload(ctx context.Context, u *Upload) error {
	f, err := os.Open(d.blobPath(u.Hash))
	if err != nil {
		return fmt.Errorf("blobclient: queued blob %s: %w", u.Hash, err)
	}
	defer f.Close()
	var saveErr error
	err = d.Client.Send(ctx, u, f, func(u *Upload) {
		if err := d.save(u); err != nil && saveErr == nil {
			saveErr = err
		}
	})
	if err != nil {
		return err
	}
	if saveErr != nil {
		return saveErr
	}
	if err := os.Remove(d.queuePath(u.Hash)); err != nil {
		return fmt.Errorf("blobclient: %w", err)
	}
	return nil
}

// Open returns the blob's bytes: from the device if it has them, else
// downloaded (resuming a cut download) and kept. A blob the server does
// not hold yet (its upload has not finished) is ErrNotFound.
func (d *Device) Open(ctx context.Context, ref Ref) (*os.File, error) {
	hash := ref.Hash()
	if len(hash) != 64 || strings.ContainsAny(hash, `/\.`) {
		return nil, fmt.Errorf("blobclient: %q is not a blob name", ref.Blob)
	}
	if f, err := os.Open(d.blobPath(hash)); err == nil {
		return f, nil
	}
	part := filepath.Join(d.dir, "fetch", hash)
	if err := d.Client.Fetch(ctx, hash, part); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == 404 {
			os.Remove(part)
		}
		return nil, err
	}
	if err := os.Rename(part, d.blobPath(hash)); err != nil {
		return nil, fmt.Errorf("blobclient: %w", err)
	}
	return os.Open(d.blobPath(hash))
}
