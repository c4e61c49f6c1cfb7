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
