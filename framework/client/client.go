package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

const userAgent = "ferry-go-client/1"

// Batch sizes of a push: the default, and the protocol's default maximum
// per request.
const (
	DefaultMaxBatch = 500
	MaxMaxBatch     = 1000
)

// Config configures a [Client]. BaseURL, Owner and a token are required;
// the zero value of every other field is useful.
type Config struct {
	// BaseURL is the server's root URL, such as "https://api.example.com".
	BaseURL string
	// Mount is the path the sync routes are mounted at (default "/sync").
	Mount string
	// HTTPClient sends the requests (default: a client with a two-minute
	// timeout). Its Transport is where tests inject failures.
	HTTPClient *http.Client
	// Token is a fixed bearer token. TokenFunc, when set, is called before
	// every request instead, so a token can be refreshed.
	Token     string
	TokenFunc func(ctx context.Context) (string, error)
	// Owner is the signed-in user's id (the user uid the server returns at
	// login). Records created on this device belong to it.
	Owner string
	// Store is the local database (default: a new [MemoryStore]; a
	// [SQLiteStore] keeps everything across restarts). A store holds one
	// account's data.
	Store Store
	// DeviceID names this device in pushes and pulls (device_id; default:
	// a random id per Client; give a stable one). Servers only show it to
	// their operators (the inspector plugin).
	DeviceID string
	// MaxBatch is the most changes one push request carries (default
	// 500, at most 1000).
	MaxBatch int
	// PullLimit is the page size asked of the server (default: the
	// server's own default).
	PullLimit int
	// Subscriptions, when set, make the device hold only the records of
	// these subscriptions the application registered on the server
	// ("tasks_of_list(L1)", see framework.App.Subscribe): pulls ask for
	// them, and a record that left them is dropped. Changing the set
	// between runs starts the pull over (the server refuses the old
	// cursor), and what the new set does not cover is dropped.
	Subscriptions []string
	// Retry bounds the retries of each request.
	Retry Retry
	// Clock is the device clock used to stamp modify_at (default
	// time.Now).
	Clock func() time.Time
	// OnRejected is called, during [Client.Sync] and from its goroutine,
	// for each change that left the queue without being stored by the
	// server: rejected as invalid, forbidden, or too large to push. It
	// must not call Sync (which would deadlock).
	OnRejected func(ctx context.Context, r Rejection)
	// Compression chooses what travels compressed: by default
	// ([CompressAll]) answers, and push bodies to servers that say they
	// take them; [CompressAnswers] answers only; [CompressNone] neither.
	Compression Compression
}

// Rejection reports a change the server refused. The change has left the
// queue, unless the record was edited again while its push was in flight
// (then the newer edit stays queued). The local record keeps the refused
// state, unsynced, until the app edits it again or a pull brings the
// server's state.
type Rejection struct {
	// Change is the change as it was pushed.
	Change Change
	// Status is "rejected" or "forbidden".
	Status string
	// Errors lists what was wrong, with JSON pointers into the change
	// ("/data/title"); empty for forbidden.
	Errors []FieldError
	// Code is the server's machine-readable reason for a rejection
	// (invalid, unknown_model, conflict, quota_exceeded, …; too_large for
	// a change too large to push); empty for forbidden, and from servers
	// that do not send it.
	Code string
}

// Client syncs one account's local store with a Ferry server. It is safe
// for concurrent use: local edits may run at any time, and calls to
// [Client.Sync] are serialized.
type Client struct {
	root       string // Config.BaseURL, without a trailing slash
	base       string // root and the mount
	http       *http.Client
	token      func(ctx context.Context) (string, error)
	owner      string
	store      Store
	deviceID   string
	maxBatch   int
	pullLimit  int
	subs       []string
	retry      Retry
	clock      func() time.Time
	onRejected func(ctx context.Context, r Rejection)

	// Request bodies are zstd-compressed when bodyEncoder is set
	// (CompressAll) and the server said it takes them.
	bodyEncoder     *zstd.Encoder
	serverTakesZstd atomic.Bool
	zstdRefused     atomic.Bool
	// noPullBody: the server answered POST /sync/pull 404 or 405 (it
	// predates it), so long pulls go as GET.
	noPullBody atomic.Bool

	syncMu sync.Mutex // serializes Sync
	// spaces is what the last complete pull said the cursor covers, and
	// spacesSwept whether the local records were checked against it since
	// this client started or a pull was cut short (under syncMu).
	spaces      []string
	spacesSwept bool
	editMu      sync.Mutex // serializes local edits, so modify_at only grows

	// The background loop (see Run): whether one runs, and its signals,
	// each buffered so that senders never block.
	running atomic.Bool
	changed chan struct{}
	trigger chan struct{}
}

// New validates cfg and returns a Client. It does no I/O.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: Config.BaseURL %q must be an absolute http or https URL", cfg.BaseURL)
	}
	mount := cfg.Mount
	if mount == "" {
		mount = "/sync"
	}
	if !strings.HasPrefix(mount, "/") {
		mount = "/" + mount
	}
	if cfg.Owner == "" {
		return nil, errors.New("client: Config.Owner is required (the signed-in user's id)")
	}
	if cfg.Token == "" && cfg.TokenFunc == nil {
		return nil, errors.New("client: Config.Token or Config.TokenFunc is required")
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("client: Config.MaxBatch %d must not be negative", cfg.MaxBatch)
	}
	if cfg.PullLimit < 0 {
		return nil, fmt.Errorf("client: Config.PullLimit %d must not be negative", cfg.PullLimit)
	}
	c := &Client{
		root:       strings.TrimRight(cfg.BaseURL, "/"),
		base:       strings.TrimRight(cfg.BaseURL, "/") + strings.TrimRight(mount, "/"),
		http:       cfg.HTTPClient,
		owner:      cfg.Owner,
		store:      cfg.Store,
		deviceID:   cfg.DeviceID,
		maxBatch:   cfg.MaxBatch,
		pullLimit:  cfg.PullLimit,
		subs:       slices.Clone(cfg.Subscriptions),
		retry:      cfg.Retry.withDefaults(),
		clock:      cfg.Clock,
		onRejected: cfg.OnRejected,
		changed:    make(chan struct{}, 1),
		trigger:    make(chan struct{}, 1),
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 2 * time.Minute}
	}
	switch cfg.Compression {
	case CompressAll:
		c.http = withCompression(c.http)
		c.bodyEncoder = newBodyEncoder()
	case CompressAnswers:
		c.http = withCompression(c.http)
	case CompressNone:
	default:
		return nil, fmt.Errorf("client: Config.Compression %d is not one of the Compress constants", cfg.Compression)
	}
	if cfg.TokenFunc != nil {
		c.token = cfg.TokenFunc
	} else {
		tok := cfg.Token
		c.token = func(context.Context) (string, error) { return tok, nil }
	}
	if c.store == nil {
		c.store = NewMemoryStore()
	}
	if c.deviceID == "" {
		c.deviceID = NewUID()
	}
	if c.maxBatch == 0 {
		c.maxBatch = DefaultMaxBatch
	}
	c.maxBatch = min(c.maxBatch, MaxMaxBatch)
	if c.clock == nil {
		c.clock = time.Now
	}
	return c, nil
}

// Store returns the client's local store.
func (c *Client) Store() Store { return c.store }

// Owner returns the id of the user the client syncs for.
func (c *Client) Owner() string { return c.owner }

// MaxBatch returns the most changes one push carries.
func (c *Client) MaxBatch() int { return c.maxBatch }

// key is the local key of one of the owner's records.
func (c *Client) key(model, uid string) Key { return Key{Owner: c.owner, Model: model, UID: uid} }

// Put writes a record locally and queues it for the next sync. data is a
// JSON object: a json.RawMessage, []byte of JSON, or any value that
// encodes to one. modify_at is the device clock in UTC, truncated to
// microseconds, and always later than the record's previous modify_at, so
// an edit made after seeing another device's change is newer than it.
// Putting a deleted record brings it back.
func (c *Client) Put(ctx context.Context, model, uid string, data any) (*Record, error) {
	return c.put(ctx, c.key(model, uid), data)
}

func (c *Client) put(ctx context.Context, key Key, data any) (*Record, error) {
	if err := checkKey(key.Model, key.UID); err != nil {
		return nil, err
	}
	raw, err := objectJSON(data)
	if err != nil {
		return nil, fmt.Errorf("client: put %s/%s: %w", key.Model, key.UID, err)
	}
	return c.write(ctx, key, func(rec *Record) {
		rec.Data, rec.IsDeleted = raw, false
	})
}

// Delete marks a record deleted locally (a tombstone, which keeps its last
// data) and queues the tombstone for the next sync. It returns an error
// matching [ErrNotFound] when the store has no such record; deleting a
// tombstone again changes nothing.
func (c *Client) Delete(ctx context.Context, model, uid string) error {
	return c.delete(ctx, c.key(model, uid))
}

func (c *Client) delete(ctx context.Context, key Key) error {
	if err := checkKey(key.Model, key.UID); err != nil {
		return err
	}
	c.editMu.Lock()
	defer c.editMu.Unlock()
	prev, err := c.store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("client: delete %s/%s: %w", key.Model, key.UID, err)
	}
	if prev.IsDeleted {
		return nil
	}
	_, err = c.writeLocked(ctx, key, prev, func(rec *Record) { rec.IsDeleted = true })
	return err
}

func (c *Client) write(ctx context.Context, key Key, edit func(*Record)) (*Record, error) {
	c.editMu.Lock()
	defer c.editMu.Unlock()
	prev, err := c.store.Get(ctx, key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("client: put %s/%s: %w", key.Model, key.UID, err)
	}
	return c.writeLocked(ctx, key, prev, edit)
}

// writeLocked stamps and stores an edit of prev (nil for a new record);
// c.editMu is held.
func (c *Client) writeLocked(ctx context.Context, key Key, prev *Record, edit func(*Record)) (*Record, error) {
	model, uid := key.Model, key.UID
	now := c.clock().UTC().Truncate(time.Microsecond)
	rec := &Record{Model: model, UID: uid, Owner: key.Owner}
	if prev != nil {
		rec = prev.Clone()
		if !now.After(prev.ModifyAt) {
			now = prev.ModifyAt.UTC().Add(time.Microsecond)
		}
	}
	rec.ModifyAt = now
	rec.Synced = false
	edit(rec)
	rec.FieldsModifyAt = editedFieldTimes(prev, rec)
	if _, err := c.store.Write(ctx, rec); err != nil {
		return nil, fmt.Errorf("client: write %s/%s: %w", model, uid, err)
	}
	c.notifyChanged()
	return rec, nil
}

// Get returns the local record, tombstones included (see
// [Record.IsDeleted]), or an error matching [ErrNotFound].
func (c *Client) Get(ctx context.Context, model, uid string) (*Record, error) {
	return c.get(ctx, c.key(model, uid))
}

func (c *Client) get(ctx context.Context, key Key) (*Record, error) {
	rec, err := c.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("client: get %s/%s: %w", key.Model, key.UID, err)
	}
	return rec, nil
}

// List returns the local records of model in the user's personal space
// that are not deleted, sorted by uid; an empty model lists every model.
// A shared space's records are listed by [Space.List].
func (c *Client) List(ctx context.Context, model string) ([]*Record, error) {
	return c.list(ctx, c.owner, model)
}

func (c *Client) list(ctx context.Context, owner, model string) ([]*Record, error) {
	recs, err := c.store.List(ctx, ListParams{Owner: owner, Model: model})
	if err != nil {
		return nil, fmt.Errorf("client: list %s: %w", model, err)
	}
	return recs, nil
}

// PendingCount returns how many changes wait to be pushed.
func (c *Client) PendingCount(ctx context.Context) (int, error) {
	p, err := c.store.Pending(ctx, PendingParams{})
	if err != nil {
		return 0, fmt.Errorf("client: pending: %w", err)
	}
	return len(p), nil
}

// NewUID returns a random UUID (version 4), a good uid for a new record.
func NewUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// checkKey checks a model name and a uid the way the server will.
func checkKey(model, uid string) error {
	if model == "" || len(model) > 128 {
		return fmt.Errorf("client: model %q must be 1 to 128 characters", model)
	}
	if len(uid) == 0 || len(uid) > 64 {
		return fmt.Errorf("client: uid %q must be 1 to 64 letters, digits, '-' or '_'", uid)
	}
	for i := 0; i < len(uid); i++ {
		ch := uid[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return fmt.Errorf("client: uid %q must be 1 to 64 letters, digits, '-' or '_'", uid)
		}
	}
	return nil
}

// objectJSON encodes data and checks that it is a JSON object.
func objectJSON(data any) (json.RawMessage, error) {
	var raw []byte
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		b, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("encode data: %w", err)
		}
		raw = b
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, errors.New("data must be a JSON object")
	}
	return append(json.RawMessage(nil), raw...), nil
}
