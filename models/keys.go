package models

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// Records are identified by owner, model and uid: two users may hold the
// same uid in the same model. Releases before 2026-12-02 keyed a typed
// table by uid alone and the generic table by model and uid, so a second
// user's record with a taken uid was refused. upgradeKeys moves such a
// table to the key its model declares now.

// UpgradeKeys gives the record table of model (a pointer to its struct) the
// primary key the struct declares (owner first) when the table was created
// with another one by an earlier release. It does nothing on a table whose
// key is already right. On PostgreSQL the key is replaced in place; SQLite
// cannot alter a primary key, so the table is rebuilt (renamed, created
// anew, copied, dropped) and its indexes and triggers are created again
// from their stored definitions.
func UpgradeKeys(ctx context.Context, db bun.IDB, model any) error {
	t := db.Dialect().Tables().Get(reflect.TypeOf(model).Elem())
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return upgradeKeys(ctx, tx, t)
	})
}

func upgradeKeys(ctx context.Context, tx bun.Tx, t *schema.Table) error {
	want := make([]string, len(t.PKs))
	for i, f := range t.PKs {
		want[i] = f.Name
	}
	have, err := primaryKey(ctx, tx, t)
	if err != nil {
		return fmt.Errorf("read the primary key of %s: %w", t.Name, err)
	}
	if len(have) == 0 || slices.Equal(sorted(have), sorted(want)) {
		return nil // no table yet, or nothing to do
	}
	if IsPostgres(tx) {
		err = rekeyPostgres(ctx, tx, t, want)
	} else {
		err = rebuildSQLite(ctx, tx, t)
	}
	if err != nil {
		return fmt.Errorf("change the primary key of %s from (%s) to (%s): %w",
			t.Name, strings.Join(have, ", "), strings.Join(want, ", "), err)
	}
	return nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// primaryKey returns the columns of t's primary key as the store has it,
// none when the table does not exist.
func primaryKey(ctx context.Context, tx bun.Tx, t *schema.Table) ([]string, error) {
	var cols []string
	var err error
	if IsPostgres(tx) {
		err = tx.NewRaw(`SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = to_regclass(?) AND i.indisprimary ORDER BY a.attname`, string(t.SQLName)).Scan(ctx, &cols)
	} else {
		err = tx.NewRaw(`SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, t.Name).Scan(ctx, &cols)
	}
	return cols, err
}

func rekeyPostgres(ctx context.Context, tx bun.Tx, t *schema.Table, want []string) error {
	var name string
	if err := tx.NewRaw(`SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(?) AND contype = 'p'`,
		string(t.SQLName)).Scan(ctx, &name); err != nil {
		return fmt.Errorf("find the constraint: %w", err)
	}
	_, err := tx.ExecContext(ctx, "ALTER TABLE "+string(t.SQLName)+" DROP CONSTRAINT "+quote(name)+
		", ADD PRIMARY KEY ("+quoteAll(want)+")")
	return err
}

// rebuildSQLite is SQLite's documented way to change what ALTER TABLE
// cannot: the old table is renamed, the new one created from the model,
// the rows copied, the old table dropped, and the indexes and triggers the
// old table had (the feed index, the usage triggers, an application's
// own) created again from the SQL SQLite stored for them. The rows are
// copied before the triggers exist again, so the usage counters stay as
// they were.
func rebuildSQLite(ctx context.Context, tx bun.Tx, t *schema.Table) error {
	var defs []string
	if err := tx.NewRaw(`SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name`,
		t.Name).Scan(ctx, &defs); err != nil {
		return fmt.Errorf("read indexes and triggers: %w", err)
	}
	var old []string
	if err := tx.NewRaw(`SELECT name FROM pragma_table_info(?)`, t.Name).Scan(ctx, &old); err != nil {
		return fmt.Errorf("read columns: %w", err)
	}
	var cols []string
	for _, f := range t.Fields {
		if slices.Contains(old, f.Name) {
			cols = append(cols, f.Name)
		}
	}
	kept := quote(t.Name + "__ferry_rekey")
	if _, err := tx.ExecContext(ctx, "ALTER TABLE "+string(t.SQLName)+" RENAME TO "+kept); err != nil {
		return err
	}
	if _, err := tx.NewCreateTable().Model(reflect.New(t.Type).Interface()).Exec(ctx); err != nil {
		return fmt.Errorf("create the new table: %w", err)
	}
	list := quoteAll(cols)
	stmts := []string{
		"INSERT INTO " + string(t.SQLName) + " (" + list + ") SELECT " + list + " FROM " + kept,
		"DROP TABLE " + kept,
	}
	for _, s := range append(stmts, defs...) {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}
