package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
)

// Store is where Ferry keeps records, scope counters and usage: the seam
// between the sync engine and a database. The framework asks a Store for
// everything it reads and writes and issues no SQL of its own; [NewStore]
// is the implementation on bun for PostgreSQL and SQLite, and
// [github.com/ferrysync/ferry/models/storetest] the conformance suite any
// implementation (or a wrapper around one) must pass.
//
// Records are identified by scope (owner), model and uid. Versions are
// counted per scope inside the write transaction ([Tx.ReserveVersion]
// locks the scope until the transaction ends), so within a scope commit
// order equals version order.
//
// Methods take one Params struct each, so parameters can be added without
// breaking implementations (River's riverdriver has the same shape).
type Store interface {
	Reader
	// Register says where model's records live: its own typed table
	// ([Typed]) or the generic record table ([Generic]). Register every
	// model before Migrate.
	Register(model string, spec TableSpec) error
	// Migrate brings Ferry's own tables up to date and creates (or
	// upgrades) the registered models' tables. Several processes may run
	// it at once.
	Migrate(ctx context.Context) error
	// Features says what the store can do for model's records in one
	// statement.
	Features(model string) Features
	// Begin starts a read-write transaction.
	Begin(ctx context.Context) (Tx, error)
	// BeginRead starts a read-only transaction whose reads all see one
	// snapshot of every table (a pull reads the counters and several
	// record tables and must see them as of one moment).
	BeginRead(ctx context.Context) (Tx, error)
	// WriteIfNewer is [Tx.WriteIfNewer] in a transaction of its own: one
	// statement, no round trips for begin and commit.
	WriteIfNewer(ctx context.Context, p WriteIfNewerParams) ([]int64, error)
	// DB is the bun database under the store, for an application's own
	// tables; nil when the store has none.
	DB() *bun.DB
}

// Reader is what a [Store] reads outside a transaction and a [Tx] inside
// one.
type Reader interface {
	// Load returns the scope's stored records of a model among the uids,
	// tombstones included, in any order; a missing uid is absent.
	Load(ctx context.Context, p LoadParams) ([]Record, error)
	// ScopeState returns the counters of scopes; a scope nobody wrote to
	// yet is absent.
	ScopeState(ctx context.Context, p ScopeStateParams) (map[string]Scope, error)
	// ReadFeed returns the records changed in each scope's stretch, scope
	// by scope in the order given, each scope's in version order, within
	// the limits (see [ReadFeedParams]).
	ReadFeed(ctx context.Context, p ReadFeedParams) (FeedResult, error)
	// Usage returns what a scope stores (zero for a scope that never
	// wrote): exact, from counters kept by every write, or counted from
	// the records when the store keeps none ([UsageAccounter]).
	Usage(ctx context.Context, scope string) (Usage, error)
	// Tombstones returns up to Limit tombstones of a model, of any scope,
	// last written before Before.
	Tombstones(ctx context.Context, p TombstonesParams) ([]Record, error)
	// Memberships returns memberships of shared scopes (see
	// [MembershipsParams]).
	Memberships(ctx context.Context, p MembershipsParams) ([]Membership, error)
}

// Tx is a transaction of a [Store]. After Commit or Rollback it must not
// be used; Rollback after Commit is a no-op, so it can be deferred.
type Tx interface {
	Reader
	// ReserveVersion locks the scope's counter (creating it when needed)
	// until the transaction ends and returns the next version and the
	// scope's usage as of the lock (see [Reservation.Usage]). Later versions of the transaction are
	// counted by the caller and recorded with SetScopeVersion.
	ReserveVersion(ctx context.Context, p ReserveVersionParams) (Reservation, error)
	// SetScopeVersion raises the scope's counter to the last version the
	// transaction used.
	SetScopeVersion(ctx context.Context, p SetScopeVersionParams) error
	// Write stores records of one model (see [WriteMode]).
	Write(ctx context.Context, p WriteParams) error
	// WriteIfNewer writes records of one model the store decides with
	// last-writer-wins in the statement that writes; only when
	// Features(model).WriteIfNewer. It returns per record the version
	// written, or 0 when the stored record won or was the same.
	WriteIfNewer(ctx context.Context, p WriteIfNewerParams) ([]int64, error)
	// InsertValue stores a whole typed value, server-only fields included
	// (an account with its password hash), and returns its record.
	InsertValue(ctx context.Context, p InsertValueParams) (Record, error)
	// Delete removes records for good (purged tombstones).
	Delete(ctx context.Context, p DeleteParams) error
	// LockForPurge takes the scope's counter lock and raises its purge
	// horizon: a cursor older than the horizon must reset.
	LockForPurge(ctx context.Context, p LockForPurgeParams) error
	// SetMembership writes or removes one membership of a shared scope;
	// the caller holds the scope's counter lock ([Tx.ReserveVersion]).
	SetMembership(ctx context.Context, p SetMembershipParams) error
	// DropMemberships removes every membership of a shared scope.
	DropMemberships(ctx context.Context, p DropMembershipsParams) error
	// InSavepoint runs fn; when fn fails, what it wrote is undone and the
	// transaction stays usable.
	InSavepoint(ctx context.Context, fn func() error) error
	// Bun is the transaction as bun sees it, for hooks that write an
	// application's own tables in it.
	Bun() bun.Tx
	Commit() error
	Rollback() error
}

// Features is what a store can do in one statement.
type Features struct {
	// WriteIfNewer: the store decides last-writer-wins in the statement
	// that writes ([Tx.WriteIfNewer]).
	WriteIfNewer bool
}

// LoadParams selects records by key.
type LoadParams struct {
	Scope string
	Model string
	UIDs  []string
}

// ScopeStateParams names scopes.
type ScopeStateParams struct {
	Scopes []string
}

// ScopeRange is one scope's stretch of versions: After (exclusive) to
// UpTo (inclusive).
type ScopeRange struct {
	Scope string
	After int64
	UpTo  int64
}

// ReadFeedParams selects a feed of changes across scopes.
type ReadFeedParams struct {
	Scopes []ScopeRange
	// Models restricts the feed to these models; nil means every
	// registered one.
	Models []string
	// SkipDeleted leaves tombstones out.
	SkipDeleted bool
	// Limit caps the records of the whole read (0: no cap).
	Limit int
	// MaxBytes caps their size ([Record.Size]; 0: no cap): the read stops
	// before the record that would take it over, never before the first.
	MaxBytes int
}

// FeedResult is what [Reader.ReadFeed] read.
type FeedResult struct {
	// Records are scope by scope, each scope's in version order.
	Records []Record
	// Positions says per scope of the request the version read through:
	// UpTo when the scope was read whole, the last record's version when
	// a limit ended the read inside it, After when the read never reached
	// it.
	Positions map[string]int64
	// More is set when a limit ended the read before every scope's UpTo.
	More bool
}

// TombstonesParams selects tombstones for purging.
type TombstonesParams struct {
	Model  string
	Before time.Time
	Limit  int
}

// ReserveVersionParams names the scope to lock.
type ReserveVersionParams struct {
	Scope string
}

// Reservation is the next version of a locked scope and its usage.
type Reservation struct {
	Next int64
	// Usage is the scope's usage as of the lock when the store keeps
	// usage counters; zero when this process turned them off
	// ([UsageAccounter]: read [Reader.Usage] instead, which counts).
	Usage Usage
}

// SetScopeVersionParams records a scope's last version.
type SetScopeVersionParams struct {
	Scope   string
	Version int64
}

// WriteMode says how [Tx.Write] stores records.
type WriteMode int

const (
	// WriteUpsert inserts new records and replaces existing ones'
	// envelope and data (server-only columns and created_at are kept);
	// the records' uids must be distinct.
	WriteUpsert WriteMode = iota
	// WriteInsert inserts records that must not exist yet (a unique
	// violation otherwise).
	WriteInsert
	// WriteUpdate replaces existing records' envelope and data.
	WriteUpdate
)

// WriteParams are records of one model to write.
type WriteParams struct {
	Model   string
	Records []*Record
	Mode    WriteMode
}

// WriteIfNewerParams are records of one model, all of Scope, with distinct
// uids, each Version its place in Span (see [VersionSpan]).
type WriteIfNewerParams struct {
	Scope   string
	Model   string
	Span    VersionSpan
	Records []*Record
}

// InsertValueParams is a typed value to store whole; Value is a pointer
// to the model's struct, its base fields set.
type InsertValueParams struct {
	Model string
	Value any
}

// DeleteParams selects records to remove.
type DeleteParams struct {
	Scope string
	Model string
	UIDs  []string
}

// LockForPurgeParams raises a scope's purge horizon.
type LockForPurgeParams struct {
	Scope   string
	Horizon int64
}

// TableSpec says where a model's records live; build one with [Typed] or
// [Generic].
type TableSpec interface {
	newTable(db *bun.DB) (Table, error)
}

type typedSpec[T any, P interface {
	*T
	BaseHolder
}] struct{}

func (typedSpec[T, P]) newTable(db *bun.DB) (Table, error) { return NewTypedTable[T, P](db) }

// Typed keeps a model's records in T's own bun table (plan A); T embeds
// [Base].
func Typed[T any, P interface {
	*T
	BaseHolder
}]() TableSpec {
	return typedSpec[T, P]{}
}

type genericSpec struct{}

func (genericSpec) newTable(db *bun.DB) (Table, error) { return NewGenericTable(db), nil }

// Generic keeps a model's records in the generic record table (plan B).
func Generic() TableSpec { return genericSpec{} }

// tableCreator is a table that creates (and upgrades) its own table.
type tableCreator interface {
	CreateTable(ctx context.Context, idb bun.IDB) error
}

// valueInserter is a table that stores whole typed values.
type valueInserter interface {
	insertValue(ctx context.Context, idb bun.IDB, model string, v any) (Record, error)
}

// NewStore returns the [Store] on db, PostgreSQL or SQLite.
func NewStore(db *bun.DB) Store {
	return &bunStore{db: db, tables: map[string]Table{}, timed: map[string]bool{}, pg: IsPostgres(db)}
}

// bunStore is the Store on bun.
type bunStore struct {
	db *bun.DB
	pg bool

	mu     sync.RWMutex
	tables map[string]Table
	order  []string        // registration order, for Migrate
	timed  map[string]bool // models whose field times are kept

	// usageOff: this process does not need the usage counters
	// ([UsageAccounter]), so it counts instead of reading them.
	usageOff atomic.Bool
}

var _ Store = (*bunStore)(nil)

func (s *bunStore) DB() *bun.DB { return s.db }

func (s *bunStore) Register(model string, spec TableSpec) error {
	t, err := spec.newTable(s.db)
	if err != nil {
		return fmt.Errorf("register %s: %w", model, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.tables[model]; dup {
		return fmt.Errorf("register %s: already registered", model)
	}
	s.tables[model] = t
	s.order = append(s.order, model)
	if _, ok := spec.(fieldTimesSpec); ok {
		s.timed[model] = true
	}
	return nil
}

// anyTimed reports whether some model's field times are kept.
func (s *bunStore) anyTimed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.timed) > 0
}

// keepsFieldTimes reports whether model's field times are kept.
func (s *bunStore) keepsFieldTimes(model string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.timed[model]
}

func (s *bunStore) table(model string) (Table, error) {
	s.mu.RLock()
	t, ok := s.tables[model]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("models: %q is not registered with the store", model)
	}
	return t, nil
}

func (s *bunStore) Migrate(ctx context.Context) error {
	s.mu.RLock()
	var creators []tableCreator
	for _, name := range s.order {
		if c, ok := s.tables[name].(tableCreator); ok {
			creators = append(creators, c)
		}
	}
	s.mu.RUnlock()
	return Migrate(ctx, s.db, func(ctx context.Context, idb bun.IDB) error {
		for _, c := range creators {
			if err := c.CreateTable(ctx, idb); err != nil {
				return fmt.Errorf("create table: %w", err)
			}
		}
		return nil
	})
}

func (s *bunStore) Features(model string) Features {
	t, err := s.table(model)
	if err != nil {
		return Features{}
	}
	nw, ok := t.(NewerWriter)
	return Features{WriteIfNewer: ok && nw.CanWriteIfNewer(s.db) && !s.keepsFieldTimes(model)}
}

func (s *bunStore) Begin(ctx context.Context) (Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &bunTx{bunReader: bunReader{s: s, idb: tx}, tx: tx}, nil
}

func (s *bunStore) BeginRead(ctx context.Context) (Tx, error) {
	if !viaPgx(s.db) {
		tx, err := s.db.BeginTx(ctx, ReadTxOptions(s.db))
		if err != nil {
			return nil, fmt.Errorf("begin read: %w", err)
		}
		return &bunTx{bunReader: bunReader{s: s, idb: tx}, tx: tx}, nil
	}
	// The transaction keeps its connection, so the feed can be read on
	// it with pgx (see feed_pgx.go).
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	tx, err := conn.BeginTx(ctx, ReadTxOptions(s.db))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("begin read: %w", err)
	}
	return &bunTx{bunReader: bunReader{s: s, idb: tx, raw: connRunner(conn)}, tx: tx, conn: &conn}, nil
}

func (s *bunStore) WriteIfNewer(ctx context.Context, p WriteIfNewerParams) ([]int64, error) {
	return s.writeIfNewer(ctx, s.db, p)
}

func (s *bunStore) writeIfNewer(ctx context.Context, idb bun.IDB, p WriteIfNewerParams) ([]int64, error) {
	t, err := s.table(p.Model)
	if err != nil {
		return nil, err
	}
	nw, ok := t.(NewerWriter)
	if !ok || !nw.CanWriteIfNewer(s.db) || s.keepsFieldTimes(p.Model) {
		return nil, fmt.Errorf("models: the store cannot write %s records if newer", p.Model)
	}
	if len(p.Records) == 0 {
		return nil, nil
	}
	return nw.WriteIfNewer(ctx, idb, p.Scope, p.Span, p.Records)
}

func (s *bunStore) Load(ctx context.Context, p LoadParams) ([]Record, error) {
	return bunReader{s: s, idb: s.db}.Load(ctx, p)
}

func (s *bunStore) ScopeState(ctx context.Context, p ScopeStateParams) (map[string]Scope, error) {
	return ScopeState(ctx, s.db, p.Scopes)
}

// ReadFeed reads in a read transaction of its own, so that the tables of
// a page are read as of one moment.
func (s *bunStore) ReadFeed(ctx context.Context, p ReadFeedParams) (FeedResult, error) {
	tx, err := s.BeginRead(ctx)
	if err != nil {
		return FeedResult{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return tx.ReadFeed(ctx, p)
}

func (s *bunStore) Usage(ctx context.Context, scope string) (Usage, error) {
	return s.readUsage(ctx, s.db, scope)
}

func (s *bunStore) Tombstones(ctx context.Context, p TombstonesParams) ([]Record, error) {
	return bunReader{s: s, idb: s.db}.Tombstones(ctx, p)
}

func (s *bunStore) Memberships(ctx context.Context, p MembershipsParams) ([]Membership, error) {
	return ReadMemberships(ctx, s.db, p)
}

// bunReader reads through idb: the database or a transaction.
type bunReader struct {
	s   *bunStore
	idb bun.IDB
	// raw, when set, is the pgx connection under idb, for feed reads.
	raw rawConn
}

func (r bunReader) Load(ctx context.Context, p LoadParams) ([]Record, error) {
	t, err := r.s.table(p.Model)
	if err != nil {
		return nil, err
	}
	rows, err := t.Load(ctx, r.idb, p.Scope, p.Model, p.UIDs)
	if err != nil {
		return nil, fmt.Errorf("load %s of %q: %w", p.Model, p.Scope, err)
	}
	if r.s.keepsFieldTimes(p.Model) {
		if err := attachFieldTimes(ctx, r.idb, rows, r.s.keepsFieldTimes); err != nil {
			return nil, fmt.Errorf("load %s of %q: %w", p.Model, p.Scope, err)
		}
	}
	return rows, nil
}

func (r bunReader) ScopeState(ctx context.Context, p ScopeStateParams) (map[string]Scope, error) {
	return ScopeState(ctx, r.idb, p.Scopes)
}

func (r bunReader) Memberships(ctx context.Context, p MembershipsParams) ([]Membership, error) {
	return ReadMemberships(ctx, r.idb, p)
}

func (r bunReader) Usage(ctx context.Context, scope string) (Usage, error) {
	return r.s.readUsage(ctx, r.idb, scope)
}

func (r bunReader) Tombstones(ctx context.Context, p TombstonesParams) ([]Record, error) {
	t, err := r.s.table(p.Model)
	if err != nil {
		return nil, err
	}
	return t.Tombstones(ctx, r.idb, p.Model, p.Before, p.Limit)
}

// sources groups the wanted models by table: each typed table alone, the
// generic table once with all its models.
func (s *bunStore) sources(names []string) ([]FeedSource, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if names == nil {
		names = s.order
	}
	var out []FeedSource
	generic := -1
	for _, name := range names {
		t, ok := s.tables[name]
		if !ok {
			return nil, fmt.Errorf("models: %q is not registered with the store", name)
		}
		if _, isGeneric := t.(GenericTable); !isGeneric {
			out = append(out, FeedSource{Table: t, Models: []string{name}})
			continue
		}
		if generic < 0 {
			generic = len(out)
			out = append(out, FeedSource{Table: t})
		}
		out[generic].Models = append(out[generic].Models, name)
	}
	return out, nil
}

func (r bunReader) ReadFeed(ctx context.Context, p ReadFeedParams) (FeedResult, error) {
	if r.raw != nil {
		ctx = withRawConn(ctx, r.raw)
	}
	sources, err := r.s.sources(p.Models)
	if err != nil {
		return FeedResult{}, err
	}
	res := FeedResult{Positions: make(map[string]int64, len(p.Scopes))}
	budget := p.MaxBytes
	for _, sc := range p.Scopes {
		res.Positions[sc.Scope] = sc.After
		if sc.After >= sc.UpTo {
			res.Positions[sc.Scope] = max(sc.After, sc.UpTo)
			continue // nothing new in this scope
		}
		full := p.Limit > 0 && len(res.Records) >= p.Limit || p.MaxBytes > 0 && budget <= 0
		if res.More || full {
			res.More = true // the read is full: this scope waits
			continue
		}
		fp := FeedParams{Owner: sc.Scope, After: sc.After, UpTo: sc.UpTo, SkipDeleted: p.SkipDeleted}
		if p.Limit > 0 {
			fp.Limit = p.Limit - len(res.Records)
		}
		if p.MaxBytes > 0 {
			fp.MaxBytes = budget
		}
		page, err := ReadFeedPage(ctx, r.idb, sources, fp)
		if err != nil {
			return FeedResult{}, err
		}
		if r.s.anyTimed() {
			// Field times live in their own table, so the tables' reads
			// could not count them; they count here, and a page they take
			// over the cap ends before the record that took it over.
			if err := attachFieldTimes(ctx, r.idb, page.Records, r.s.keepsFieldTimes); err != nil {
				return FeedResult{}, fmt.Errorf("read feed: %w", err)
			}
		}
		for i := range page.Records {
			budget -= page.Records[i].Size()
			if p.MaxBytes > 0 && budget < 0 && len(res.Records)+i > 0 {
				page.Records, page.More = page.Records[:i], true
				break
			}
		}
		switch {
		case page.More && len(page.Records) > 0:
			res.Positions[sc.Scope] = page.Records[len(page.Records)-1].Version
			res.More = true
		case page.More:
			res.More = true // the first record of this scope did not fit: it waits
		default:
			res.Positions[sc.Scope] = sc.UpTo
		}
		res.Records = append(res.Records, page.Records...)
	}
	return res, nil
}

// bunTx is the Tx on bun.
type bunTx struct {
	bunReader
	tx    bun.Tx
	conn  *bun.Conn // the connection a read transaction keeps, returned at its end
	saves int
}

var _ Tx = (*bunTx)(nil)

func (t *bunTx) Bun() bun.Tx { return t.tx }

func (t *bunTx) Commit() error {
	err := t.tx.Commit()
	t.release()
	return err
}

func (t *bunTx) Rollback() error {
	err := ignoreDone(t.tx.Rollback())
	t.release()
	return err
}

func (t *bunTx) release() {
	if t.conn != nil {
		t.conn.Close() //nolint:errcheck // back to the pool; a broken one is dropped
		t.conn = nil
	}
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

func (t *bunTx) ReserveVersion(ctx context.Context, p ReserveVersionParams) (Reservation, error) {
	v, u, err := ReserveVersionUsage(ctx, t.tx, p.Scope)
	if t.s.usageOff.Load() {
		u = Usage{} // the counters may be stale
	}
	return Reservation{Next: v, Usage: u}, err
}

func (t *bunTx) SetScopeVersion(ctx context.Context, p SetScopeVersionParams) error {
	return SetScopeVersion(ctx, t.tx, p.Scope, p.Version)
}

func (t *bunTx) Write(ctx context.Context, p WriteParams) error {
	if err := t.write(ctx, p); err != nil {
		return err
	}
	if t.s.keepsFieldTimes(p.Model) {
		return writeFieldTimes(ctx, t.tx, p.Model, p.Records)
	}
	return nil
}

func (t *bunTx) write(ctx context.Context, p WriteParams) error {
	tbl, err := t.s.table(p.Model)
	if err != nil {
		return err
	}
	switch p.Mode {
	case WriteUpsert:
		if len(p.Records) == 0 {
			return nil
		}
		return tbl.Upsert(ctx, t.tx, p.Records)
	case WriteInsert:
		for _, r := range p.Records {
			if err := tbl.Insert(ctx, t.tx, r); err != nil {
				return err
			}
		}
	case WriteUpdate:
		for _, r := range p.Records {
			if err := tbl.Update(ctx, t.tx, r); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("models: write %s: unknown mode %d", p.Model, p.Mode)
	}
	return nil
}

func (t *bunTx) WriteIfNewer(ctx context.Context, p WriteIfNewerParams) ([]int64, error) {
	return t.s.writeIfNewer(ctx, t.tx, p)
}

func (t *bunTx) InsertValue(ctx context.Context, p InsertValueParams) (Record, error) {
	tbl, err := t.s.table(p.Model)
	if err != nil {
		return Record{}, err
	}
	vi, ok := tbl.(valueInserter)
	if !ok {
		return Record{}, fmt.Errorf("models: %s is not a typed model", p.Model)
	}
	return vi.insertValue(ctx, t.tx, p.Model, p.Value)
}

func (t *bunTx) Delete(ctx context.Context, p DeleteParams) error {
	tbl, err := t.s.table(p.Model)
	if err != nil {
		return err
	}
	if err := tbl.Delete(ctx, t.tx, p.Scope, p.Model, p.UIDs); err != nil {
		return err
	}
	if t.s.keepsFieldTimes(p.Model) {
		return deleteFieldTimes(ctx, t.tx, p.Scope, p.Model, p.UIDs)
	}
	return nil
}

func (t *bunTx) SetMembership(ctx context.Context, p SetMembershipParams) error {
	return SetMembership(ctx, t.tx, p)
}

func (t *bunTx) DropMemberships(ctx context.Context, p DropMembershipsParams) error {
	return DropMemberships(ctx, t.tx, p)
}

func (t *bunTx) LockForPurge(ctx context.Context, p LockForPurgeParams) error {
	return LockForPurge(ctx, t.tx, p.Scope, p.Horizon)
}

func (t *bunTx) InSavepoint(ctx context.Context, fn func() error) error {
	t.saves++
	name := fmt.Sprintf("ferry_sp%d", t.saves)
	defer func() { t.saves-- }()
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(); err != nil {
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
		return err
	}
	if _, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}
