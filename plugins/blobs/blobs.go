// Package blobs is Ferry's media plugin: photos, audio, video and files
// that sync offline, content-addressed by SHA-256, uploaded resumably
// with the tus protocol (tusd as a library) and downloaded with Range.
//
// A record refers to a blob with an object anywhere in its data:
//
//	{"photo": {"$blob": "sha256:9f86d0…", "size": 48213, "type": "image/jpeg"}}
//
// The plugin counts, inside the push transaction, which of a user's live
// records refer to which blobs; answers each applied or stale push result
// with the referenced blobs the user has not uploaded yet
// (Result.MissingBlobs); takes uploads at /sync/blobs/uploads/ (tus 1.0:
// creation, creation-with-upload, termination), verifies the SHA-256 the
// upload declared and stores the bytes under it; and serves HEAD and GET
// /sync/blobs/{sha256} to users who hold the blob. [Plugin.Collect], run
// every Config.CollectEvery between [Plugin.Start] and [Plugin.Close],
// removes blobs no record has referred to for Config.GracePeriod and
// partial uploads untouched for Config.AbandonAfter.
//
// Reading a blob takes having uploaded its bytes (a device of the same
// user did): a hash alone grants nothing, and a user who refers to a hash
// someone else uploaded is told it is missing and must upload the bytes
// (which the server then verifies and does not store twice).
package blobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/uptrace/bun"
)

// Config configures the plugin. Models, and Dir or both Store and
// Uploads, are required; the other fields' zero values are useful.
type Config struct {
	// Models lists the models whose records may refer to blobs. Their
	// writes run the plugin's apply hook (counting references in the
	// transaction), so they take the App's change-by-change write route.
	Models []string
	// Dir is where blobs live on the local file system: blobs under
	// Dir/blobs ([FileStore]), partial uploads under Dir/uploads (tusd's
	// filestore). The example app puts it next to the SQLite file.
	Dir string
	// Store, when set, keeps the verified blobs instead of Dir/blobs
	// (an S3-compatible bucket through [NewBucketStore], say).
	Store Store
	// Uploads, when set, keeps partial uploads instead of Dir/uploads:
	// a tusd data store with termination (tusd's s3store, for replicas
	// that do not share a disk). Locker, when set, locks them across
	// replicas (default: in memory, one process).
	Uploads UploadStore
	Locker  handler.Locker
	// MaxUploadBytes caps one blob (default 1 GiB); a larger upload is
	// refused at creation, 413 too_large.
	MaxUploadBytes int64
	// MaxBytesPerUser caps the bytes of the blobs a user holds plus their
	// unfinished uploads' declared sizes (0: no quota); over it an upload
	// is refused, 413 quota_exceeded.
	MaxBytesPerUser int64
	// MaxUploadsPerUser caps a user's unfinished uploads (default 100);
	// over it a new one is refused, 413 too_large.
	MaxUploadsPerUser int
	// MaxRefsPerRecord caps the distinct blobs one record refers to
	// (default 100); over it the change is rejected.
	MaxRefsPerRecord int
	// GracePeriod is how long a blob no record refers to any more (or
	// none ever did, since its upload) is kept (default 24 hours), so a
	// device may upload before it pushes, and an undo may bring it back.
	GracePeriod time.Duration
	// AbandonAfter removes a partial upload not written to for this long
	// (default 24 hours).
	AbandonAfter time.Duration
	// CollectEvery is how often the plugin collects between Start and
	// Close (default 10 minutes); negative: never (call Collect).
	CollectEvery time.Duration
}

// UploadStore is a tusd data store that can also remove uploads.
type UploadStore interface {
	handler.DataStore
	handler.TerminaterDataStore
}

// Plugin is the blobs plugin; see the package comment. Attach it with
// [framework.App.Use].
type Plugin struct {
	cfg     Config
	store   Store
	uploads UploadStore
	locker  handler.Locker
	models  []string

	app *framework.App
	db  *bun.DB
	log *slog.Logger
	now func() time.Time

	hashes hashStates
	pipes  *pipes

	mu      sync.Mutex
	stop    context.CancelFunc
	stopped chan struct{}
}

var (
	_ framework.Plugin       = (*Plugin)(nil)
	_ framework.RouteMounter = (*Plugin)(nil)
	_ framework.Starter      = (*Plugin)(nil)
	_ framework.Closer       = (*Plugin)(nil)
)

// New validates cfg and returns the plugin; it opens nothing but Dir's
// folders.
func New(cfg Config) (*Plugin, error) {
	if len(cfg.Models) == 0 {
		return nil, errors.New("blobs: Config.Models is empty; name the models whose records refer to blobs")
	}
	if cfg.Dir == "" && (cfg.Store == nil || cfg.Uploads == nil) {
		return nil, errors.New("blobs: Config.Dir is empty; set it, or both Config.Store and Config.Uploads")
	}
	for name, v := range map[string]int64{"MaxUploadBytes": cfg.MaxUploadBytes, "MaxBytesPerUser": cfg.MaxBytesPerUser,
		"MaxUploadsPerUser": int64(cfg.MaxUploadsPerUser), "MaxRefsPerRecord": int64(cfg.MaxRefsPerRecord),
		"GracePeriod": int64(cfg.GracePeriod), "AbandonAfter": int64(cfg.AbandonAfter)} {
		if v < 0 {
			return nil, fmt.Errorf("blobs: Config.%s is negative (0 is the default)", name)
		}
	}
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = 1 << 30
	}
	if cfg.MaxUploadsPerUser == 0 {
		cfg.MaxUploadsPerUser = 100
	}
	if cfg.MaxRefsPerRecord == 0 {
		cfg.MaxRefsPerRecord = 100
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 24 * time.Hour
	}
	if cfg.AbandonAfter == 0 {
		cfg.AbandonAfter = 24 * time.Hour
	}
	if cfg.CollectEvery == 0 {
		cfg.CollectEvery = 10 * time.Minute
	}
	p := &Plugin{cfg: cfg, store: cfg.Store, uploads: cfg.Uploads, locker: cfg.Locker, models: slices.Clone(cfg.Models),
		pipes: newPipes(maxPipes)}
	if p.store == nil {
		fs, err := NewFileStore(filepath.Join(cfg.Dir, "blobs"))
		if err != nil {
			return nil, err
		}
		p.store = fs
	}
	if p.uploads == nil {
		us, err := newFileUploads(filepath.Join(cfg.Dir, "uploads"))
		if err != nil {
			return nil, err
		}
		p.uploads = us
	}
	if p.locker == nil {
		p.locker = newMemoryLocker()
	}
	return p, nil
}

// MustNew is [New] that panics on a bad Config, for main and tests.
func MustNew(cfg Config) *Plugin {
	p, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return p
}

// Name implements [framework.Plugin].
func (p *Plugin) Name() string { return "blobs" }

// Setup implements [framework.Plugin]: it binds the plugin's hooks.
func (p *Plugin) Setup(app *framework.App) error {
	p.app, p.db, p.log, p.now = app, app.DB(), app.Logger(), app.Config().Now
	app.OnValidate().Bind(&hook.Handler[*framework.ValidateEvent]{ID: "blobs.refs", Tags: p.models, Func: p.checkRefs})
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "blobs.count", Tags: p.models, Func: p.countRefs})
	app.OnResults().Bind(&hook.Handler[*framework.ResultsEvent]{ID: "blobs.missing", Func: p.markMissing})
	return nil
}

// Start implements [framework.Starter]: it checks the models exist,
// creates the plugin's tables if needed and starts collecting every
// Config.CollectEvery.
func (p *Plugin) Start(ctx context.Context) error {
	for _, m := range p.models {
		if _, err := p.app.WriteRoute(m); err != nil {
			return fmt.Errorf("blobs: Config.Models: %w", err)
		}
	}
	if err := migrate(ctx, p.db); err != nil {
		return err
	}
	if p.cfg.CollectEvery < 0 {
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.mu.Lock()
	p.stop, p.stopped = cancel, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(p.cfg.CollectEvery)
		defer t.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-t.C:
				if got, err := p.Collect(loopCtx); err != nil && loopCtx.Err() == nil {
					p.log.Error("blobs: collect", "err", err)
				} else if got != (Collected{}) {
					p.log.Info("blobs: collected", "blobs", got.Blobs, "bytes", got.Bytes, "holdings", got.Holdings, "uploads", got.Uploads)
				}
			}
		}
	}()
	return nil
}

// Close implements [framework.Closer]: it stops collecting and waits for
// a collection under way.
func (p *Plugin) Close() error {
	p.mu.Lock()
	stop, done := p.stop, p.stopped
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}

// unixNow is the App's clock in Unix microseconds.
func (p *Plugin) unixNow() int64 { return p.now().UnixMicro() }

// checkRefs rejects a change whose data holds a malformed reference.
func (p *Plugin) checkRefs(e *framework.ValidateEvent) error {
	if !e.Change.IsDeleted {
		if _, err := Refs(e.Change.Data, "/data", p.cfg.MaxRefsPerRecord); err != nil {
			return err
		}
	}
	return e.Next()
}

// refsOf returns the blobs a stored record holds on to: none once it is a
// tombstone.
func (p *Plugin) refsOf(r *framework.Record) []string {
	if r == nil || r.IsDeleted {
		return nil
	}
	refs, _ := Refs(r.Data, "/data", 0) // checked when it came in
	return refs
}

// countRefs keeps the reference counts in the write's transaction, after
// the write (what is counted is what was written).
func (p *Plugin) countRefs(e *framework.ApplyEvent) error {
	if err := e.Next(); err != nil {
		return err
	}
	before, after := p.refsOf(e.Stored), p.refsOf(e.Record)
	now := p.unixNow()
	for _, h := range after {
		if !slices.Contains(before, h) {
			if err := addRef(e.Context, e.Tx, e.Record.Owner, h, now); err != nil {
				return err
			}
		}
	}
	for _, h := range before {
		if !slices.Contains(after, h) {
			if err := dropRef(e.Context, e.Tx, e.Record.Owner, h, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// markMissing answers each applied or stale result with the blobs its
// record refers to that the record's scope (the user, or the shared space)
// does not hold.
func (p *Plugin) markMissing(e *framework.ResultsEvent) error {
	byScope := map[string][]string{}
	refs := make([][]string, len(e.Results))
	for i := range e.Results {
		r := &e.Results[i]
		if r.Record == nil || !slices.Contains(p.models, r.Model) {
			continue
		}
		refs[i] = p.refsOf(r.Record)
		byScope[r.Record.Owner] = append(byScope[r.Record.Owner], refs[i]...)
	}
	have := map[string]map[string]bool{}
	for scope, all := range byScope {
		if len(all) == 0 {
			continue
		}
		slices.Sort(all)
		h, err := heldAmong(e.Context, p.db, scope, slices.Compact(all))
		if err != nil {
			return err
		}
		have[scope] = h
	}
	for i, rs := range refs {
		for _, h := range rs {
			if !have[e.Results[i].Record.Owner][h] {
				e.Results[i].MissingBlobs = append(e.Results[i].MissingBlobs, HashPrefix+h)
			}
		}
	}
	return e.Next()
}
