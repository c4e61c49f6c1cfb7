package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// Usage is what one scope (an owner) stores: its rows in every record
// table, tombstones included, and their size.
//
// A row's size is [RowOverhead] plus the bytes of its data columns as the
// store holds them as text: the data column of the generic table (the
// record's JSON text), and every non-base column of a typed model's table
// (server-only ones included; NULL counts 0). The counters live in the
// scope's row of ferry_scopes and are kept by triggers on every record
// table, inside the transaction that writes, so every write path (push,
// server inserts, purges, an application's own SQL) is counted exactly.
// Usage accounting can be turned off ([UsageAccounter]); the store then
// counts a scope's rows when asked.
type Usage struct {
	Records int64
	Bytes   int64
}

// RowOverhead is the fixed size counted for every row besides its data:
// the envelope (uid, owner, times, flags, version) and index entries,
// roughly.
const RowOverhead = 128

// UsageGuard makes a store-decided write conditional on usage: the
// statement that takes the push's span of versions writes nothing unless
// the scope's usage plus Growth stays within Limit in both counts.
type UsageGuard struct {
	// Growth is an upper bound of what the push adds.
	Growth Usage
	// Limit is the quota; a zero field is unlimited.
	Limit Usage
}

// ErrOverQuota reports a guarded store-decided write that wrote nothing
// because the push might take its scope over the quota; the caller
// decides change by change instead.
var ErrOverQuota = errors.New("models: the push might exceed the scope's quota")

// guardArgs returns the guard's parameters: whether it applies, and the
// largest usage that still leaves room for the growth.
func (g *UsageGuard) args() (on bool, records, bytes int64) {
	if g == nil {
		return false, 0, 0
	}
	room := func(limit, growth int64) int64 {
		if limit <= 0 {
			return math.MaxInt64
		}
		return limit - growth // may be negative: nothing fits
	}
	return true, room(g.Limit.Records, g.Growth.Records), room(g.Limit.Bytes, g.Growth.Bytes)
}

// ReadUsage returns the usage of scope (zero for a scope that never
// wrote).
func ReadUsage(ctx context.Context, idb bun.IDB, scope string) (Usage, error) {
	var u Usage
	err := idb.NewRaw(`SELECT records, bytes FROM ferry_scopes WHERE scope = ?`, scope).Scan(ctx, &u.Records, &u.Bytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Usage{}, fmt.Errorf("read usage of scope %q: %w", scope, err)
	}
	return u, nil
}

// sizeExpr is the SQL size of the row alias r of a table with data
// columns cols (see [Usage]).
func sizeExpr(idb bun.IDB, r string, cols []string) string {
	parts := []string{fmt.Sprint(RowOverhead)}
	for _, c := range cols {
		if IsPostgres(idb) {
			parts = append(parts, fmt.Sprintf("coalesce(octet_length(CAST(%s.%s AS text)), 0)", r, quote(c)))
		} else {
			parts = append(parts, fmt.Sprintf("coalesce(length(CAST(%s.%s AS BLOB)), 0)", r, quote(c)))
		}
	}
	return strings.Join(parts, " + ")
}

// usageColumns are the columns of t whose size counts: all but the base
// columns.
func usageColumns(t *schema.Table) []string {
	var cols []string
	for _, f := range t.Fields {
		if !IsBaseColumn(f.Name) && f.Name != "model" {
			cols = append(cols, f.Name)
		}
	}
	return cols
}

// EnsureUsageTriggers creates the triggers that keep the usage counters
// for the record table of model (a pointer to its struct) when they do
// not exist yet, in the database's accounting state ([UsageAccounter]):
// when it keeps the counters, the rows the table already holds are added
// to them in the same transaction (on PostgreSQL creating a trigger locks
// the table against writes until commit, so no write falls between the
// count and the trigger); when it does not, PostgreSQL's triggers are
// created disabled and SQLite's not at all.
func EnsureUsageTriggers(ctx context.Context, db bun.IDB, model any) error {
	t := db.Dialect().Tables().Get(reflect.TypeOf(model).Elem())
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		counting, err := readUsageState(ctx, tx)
		if err != nil {
			return err
		}
		return ensureUsageTriggers(ctx, tx, t, counting)
	})
}

// ensureUsageTriggers creates t's usage triggers when they are missing:
// counting (back-filling the counters from t's rows) or not.
func ensureUsageTriggers(ctx context.Context, tx bun.Tx, t *schema.Table, counting bool) error {
	if !counting && !IsPostgres(tx) {
		return nil
	}
	created, err := createUsageTriggersIfMissing(ctx, tx, t)
	if err != nil || !created {
		return err
	}
	q := backfillSQL(tx, t) // rows stored before the triggers existed
	if !counting {
		q = `ALTER TABLE ` + string(t.SQLName) + ` DISABLE TRIGGER ferry_usage_ins, DISABLE TRIGGER ferry_usage_upd, DISABLE TRIGGER ferry_usage_del`
	}
	if _, err := tx.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create usage triggers on %s: %w", t.Name, err)
	}
	return nil
}

// createUsageTriggers creates t's usage triggers when they are missing,
// without counting t's rows.
func createUsageTriggers(ctx context.Context, tx bun.Tx, t *schema.Table) error {
	_, err := createUsageTriggersIfMissing(ctx, tx, t)
	return err
}

func createUsageTriggersIfMissing(ctx context.Context, tx bun.Tx, t *schema.Table) (bool, error) {
	table := string(t.SQLName)
	cols := usageColumns(t)
	var have int
	var q string
	if IsPostgres(tx) {
		q = `SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(?) AND tgname = 'ferry_usage_ins'`
	} else {
		q = `SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?`
	}
	arg := table
	if !IsPostgres(tx) {
		arg = "ferry_usage_" + t.Name + "_ins"
	}
	if err := tx.NewRaw(q, arg).Scan(ctx, &have); err != nil {
		return false, fmt.Errorf("look for usage triggers on %s: %w", t.Name, err)
	}
	if have > 0 {
		return false, nil
	}
	var stmts []string
	if IsPostgres(tx) {
		stmts = postgresUsageTriggers(tx, t.Name, table, cols)
	} else {
		stmts = sqliteUsageTriggers(tx, t.Name, table, cols)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return false, fmt.Errorf("create usage triggers on %s: %w", t.Name, err)
		}
	}
	return true, nil
}

// postgresUsageTriggers: one statement-level trigger per event, reading
// the statement's rows from transition tables, so a bulk write of 500
// rows updates the scope's counters once, not 500 times.
func postgresUsageTriggers(idb bun.IDB, name, table string, cols []string) []string {
	fn := quote("ferry_usage_" + name)
	add := func(sel string) string {
		return `INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) ` + sel + `
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;`
	}
	// An upsert fires both the INSERT and the UPDATE statement trigger,
	// and one of them always has no rows: it returns at once.
	body := `BEGIN
	IF TG_OP <> 'DELETE' THEN
		IF NOT EXISTS (SELECT FROM ferry_new) THEN -- no ferry_new on DELETE
			RETURN NULL;
		END IF;
	END IF;
	IF TG_OP = 'INSERT' THEN
		` + add(`SELECT n.owner, 0, 0, count(*), sum(`+sizeExpr(idb, "n", cols)+`) FROM ferry_new AS n GROUP BY n.owner`) + `
	ELSIF TG_OP = 'UPDATE' THEN
		` + add(`SELECT d.owner, 0, 0, sum(d.r), sum(d.b) FROM (
			SELECT n.owner, 1 AS r, `+sizeExpr(idb, "n", cols)+` AS b FROM ferry_new AS n
			UNION ALL
			SELECT o.owner, -1, -(`+sizeExpr(idb, "o", cols)+`) FROM ferry_old AS o) AS d
		GROUP BY d.owner HAVING sum(d.r) <> 0 OR sum(d.b) <> 0`) + `
	ELSE
		` + add(`SELECT o.owner, 0, 0, -count(*), -sum(`+sizeExpr(idb, "o", cols)+`) FROM ferry_old AS o GROUP BY o.owner`) + `
	END IF;
	RETURN NULL;
END`
	return []string{
		`CREATE OR REPLACE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $ferry$` + body + `$ferry$`,
		`CREATE TRIGGER ferry_usage_ins AFTER INSERT ON ` + table + ` REFERENCING NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ` + fn + `()`,
		`CREATE TRIGGER ferry_usage_upd AFTER UPDATE ON ` + table + ` REFERENCING OLD TABLE AS ferry_old NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ` + fn + `()`,
		`CREATE TRIGGER ferry_usage_del AFTER DELETE ON ` + table + ` REFERENCING OLD TABLE AS ferry_old FOR EACH STATEMENT EXECUTE FUNCTION ` + fn + `()`,
	}
}

// sqliteUsageTriggers: SQLite has row-level triggers only.
func sqliteUsageTriggers(idb bun.IDB, name, table string, cols []string) []string {
	trig := func(event string) string { return quote("ferry_usage_" + name + "_" + event) }
	newSize, oldSize := sizeExpr(idb, "NEW", cols), sizeExpr(idb, "OLD", cols)
	addNew := `INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, ` + newSize + ` WHERE %s
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;`
	return []string{
		`CREATE TRIGGER ` + trig("ins") + ` AFTER INSERT ON ` + table + ` BEGIN
		` + fmt.Sprintf(addNew, "true") + `
		END`,
		`CREATE TRIGGER ` + trig("upd") + ` AFTER UPDATE ON ` + table + ` BEGIN
		UPDATE ferry_scopes SET bytes = bytes + (` + newSize + `) - (` + oldSize + `) WHERE scope = NEW.owner AND NEW.owner = OLD.owner;
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (` + oldSize + `) WHERE scope = OLD.owner AND NEW.owner <> OLD.owner;
		` + fmt.Sprintf(addNew, "NEW.owner <> OLD.owner") + `
		END`,
		`CREATE TRIGGER ` + trig("del") + ` AFTER DELETE ON ` + table + ` BEGIN
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (` + oldSize + `) WHERE scope = OLD.owner;
		END`,
	}
}
