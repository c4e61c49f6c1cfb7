package watermelon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/uptrace/bun"
)

// TestDeletionFloodStopsAtTheQuota: one WatermelonDB push of 20,000
// deletions of ids the server never had (each a new tombstone row) stops
// at the user's record quota: the rest are listed in rejected with code
// quota_exceeded, and the user's records and everyone else's pushes are
// unaffected.
func TestDeletionFloodStopsAtTheQuota(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		const quota = 1000
		app, hs := mountApp(t, framework.Config{DB: db, Quota: framework.Quota{MaxRecords: quota},
			Schemas: fstest.MapFS{"task.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string"}}}`)}}},
			map[string]framework.ModelOptions{"data.Task": {Schema: "task.json"}}, map[string]string{"tasks": "data.Task"})

		var p pulled
		call(t, "GET", hs.URL+"/sync/watermelon?last_pulled_at=null", "", &p)
		if st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, p.Timestamp),
			`{"tasks":{"created":[{"id":"keep","title":"mine"}]}}`, nil); st != 200 {
			t.Fatalf("create: %d", st)
		}
		ids := make([]string, 20000)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"gone%05d"`, i)
		}
		var answer struct {
			OK       bool `json:"ok"`
			Rejected []struct {
				Table  string                 `json:"table"`
				ID     string                 `json:"id"`
				Code   string                 `json:"code"`
				Errors []framework.FieldError `json:"errors"`
			} `json:"rejected"`
		}
		body := `{"tasks":{"deleted":[` + strings.Join(ids, ",") + `]}}`
		if st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, p.Timestamp), body, &answer); st != 200 {
			t.Fatalf("flood: %d", st)
		}
		if len(answer.Rejected) != 20000-(quota-1) {
			t.Fatalf("%d rejected, want %d", len(answer.Rejected), 20000-(quota-1))
		}
		r := answer.Rejected[0]
		if r.Table != "tasks" || r.Code != framework.CodeQuotaExceeded || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "quota") {
			t.Fatalf("rejection: %+v", r)
		}
		u, err := app.Usage(context.Background(), "ann")
		if err != nil {
			t.Fatal(err)
		}
		if u.Records != quota {
			t.Fatalf("ann stores %d records, want the quota, %d", u.Records, quota)
		}
		rec, err := app.Get(context.Background(), "ann", "data.Task", "keep")
		if err != nil || rec.IsDeleted || !json.Valid(rec.Data) || !strings.Contains(string(rec.Data), "mine") {
			t.Fatalf("ann's record: %+v %v", rec, err)
		}
		// Deleting a stored record still works at the quota.
		call(t, "GET", hs.URL+"/sync/watermelon?last_pulled_at=null", "", &p)
		answer.Rejected = nil
		if st := call(t, "POST", fmt.Sprintf("%s/sync/watermelon?last_pulled_at=%d", hs.URL, p.Timestamp),
			`{"tasks":{"deleted":["keep"]}}`, &answer); st != 200 || len(answer.Rejected) != 0 {
			t.Fatalf("delete at the quota: %d %+v", st, answer.Rejected)
		}
	})
}
