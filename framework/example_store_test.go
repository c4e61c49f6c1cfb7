package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
)

// countingStore wraps a store and counts the records its pulls read: the
// shape of a metrics, tracing or caching wrapper. Embedding models.Store
// passes every other method through; the transactions it begins are
// wrapped too, since pulls read inside one.
type countingStore struct {
	models.Store
	read atomic.Int64
}

func (s *countingStore) BeginRead(ctx context.Context) (models.Tx, error) {
	tx, err := s.Store.BeginRead(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, s: s}, nil
}

type countingTx struct {
	models.Tx
	s *countingStore
}

func (t *countingTx) ReadFeed(ctx context.Context, p models.ReadFeedParams) (models.FeedResult, error) {
	res, err := t.Tx.ReadFeed(ctx, p)
	t.s.read.Add(int64(len(res.Records)))
	return res, err
}

// ExampleConfig_store runs an App on a store wrapper (Config.Store). A
// wrapper, like any store, should pass models/storetest.
func ExampleConfig_store() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	store := &countingStore{Store: models.NewStore(db)}

	schemas := fstest.MapFS{"todo.json": {Data: []byte(`{"type":"object"}`)}}
	app, err := framework.New(framework.Config{Store: store, Schemas: schemas})
	if err != nil {
		panic(err)
	}
	app.MustRegisterSchema("app.Todo", framework.ModelOptions{Schema: "todo.json"})
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	ann := framework.Principal{UserID: "ann"}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, uid := range []string{"t1", "t2", "t3"} {
		ch := &framework.Change{Model: "app.Todo", UID: uid, ModifyAt: framework.Time{Time: at}, Data: json.RawMessage(`{}`)}
		if _, err := app.Push(ctx, ann, []*framework.Change{ch}); err != nil {
			panic(err)
		}
	}
	page, err := app.Pull(ctx, ann, framework.PullRequest{Limit: 2})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(page.Changes), page.HasMore, store.read.Load())
	// Output: 2 true 2
}
