package framework_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// TestUsageAccountingConfig: UsageAuto keeps the counters exactly when a
// quota is configured; UsageOff with a quota, or an unknown value, is an
// error at New that names the field.
func TestUsageAccountingConfig(t *testing.T) {
	db := synctest.OpenSQLite(t)
	quotaFor := func(context.Context, string) (framework.Quota, error) { return framework.Quota{}, nil }
	for _, c := range []struct {
		name string
		cfg  framework.Config
		on   bool
		err  string
	}{
		{"auto, no quota", framework.Config{}, false, ""},
		{"auto, records", framework.Config{Quota: framework.Quota{MaxRecords: 10}}, true, ""},
		{"auto, bytes", framework.Config{Quota: framework.Quota{MaxBytes: 10}}, true, ""},
		{"auto, QuotaFor", framework.Config{QuotaFor: quotaFor}, true, ""},
		{"on", framework.Config{UsageAccounting: framework.UsageOn}, true, ""},
		{"off", framework.Config{UsageAccounting: framework.UsageOff}, false, ""},
		{"off with a quota", framework.Config{UsageAccounting: framework.UsageOff, Quota: framework.Quota{MaxRecords: 10}}, false, "Config.UsageAccounting is UsageOff but a quota is configured"},
		{"off with QuotaFor", framework.Config{UsageAccounting: framework.UsageOff, QuotaFor: quotaFor}, false, "Config.UsageAccounting is UsageOff but a quota is configured"},
		{"unknown", framework.Config{UsageAccounting: 7}, false, "Config.UsageAccounting 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.DB = db
			app, err := framework.New(c.cfg)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("New: %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := app.UsageAccountingOn(); got != c.on {
				t.Fatalf("UsageAccountingOn %v, want %v", got, c.on)
			}
		})
	}
}

// TestUsageAccountingReplicas: replicas on one PostgreSQL with different
// configurations. One with a quota keeps the counters on, and one without
// cannot turn them off while it runs; once it has closed, the next
// replica without a quota turns them off (its writes leave the counters
// alone, its Usage counts); a replica with a quota that starts while
// others push turns them on again, recounted exactly.
func TestUsageAccountingReplicas(t *testing.T) {
	ctx := context.Background()
	url := synctest.PostgresURL(t)
	open := func() *bun.DB {
		db, err := models.OpenPostgres(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	at := time.Now().Add(-time.Hour).UTC()
	exact := func(app *framework.App, owner, when string) framework.Usage {
		t.Helper()
		got := checkUsage(t, app, owner, when)
		if c := counters(t, app.DB(), owner); framework.Usage(c) != got {
			t.Fatalf("%s: the counters of %s hold %+v, the tables %+v", when, owner, c, got)
		}
		return got
	}

	a := newQuotaApp(t, open(), framework.Config{Quota: framework.Quota{MaxRecords: 6}})
	t.Cleanup(func() { a.Close() })
	mustPush(t, a, "ann", item("a1", at, 1), item("a2", at, 2))
	b := newQuotaApp(t, open(), framework.Config{})
	if b.UsageAccountingOn() {
		t.Fatal("b has no quota, yet keeps the counters itself")
	}
	// b could not turn them off: its writes are counted, and a's quota
	// is checked against them.
	mustPush(t, b, "ann", item("a3", at, 3), item("a4", at, 4))
	exact(a, "ann", "after b's writes")
	if got := statusCodes(mustPush(t, a, "ann", item("a5", at, 5), item("a6", at, 6), item("a7", at, 7))); got != "applied applied rejected:quota_exceeded" {
		t.Fatalf("a's quota after b's writes: %s", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// Nobody needs the counters now: c turns them off.
	c := newQuotaApp(t, open(), framework.Config{})
	frozen := counters(t, c.DB(), "ann")
	mustPush(t, c, "ann", item("a8", at, 8), tombstone("a1", at.Add(time.Minute)))
	mustPush(t, c, "bob", item("b1", at, 1))
	if got := counters(t, c.DB(), "ann"); got != frozen {
		t.Fatalf("accounting off: the counters of ann went from %+v to %+v", frozen, got)
	}
	if u := checkUsage(t, c, "ann", "off"); u.Records != 7 {
		t.Fatalf("off: ann %+v, want 7 records", u)
	}

	// d, with a quota, starts while c's users push.
	stop := make(chan struct{})
	progress := make(chan struct{}, 64)
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	for w, user := range []string{"ann", "bob", "cat"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ch := item(fmt.Sprintf("w%d", i%9), at.Add(time.Duration(i)*time.Second), i*w)
				if i%4 == 3 {
					ch = tombstone(fmt.Sprintf("w%d", i%9-1), at.Add(time.Duration(i)*time.Second))
				}
				if _, err := c.Push(ctx, framework.Principal{UserID: user}, []*framework.Change{ch}); err != nil {
					errs <- err
					return
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	waitPushes := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-progress:
			case err := <-errs:
				t.Fatal(err)
			}
		}
	}
	waitPushes(10)
	d := newQuotaApp(t, open(), framework.Config{Quota: framework.Quota{MaxRecords: 1000}})
	t.Cleanup(func() { d.Close() })
	waitPushes(10)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, u := range []string{"ann", "bob", "cat"} {
		if got := exact(d, u, "after d's recount among c's pushes"); got.Records == 0 {
			t.Fatalf("%s stores nothing", u)
		}
	}
}
