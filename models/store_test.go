package models_test

import (
	"testing"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/models/storetest"
)

// TestStoreConformance runs the store conformance suite on both stores.
func TestStoreConformance(t *testing.T) {
	for _, kind := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			storetest.Run(t, func(t testing.TB) models.Store {
				return models.NewStore(synctest.Open(t, kind))
			})
		})
	}
}

// passThrough is the thinnest wrapper: the suite must pass through it
// unchanged, as through any wrapper that embeds models.Store.
type passThrough struct{ models.Store }

func TestWrappedStoreConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) models.Store {
		return passThrough{models.NewStore(synctest.OpenSQLite(t))}
	})
}
