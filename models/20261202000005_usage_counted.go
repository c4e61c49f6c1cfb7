package models

import "github.com/uptrace/bun/migrate"

// registerUsageCounted adds the fifth migration: on PostgreSQL the generic
// table's usage trigger function is replaced by one that skips the rows a
// store-decided write counted itself (typed tables' functions are
// replaced when the framework creates their tables).
func registerUsageCounted(m *migrate.Migrations) error {
	return m.Register(genericStep(ensureUsageTriggers))
}
