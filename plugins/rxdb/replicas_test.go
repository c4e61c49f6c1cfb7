package rxdb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/realtime"
)

// TestStreamAcrossReplicas: two replicas on one PostgreSQL, each with the
// realtime plugin's PostgreSQL bus as the RxDB streams' source of hints.
// A push served by one reaches a stream on the other as documents; more
// than one event may carry arrives as "RESYNC"; no document travels
// twice.
func TestStreamAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := synctest.PostgresURL(t)
	channel := fmt.Sprintf("ferry_rxdb_%d", time.Now().UnixNano())
	replica := func() *streamEnv {
		db, err := models.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		bus, err := realtime.NewPostgresBus(dsn, realtime.PostgresOptions{Channel: channel})
		if err != nil {
			t.Fatal(err)
		}
		live, err := realtime.New(realtime.Config{Bus: bus})
		if err != nil {
			t.Fatal(err)
		}
		return newStreamEnv(t, db, streamOptions{live: live})
	}
	one, two := replica(), replica()
	s, resp := two.open(two.token("ann"))
	if s == nil {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	one.push("ann", map[string]any{"id": "t1", "title": "from replica one"})
	if ev := s.next(); !strings.Contains(ev, `"t1"`) || strings.Contains(ev, "RESYNC") {
		t.Fatalf("event %s", ev)
	}
	// More documents than an event carries (100 by default): RESYNC.
	var many []map[string]any
	for i := range 150 {
		many = append(many, map[string]any{"id": fmt.Sprintf("m%03d", i), "title": "bulk"})
	}
	one.push("ann", many...)
	if ev := s.next(); ev != `"RESYNC"` {
		t.Fatalf("after 150 documents: %.200s", ev)
	}
	// The stream moved past them: the next event carries the next write
	// alone.
	one.push("ann", map[string]any{"id": "t2", "title": "after the bulk"})
	ev := s.next()
	if !strings.Contains(ev, `"t2"`) || strings.Contains(ev, `"m0`) || strings.Contains(ev, `"t1"`) {
		t.Fatalf("event %.300s", ev)
	}
	// Another user's writes never reach ann's stream.
	one.push("bob", map[string]any{"id": "b1", "title": "bob's"})
	one.push("ann", map[string]any{"id": "t3", "title": "ann again"})
	if ev := s.next(); strings.Contains(ev, `"b1"`) || !strings.Contains(ev, `"t3"`) {
		t.Fatalf("event %.300s", ev)
	}
}
