package models

import "github.com/uptrace/bun/migrate"

// registerKeys adds the fourth migration: the generic record table is
// keyed by owner, model and uid instead of model and uid, so two users may
// hold the same uid ([UpgradeKeys]; typed tables are upgraded when the
// framework creates them). Two owners may hold one uid afterwards, so the
// old key cannot come back: there is no down step.
func registerKeys(m *migrate.Migrations) error {
	return m.Register(genericStep(upgradeKeys))
}
