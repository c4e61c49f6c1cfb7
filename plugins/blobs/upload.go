package blobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/google/uuid"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"github.com/uptrace/bun"
	expslog "golang.org/x/exp/slog"
)

// Upload-Metadata keys. A client declares the blob's hash (hex, or
// "sha256:<hex>") and may declare its content type ("type", or
// tus-js-client's habit, "filetype"); the server adds the uploader.
const (
	metaHash     = "sha256"
	metaType     = "type"
	metaFiletype = "filetype"
	metaUser     = "ferry_user"
	// metaSpace names the shared space an upload is for (a writer's): the
	// space then holds the blob, and every member may read it.
	metaSpace = "space"
)

// holderOf is the scope that will hold an upload's blob: the caller, or
// the shared space the metadata names, which the caller must write.
func (p *Plugin) holderOf(ctx context.Context, pr framework.Principal, meta map[string]string) (string, error) {
	space := meta[metaSpace]
	if space == "" {
		return pr.UserID, nil
	}
	role, err := p.app.SpaceRole(ctx, pr, space)
	if err != nil {
		return "", err
	}
	if !role.CanWrite() {
		return "", tusError(http.StatusForbidden, framework.CodeForbidden, "you may not upload into this space")
	}
	return wire.SpaceOwner(space), nil
}

// statusHashMismatch answers an upload whose bytes are not the declared
// hash: tus's checksum extension uses 460 for the same failure.
const statusHashMismatch = 460

// dedupePrefix starts the pseudo upload id answered to a user who creates
// an upload of a blob they hold already: it is complete from the start.
const dedupePrefix = "sha256-"

func newFileUploads(dir string) (UploadStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blobs: uploads folder: %w", err)
	}
	return filestore.New(dir), nil
}

func newMemoryLocker() handler.Locker { return memorylocker.New() }

// patientLocker makes a request wait for an upload's lock instead of
// asking the holder to let go. The holder of a contested lock is nearly
// always a request whose client was cut and resumed: let it finish
// writing the bytes it got (its connection has failed or times out after
// networkTimeout), so the resumed request starts after them and nothing
// is sent twice; and tusd's interruption path reads the request's body
// field unsynchronized with the handler setting it (a data race).
type patientLocker struct{ handler.Locker }

func (l patientLocker) NewLock(id string) (handler.Lock, error) {
	lk, err := l.Locker.NewLock(id)
	if err != nil {
		return nil, err
	}
	return patientLock{inner: lk}, nil
}

type patientLock struct{ inner handler.Lock }

func (l patientLock) Lock(ctx context.Context, requestUnlock func()) error {
	return l.inner.Lock(ctx, func() {})
}

func (l patientLock) Unlock() error { return l.inner.Unlock() }

// networkTimeout bounds a PATCH's silence (no byte for this long ends
// it), and so how long a resumed request may wait for a dead one's lock
// (acquireLockTimeout).
const (
	networkTimeout     = 15 * time.Second
	acquireLockTimeout = 2 * networkTimeout
)

// hashStates keeps the running SHA-256 of uploads as their bytes arrive,
// so finishing one need not read it again. A state is good only while
// the upload is written from exactly where it stopped (after a restart,
// or a write that took fewer bytes than it read, the state is gone and
// finishing reads the upload back).
type hashStates struct {
	mu sync.Mutex
	m  map[string]*hashState
}

type hashState struct {
	h   hash.Hash
	off int64
}

// take removes and returns id's state if it stands at off (a new one at
// 0), else nil.
func (s *hashStates) take(id string, off int64) *hashState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[id]
	delete(s.m, id)
	switch {
	case st != nil && st.off == off:
		return st
	case off == 0:
		return &hashState{h: sha256.New()}
	}
	return nil
}

func (s *hashStates) put(id string, st *hashState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*hashState{}
	}
	s.m[id] = st
}

func (s *hashStates) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// hashingStore wraps the upload store so the bytes written are hashed on
// the way in.
type hashingStore struct {
	UploadStore
	states *hashStates
	pipes  *pipes
}

func (s hashingStore) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	u, err := s.UploadStore.NewUpload(ctx, info)
	if err != nil {
		return nil, err
	}
	return &hashingUpload{Upload: u, id: info.ID, states: s.states, pipes: s.pipes}, nil
}

func (s hashingStore) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	u, err := s.UploadStore.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return &hashingUpload{Upload: u, id: id, states: s.states, pipes: s.pipes}, nil
}

func (s hashingStore) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	if hu, ok := u.(*hashingUpload); ok {
		u = hu.Upload
	}
	return s.UploadStore.AsTerminatableUpload(u)
}

type hashingUpload struct {
	handler.Upload
	id     string
	states *hashStates
	pipes  *pipes
}

func (u *hashingUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	st := u.states.take(u.id, offset)
	if st == nil {
		return u.Upload.WriteChunk(ctx, offset, src)
	}
	body := &hashingBody{r: src, h: st.h, pipes: u.pipes}
	n, err := u.Upload.WriteChunk(ctx, offset, body)
	if body.n == n {
		st.off = offset + n
		u.states.put(u.id, st)
	}
	return n, err
}

// tusHandler builds the tusd handler serving uploads under base (the full
// path, e.g. /sync/blobs/uploads/).
func (p *Plugin) tusHandler(base string) (*handler.UnroutedHandler, error) {
	comp := handler.NewStoreComposer()
	hs := hashingStore{UploadStore: p.uploads, states: &p.hashes, pipes: p.pipes}
	comp.UseCore(hs)
	comp.UseTerminater(hs)
	comp.UseLocker(patientLocker{p.locker})
	return handler.NewUnroutedHandler(handler.Config{
		StoreComposer:             comp,
		BasePath:                  base,
		MaxSize:                   p.cfg.MaxUploadBytes,
		DisableDownload:           true, // blobs are read at /blobs/{sha256}, by hash
		DisableConcatenation:      true,
		Cors:                      &handler.CorsConfig{Disable: true}, // the application's own middleware decides
		PreUploadCreateCallback:   p.beforeCreate,
		PreFinishResponseCallback: p.finish,
		NetworkTimeout:            networkTimeout,
		AcquireLockTimeout:        acquireLockTimeout,
		// tusd logs every request; its failures reach the client and
		// our log through errorWriter instead.
		Logger: expslog.New(expslog.NewTextHandler(io.Discard, nil)),
	})
}

// tusError is an error answer tusd sends (and errorWriter rewrites into
// the protocol's shape): the code is the protocol's.
func tusError(status int, code, format string, args ...any) handler.Error {
	return handler.NewError(code, fmt.Sprintf(format, args...), status)
}

// declaredHash returns the hex hash an upload's metadata declares.
func declaredHash(meta map[string]string) (string, bool) {
	h := strings.TrimPrefix(meta[metaHash], HashPrefix)
	return h, validHex(h)
}

// declaredType returns the upload's content type, or
// application/octet-stream when it declares none or an unparsable one.
func declaredType(meta map[string]string) string {
	t := meta[metaType]
	if t == "" {
		t = meta[metaFiletype]
	}
	if _, _, err := mime.ParseMediaType(t); err != nil || len(t) > 255 {
		return "application/octet-stream"
	}
	return t
}

// beforeCreate admits a new upload: its metadata declares a hash, the
// user's quota and upload count have room, and the upload is recorded as
// the user's.
func (p *Plugin) beforeCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	var none handler.FileInfoChanges
	pr, ok := framework.PrincipalFrom(ev.Context)
	if !ok {
		return handler.HTTPResponse{}, none, tusError(http.StatusUnauthorized, framework.CodeUnauthenticated, "sign in to upload")
	}
	h, ok := declaredHash(ev.Upload.MetaData)
	if !ok {
		return handler.HTTPResponse{}, none, tusError(http.StatusBadRequest, framework.CodeInvalid,
			"Upload-Metadata must declare %s, the bytes' SHA-256 as 64 lowercase hex digits", metaHash)
	}
	if ev.Upload.SizeIsDeferred {
		return handler.HTTPResponse{}, none, tusError(http.StatusBadRequest, framework.CodeInvalid, "declare Upload-Length: a blob's size is known before it is uploaded")
	}
	holder, err := p.holderOf(ev.Context, pr, ev.Upload.MetaData)
	if err != nil {
		return handler.HTTPResponse{}, none, err
	}
	// Stored bytes count against the holder (a space has a quota of its
	// own, as its records do); unfinished uploads against the uploader.
	stored, _, _, err := usage(ev.Context, p.db, holder)
	if err != nil {
		return handler.HTTPResponse{}, none, err
	}
	_, reserved, n, err := usage(ev.Context, p.db, pr.UserID)
	if err != nil {
		return handler.HTTPResponse{}, none, err
	}
	if n >= int64(p.cfg.MaxUploadsPerUser) {
		return handler.HTTPResponse{}, none, tusError(http.StatusRequestEntityTooLarge, framework.CodeTooLarge,
			"at most %d unfinished uploads per user; finish or delete some", p.cfg.MaxUploadsPerUser)
	}
	if q := p.cfg.MaxBytesPerUser; q > 0 && stored+reserved+ev.Upload.Size > q {
		return handler.HTTPResponse{}, none, tusError(http.StatusRequestEntityTooLarge, framework.CodeQuotaExceeded,
			"this upload of %d bytes would exceed your blob quota of %d bytes (%d stored, %d in unfinished uploads)", ev.Upload.Size, q, stored, reserved)
	}
	u := upload{ID: strings.ReplaceAll(uuid.NewString(), "-", ""), User: pr.UserID, Hash: h, Size: ev.Upload.Size, Type: declaredType(ev.Upload.MetaData)}
	if err := insertUpload(ev.Context, p.db, u, p.unixNow()); err != nil {
		return handler.HTTPResponse{}, none, err
	}
	return handler.HTTPResponse{}, handler.FileInfoChanges{ID: u.ID, MetaData: handler.MetaData{
		metaHash: h, metaType: u.Type, metaUser: holder,
	}}, nil
}

// finish verifies a complete upload's hash and stores it as the blob, or
// refuses it and removes its bytes.
func (p *Plugin) finish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	ctx, info := ev.Context, ev.Upload
	want, _ := declaredHash(info.MetaData)
	user := info.MetaData[metaUser]
	got, err := p.sumOf(ctx, info)
	if err != nil {
		return handler.HTTPResponse{}, err
	}
	if got != want {
		p.discard(ctx, info.ID)
		return handler.HTTPResponse{}, tusError(statusHashMismatch, "hash_mismatch",
			"the bytes' SHA-256 is %s, not the declared %s; the upload is removed", got, want)
	}
	if err := p.keep(ctx, user, want, info); err != nil {
		if errors.As(err, new(handler.Error)) {
			p.discard(ctx, info.ID)
		}
		return handler.HTTPResponse{}, err
	}
	p.discard(ctx, info.ID)
	return handler.HTTPResponse{Header: handler.HTTPHeader{"Ferry-Blob": HashPrefix + want}}, nil
}

// sumOf returns the hex SHA-256 of a complete upload: from its running
// hash when that saw every byte, else by reading it back.
func (p *Plugin) sumOf(ctx context.Context, info handler.FileInfo) (string, error) {
	if st := p.hashes.take(info.ID, info.Size); st != nil {
		return hex.EncodeToString(st.h.Sum(nil)), nil
	}
	up, err := p.uploads.GetUpload(ctx, info.ID)
	if err != nil {
		return "", fmt.Errorf("blobs: reopen upload %s: %w", info.ID, err)
	}
	r, err := up.GetReader(ctx)
	if err != nil {
		return "", fmt.Errorf("blobs: read upload %s: %w", info.ID, err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("blobs: read upload %s: %w", info.ID, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// keep stores a verified upload as blob hash held by user, in one
// transaction that holds the blob's row (so a collection of the same blob
// waits or has finished), and checks the user's quota again (uploads may
// have finished side by side).
func (p *Plugin) keep(ctx context.Context, user, hash string, info handler.FileInfo) error {
	now := p.unixNow()
	return p.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ferry_blobs (hash, size, created_at) VALUES (?, ?, ?)
			ON CONFLICT (hash) DO UPDATE SET size = excluded.size`, hash, info.Size, now); err != nil {
			return fmt.Errorf("blobs: store %s: %w", hash, err)
		}
		var wasHeld bool
		if h, err := held(ctx, tx, user, hash); err != nil {
			return err
		} else if h != nil {
			wasHeld = true
		}
		if q := p.cfg.MaxBytesPerUser; q > 0 && !wasHeld {
			stored, reserved, _, err := usage(ctx, tx, user)
			if err != nil {
				return err
			}
			if stored+reserved > q { // reserved counts this upload already
				return tusError(http.StatusRequestEntityTooLarge, framework.CodeQuotaExceeded,
					"this blob of %d bytes would exceed your blob quota of %d bytes", info.Size, q)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ferry_blob_holdings (user_id, hash, refs, held, size, type, since)
			VALUES (?, ?, 0, true, ?, ?, ?)
			ON CONFLICT (user_id, hash) DO UPDATE SET held = true, size = excluded.size, type = excluded.type,
				since = CASE WHEN ferry_blob_holdings.refs = 0 THEN excluded.since ELSE ferry_blob_holdings.since END`,
			user, hash, info.Size, info.MetaData[metaType], now); err != nil {
			return fmt.Errorf("blobs: hold %s: %w", hash, err)
		}
		ok, err := p.store.Exists(ctx, hash)
		if err != nil || ok {
			return err // stored already: the upload's bytes are a duplicate
		}
		if a, isFS := p.store.(FileAdopter); isFS && info.Storage[filestore.StorageKeyPath] != "" {
			return a.Adopt(ctx, hash, info.Storage[filestore.StorageKeyPath])
		}
		up, err := p.uploads.GetUpload(ctx, info.ID)
		if err != nil {
			return fmt.Errorf("blobs: reopen upload %s: %w", info.ID, err)
		}
		r, err := up.GetReader(ctx)
		if err != nil {
			return fmt.Errorf("blobs: read upload %s: %w", info.ID, err)
		}
		defer r.Close()
		return p.store.Put(ctx, hash, r, info.Size)
	})
}

// discard removes a partial upload: its bytes, its row and its running
// hash. Failures are logged: the collector tries again later.
func (p *Plugin) discard(ctx context.Context, id string) {
	p.hashes.drop(id)
	if up, err := p.uploads.GetUpload(ctx, id); err == nil {
		if err := p.uploads.AsTerminatableUpload(up).Terminate(ctx); err != nil {
			p.log.Warn("blobs: remove upload", "id", id, "err", err)
		}
	} else if !errors.Is(err, handler.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		p.log.Warn("blobs: remove upload", "id", id, "err", err)
	}
	if err := deleteUpload(ctx, p.db, id); err != nil {
		p.log.Warn("blobs: remove upload", "id", id, "err", err)
	}
}

// dedupeUpload answers the creation of an upload of a blob the caller
// holds already at once: 201 with a pseudo upload that is complete.
func (p *Plugin) dedupeUpload(w http.ResponseWriter, r *http.Request, base string) bool {
	pr, ok := framework.PrincipalFrom(r.Context())
	if !ok {
		return false
	}
	meta := handler.ParseMetadataHeader(r.Header.Get("Upload-Metadata"))
	h, ok := declaredHash(meta)
	if !ok {
		return false
	}
	size, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
	if err != nil {
		return false
	}
	holder, err := p.holderOf(r.Context(), pr, meta)
	if err != nil {
		return false // the upload's creation answers it
	}
	hd, err := held(r.Context(), p.db, holder, h)
	if err != nil || hd == nil || hd.Size != size {
		return false // not the same bytes, or not this user's: upload them
	}
	w.Header().Set("Location", base+dedupePrefix+h)
	w.Header().Set("Upload-Offset", strconv.FormatInt(size, 10))
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.Header().Set("Ferry-Blob", HashPrefix+h)
	w.WriteHeader(http.StatusCreated)
	return true
}

// dedupedUpload answers HEAD and PATCH of a pseudo upload: complete, if
// the caller holds the blob.
func (p *Plugin) dedupedUpload(w http.ResponseWriter, r *http.Request, id string) error {
	pr, _ := framework.PrincipalFrom(r.Context())
	h := strings.TrimPrefix(id, dedupePrefix)
	var hd *holding
	if validHex(h) {
		scopes, err := p.app.ReadableScopes(r.Context(), pr)
		if err != nil {
			return err
		}
		if hd, err = heldIn(r.Context(), p.db, scopes, h); err != nil {
			return err
		}
	}
	if hd == nil {
		return framework.NewError(framework.CodeNotFound, "no such upload")
	}
	size := strconv.FormatInt(hd.Size, 10)
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.Header().Set("Upload-Offset", size)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Ferry-Blob", HashPrefix+h)
	switch r.Method {
	case http.MethodHead:
		w.Header().Set("Upload-Length", size)
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		// Nothing of the body is needed: the blob is complete.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}
