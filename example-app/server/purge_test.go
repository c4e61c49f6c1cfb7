package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
)

// TestTombstoneRetentionSetting: FERRY_TOMBSTONE_RETENTION reaches the
// App (which then purges on its own); a bad value is refused by name.
func TestTombstoneRetentionSetting(t *testing.T) {
	for v, want := range map[string]time.Duration{"2160h": 2160 * time.Hour, "off": 0, "": 0} {
		t.Setenv("FERRY_TOMBSTONE_RETENTION", v)
		cfg := servertest.Config(t)
		cfg.TombstoneRetention = server.ConfigFromEnv().TombstoneRetention
		st := servertest.StartWith(t, synctest.OpenSQLite(t), cfg)
		if got := st.Server.App.Config().TombstoneRetention; got != want {
			t.Errorf("FERRY_TOMBSTONE_RETENTION=%q: the App keeps tombstones %v, want %v", v, got, want)
		}
		st.Server.Close()
	}
	for _, v := range []string{"90d", "-1h", "soon"} {
		t.Setenv("FERRY_TOMBSTONE_RETENTION", v)
		cfg := server.ConfigFromEnv()
		cfg.DataDir = t.TempDir()
		_, err := server.New(context.Background(), cfg, synctest.OpenSQLite(t))
		if err == nil || !strings.Contains(err.Error(), "FERRY_TOMBSTONE_RETENTION") {
			t.Errorf("FERRY_TOMBSTONE_RETENTION=%q: %v, want an error naming it", v, err)
		}
	}
}
