package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
)

// TestUsageAccountingFromEnv: FERRY_USAGE_ACCOUNTING chooses the
// accounting; the example's default quota keeps it on, off needs the
// quota variables at 0, and a bad value names the variable.
func TestUsageAccountingFromEnv(t *testing.T) {
	for _, c := range []struct {
		name, accounting, quota string
		on                      bool
		err                     string
	}{
		{"default quota", "", "", true, ""},
		{"no quota", "", "0", false, ""},
		{"on without quota", "on", "0", true, ""},
		{"off without quota", "off", "0", false, ""},
		{"off with the default quota", "off", "", false, "UsageOff but a quota is configured"},
		{"bad", "sometimes", "0", false, "FERRY_USAGE_ACCOUNTING"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("FERRY_USAGE_ACCOUNTING", c.accounting)
			t.Setenv("FERRY_QUOTA_RECORDS", c.quota)
			t.Setenv("FERRY_QUOTA_BYTES", c.quota)
			cfg := server.ConfigFromEnv()
			cfg.DataDir, cfg.JWTSecret = t.TempDir(), servertest.Secret
			srv, err := server.New(context.Background(), cfg, synctest.OpenSQLite(t))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("New: %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			if got := srv.App.UsageAccountingOn(); got != c.on {
				t.Fatalf("usage accounting on: %v, want %v", got, c.on)
			}
		})
	}
}
