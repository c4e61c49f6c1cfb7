package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// UsageAccounter is the optional interface of a [Store] whose exact usage
// counters ([Usage]) can be turned off: keeping them costs every write a
// second update of its scope's row (about 15 % of single-record writes on
// PostgreSQL), and only quotas need them. The bun store implements it.
//
// Whether the counters are kept is a fact of the database, shared by
// every process on it (the record tables' usage triggers run or not).
// The rule for several processes (replicas) on one database:
//
//   - A process that needs the counters (SetUsageAccounting with On)
//     turns them on when they are off, recounting every scope from the
//     records in the transaction that turns the triggers on, with writes
//     held back until it commits, so no write is missed. On PostgreSQL it
//     then holds a shared advisory lock on a connection of its own until
//     the returned hold is closed.
//   - A process that does not need them (On false) turns them off only
//     when no process holds that lock; otherwise they stay on
//     ([UsageAccountingState.KeptOn]). So the counters are never off
//     while a process that needs them runs, and a rolling deploy from
//     quotas to none turns them off at the first start after the last
//     process with quotas stopped.
//
// A store whose process does not need the counters answers
// [Reader.Usage] by counting the scope's rows (a scan of its index range
// in every record table: slower, as exact), whatever the database does,
// and [Reservation.Usage] is zero. SQLite has no advisory locks: its file
// is served by one process, and the last to start decides.
//
// Call it after [Store.Migrate] (which keeps new tables' triggers in the
// database's state) and before serving.
type UsageAccounter interface {
	SetUsageAccounting(ctx context.Context, p SetUsageAccountingParams) (UsageAccountingState, error)
}

// SetUsageAccountingParams says whether this process needs exact usage
// counters.
type SetUsageAccountingParams struct {
	On bool
}

// UsageAccountingState is what [UsageAccounter.SetUsageAccounting] left.
type UsageAccountingState struct {
	// Counting reports whether the database keeps the counters now.
	Counting bool
	// Recounted reports that they were off and have been recounted.
	Recounted bool
	// KeptOn reports that off was asked but another process that needs
	// the counters holds them on.
	KeptOn bool
	// Hold, when set, keeps other processes from turning the counters
	// off until it is closed (PostgreSQL, On): close it when the process
	// stops serving.
	Hold interface{ Close() error }
}

// The row of ferry_settings that records the usage accounting state.
const (
	usageSetting = "usage_accounting"
	usageOn      = "on"
	usageOff     = "off"
)

// usageHoldKey is the PostgreSQL advisory lock of processes that need the
// counters, per database and schema: "usag" and the oid of the schema's
// ferry_scopes, so tests in schemas of one database do not share it.
const usageHoldKey = `((x'75736167'::bigint << 32) | 'ferry_scopes'::regclass::oid::bigint)`

// readUsageState reports whether the database keeps the usage counters
// (true before the settings migration, when they always were).
func readUsageState(ctx context.Context, idb bun.IDB) (bool, error) {
	var v string
	err := idb.NewRaw(`SELECT value FROM ferry_settings WHERE name = ?`, usageSetting).Scan(ctx, &v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("read usage accounting state: %w", err)
	}
	return v != usageOff, nil
}

func writeUsageState(ctx context.Context, idb bun.IDB, on bool) error {
	v := usageOff
	if on {
		v = usageOn
	}
	if _, err := idb.NewRaw(`INSERT INTO ferry_settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, usageSetting, v).Exec(ctx); err != nil {
		return fmt.Errorf("record usage accounting %s: %w", v, err)
	}
	return nil
}

// sqlTabler is a Table that names its SQL table (both built-in kinds).
type sqlTabler interface {
	sqlTable(idb bun.IDB) *schema.Table
}

func (GenericTable) sqlTable(idb bun.IDB) *schema.Table {
	return idb.Dialect().Tables().Get(reflect.TypeFor[GenericRecord]())
}

func (*TypedTable[T, P]) sqlTable(idb bun.IDB) *schema.Table {
	return idb.Dialect().Tables().Get(reflect.TypeFor[T]())
}

// usageTables are the record tables whose rows count: the generic table
// (always, as the migrations keep its counters) and every registered
// typed one, each once.
func (s *bunStore) usageTables() []*schema.Table {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*schema.Table{GenericTable{}.sqlTable(s.db)}
	seen := map[string]bool{out[0].Name: true}
	for _, name := range s.order {
		st, ok := s.tables[name].(sqlTabler)
		if !ok {
			continue
		}
		t := st.sqlTable(s.db)
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	return out
}

// countUsage counts scope's rows in every record table, by the
// definition of [Usage]: what the counters hold when they are kept.
func (s *bunStore) countUsage(ctx context.Context, idb bun.IDB, scope string) (Usage, error) {
	var parts []string
	var args []any
	for _, t := range s.usageTables() {
		parts = append(parts, `SELECT count(*) AS n, coalesce(sum(`+sizeExpr(idb, "r", usageColumns(t))+`), 0) AS b FROM `+
			string(t.SQLName)+` AS r WHERE r.owner = ?`)
		args = append(args, scope)
	}
	var u Usage
	q := `SELECT coalesce(sum(u.n), 0), coalesce(sum(u.b), 0) FROM (` + strings.Join(parts, " UNION ALL ") + `) AS u`
	if err := idb.NewRaw(q, args...).Scan(ctx, &u.Records, &u.Bytes); err != nil {
		return Usage{}, fmt.Errorf("count usage of scope %q: %w", scope, err)
	}
	return u, nil
}

// readUsage answers Usage: the counters when this process keeps them,
// else a count.
func (s *bunStore) readUsage(ctx context.Context, idb bun.IDB, scope string) (Usage, error) {
	if s.usageOff.Load() {
		return s.countUsage(ctx, idb, scope)
	}
	return ReadUsage(ctx, idb, scope)
}

var _ UsageAccounter = (*bunStore)(nil)

func (s *bunStore) SetUsageAccounting(ctx context.Context, p SetUsageAccountingParams) (UsageAccountingState, error) {
	if !s.pg {
		return s.setUsageSQLite(ctx, p)
	}
	// One connection for the whole step: it takes the migration lock (so
	// processes starting together take turns with each other and with
	// Migrate), and, when on, keeps the hold.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return UsageAccountingState{}, fmt.Errorf("usage accounting: %w", err)
	}
	kept := false
	defer func() {
		if !kept {
			conn.Close()
		}
	}()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrateLockKey); err != nil {
		return UsageAccountingState{}, fmt.Errorf("usage accounting: take advisory lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrateLockKey) //nolint:errcheck // released with the session anyway
	on, err := readUsageState(ctx, conn)
	if err != nil {
		return UsageAccountingState{}, err
	}
	if p.On {
		st := UsageAccountingState{Counting: true}
		if !on {
			if err := s.switchUsagePostgres(ctx, conn, true); err != nil {
				return UsageAccountingState{}, err
			}
			st.Recounted = true
		}
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock_shared("+usageHoldKey+")"); err != nil {
			return UsageAccountingState{}, fmt.Errorf("usage accounting: take the hold: %w", err)
		}
		s.usageOff.Store(false)
		kept = true
		st.Hold = &usageHold{conn: &conn}
		return st, nil
	}
	s.usageOff.Store(true)
	if !on {
		return UsageAccountingState{}, nil
	}
	var free bool
	if err := conn.NewRaw("SELECT pg_try_advisory_lock("+usageHoldKey+")").Scan(ctx, &free); err != nil {
		return UsageAccountingState{}, fmt.Errorf("usage accounting: look for processes that need it: %w", err)
	}
	if !free {
		return UsageAccountingState{Counting: true, KeptOn: true}, nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+usageHoldKey+")") //nolint:errcheck // released with the session anyway
	if err := s.switchUsagePostgres(ctx, conn, false); err != nil {
		return UsageAccountingState{}, err
	}
	return UsageAccountingState{}, nil
}

// switchUsagePostgres turns the usage triggers of every record table on
// (recounting) or off, in one transaction. It first locks ferry_scopes
// against writes: every write path takes its scope's row there before it
// writes a record table, so this waits for writes in flight, holds new
// ones back until commit, and cannot deadlock with them. ALTER TABLE
// then locks each record table against writes too (writes of an
// application's own SQL), so the recount sees every committed row and
// the triggers count every later one.
func (s *bunStore) switchUsagePostgres(ctx context.Context, conn bun.Conn, on bool) error {
	return conn.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE ferry_scopes IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("usage accounting: lock ferry_scopes: %w", err)
		}
		verb := "DISABLE"
		if on {
			verb = "ENABLE"
		}
		tables := s.usageTables()
		names, err := triggeredTables(ctx, tx, tables)
		if err != nil {
			return err
		}
		for _, name := range names {
			q := `ALTER TABLE ` + quote(name) + ` ` + verb + ` TRIGGER ferry_usage_ins, ` + verb + ` TRIGGER ferry_usage_upd, ` + verb + ` TRIGGER ferry_usage_del`
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("usage accounting: %s the triggers of %s: %w", strings.ToLower(verb), name, err)
			}
		}
		if on {
			if err := recountUsage(ctx, tx, tables); err != nil {
				return err
			}
		}
		return writeUsageState(ctx, tx, on)
	})
}

// triggeredTables lists the tables of the schema that have usage
// triggers, and checks that each is among tables: a table whose model
// this process does not register (a newer release's, on a shared
// database) cannot be recounted, so turning accounting on or off would
// leave it counting, or not, against the rest.
func triggeredTables(ctx context.Context, tx bun.Tx, tables []*schema.Table) ([]string, error) {
	var names []string
	if err := tx.NewRaw(`SELECT c.relname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
		WHERE t.tgname = 'ferry_usage_ins' AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'ferry_scopes'::regclass)
		ORDER BY c.relname`).Scan(ctx, &names); err != nil {
		return nil, fmt.Errorf("usage accounting: list the record tables: %w", err)
	}
	known := map[string]bool{}
	for _, t := range tables {
		known[t.Name] = true
	}
	for _, n := range names {
		if !known[n] {
			return nil, fmt.Errorf("usage accounting: table %s keeps usage counters but no model registered here is stored in it; "+
				"register its model (every replica of a database registers the same models) or drop the table", n)
		}
	}
	return names, nil
}

// recountUsage sets every scope's counters from the rows of tables.
func recountUsage(ctx context.Context, tx bun.Tx, tables []*schema.Table) error {
	if _, err := tx.ExecContext(ctx, `UPDATE ferry_scopes SET records = 0, bytes = 0 WHERE records <> 0 OR bytes <> 0`); err != nil {
		return fmt.Errorf("usage accounting: reset counters: %w", err)
	}
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, backfillSQL(tx, t)); err != nil {
			return fmt.Errorf("usage accounting: recount %s: %w", t.Name, err)
		}
	}
	return nil
}

// backfillSQL adds the rows of t to their scopes' counters.
func backfillSQL(idb bun.IDB, t *schema.Table) string {
	return `INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes)
SELECT r.owner, 0, 0, count(*), sum(` + sizeExpr(idb, "r", usageColumns(t)) + `) FROM ` + string(t.SQLName) + ` AS r WHERE true GROUP BY r.owner
ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes`
}

// setUsageSQLite creates the row triggers and recounts (on) or drops
// them (off), in one transaction; SQLite writes one at a time, so nothing
// falls between. SQLite cannot disable a trigger.
func (s *bunStore) setUsageSQLite(ctx context.Context, p SetUsageAccountingParams) (UsageAccountingState, error) {
	s.usageOff.Store(!p.On)
	var st UsageAccountingState
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		on, err := readUsageState(ctx, tx)
		if err != nil || on == p.On {
			st.Counting = on
			return err
		}
		tables := s.usageTables()
		for _, t := range tables {
			if p.On {
				err = createUsageTriggers(ctx, tx, t)
			} else {
				err = dropSQLiteUsageTriggers(ctx, tx, t)
			}
			if err != nil {
				return err
			}
		}
		if p.On {
			if err := recountUsage(ctx, tx, tables); err != nil {
				return err
			}
		}
		st.Counting, st.Recounted = p.On, p.On
		return writeUsageState(ctx, tx, p.On)
	})
	if err != nil {
		return UsageAccountingState{}, err
	}
	return st, nil
}

func dropSQLiteUsageTriggers(ctx context.Context, tx bun.Tx, t *schema.Table) error {
	for _, ev := range []string{"ins", "upd", "del"} {
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+quote("ferry_usage_"+t.Name+"_"+ev)); err != nil {
			return fmt.Errorf("usage accounting: drop the triggers of %s: %w", t.Name, err)
		}
	}
	return nil
}

// usageHold is the connection that holds the shared advisory lock of a
// process that needs the counters.
type usageHold struct {
	mu   sync.Mutex
	conn *bun.Conn
}

// Close releases the hold (and the connection); later calls do nothing.
func (h *usageHold) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return nil
	}
	_, err := h.conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock_shared("+usageHoldKey+")")
	err = errors.Join(err, h.conn.Close())
	h.conn = nil
	return err
}
