package rxdb_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/rxdb"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  rxdb.Config
		want string // part of the error; empty for success
	}{
		{"zero value", rxdb.Config{}, ""},
		{"one collection", rxdb.Config{Collections: map[string]string{"tasks": "data.Task"}}, ""},
		{"bad name", rxdb.Config{Collections: map[string]string{"a/b": "data.Task"}}, `collection name "a/b"`},
		{"empty model", rxdb.Config{Collections: map[string]string{"tasks": ""}}, "model name is empty"},
		{"model twice", rxdb.Config{Collections: map[string]string{"a": "data.Task", "b": "data.Task"}}, "already backs"},
		{"relative path", rxdb.Config{Path: "rx"}, "Config.Path"},
		{"negative keep-alive", rxdb.Config{KeepAlive: -1}, "Config.KeepAlive"},
		{"negative write timeout", rxdb.Config{WriteTimeout: -1}, "Config.WriteTimeout"},
		{"negative streams per user", rxdb.Config{MaxStreamsPerUser: -1}, "Config.MaxStreamsPerUser"},
		{"negative streams", rxdb.Config{MaxStreams: -1}, "Config.MaxStreams"},
		{"negative event documents", rxdb.Config{MaxEventDocuments: -1}, "Config.MaxEventDocuments"},
		{"negative event bytes", rxdb.Config{MaxEventBytes: -1}, "Config.MaxEventBytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rxdb.New(c.cfg)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("New: %v, want %q", err, c.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	p, err := rxdb.New(rxdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := rxdb.Config{Path: "/rxdb", KeepAlive: rxdb.DefaultKeepAlive, WriteTimeout: rxdb.DefaultWriteTimeout,
		MaxStreamsPerUser: 100, MaxStreams: 10_000, MaxEventDocuments: 100, MaxEventBytes: 128 << 10}
	if got := p.Config(); got.Path != want.Path || got.KeepAlive != want.KeepAlive || got.WriteTimeout != want.WriteTimeout ||
		got.MaxStreamsPerUser != want.MaxStreamsPerUser || got.MaxStreams != want.MaxStreams ||
		got.MaxEventDocuments != want.MaxEventDocuments || got.MaxEventBytes != want.MaxEventBytes {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
}

func newApp(t *testing.T) *framework.App {
	t.Helper()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Schemas: fstest.MapFS{
		"task.json": {Data: []byte(`{"type":"object"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	return app
}

func TestSetupNeedsRegisteredModels(t *testing.T) {
	t.Parallel()
	p, _ := rxdb.New(rxdb.Config{Collections: map[string]string{"tasks": "data.Missing"}})
	if err := newApp(t).Use(p); err == nil || !strings.Contains(err.Error(), "data.Missing is not registered") {
		t.Fatalf("Use with an unregistered model: %v", err)
	}
	ok, _ := rxdb.New(rxdb.Config{Collections: map[string]string{"tasks": "data.Task"}})
	if err := newApp(t).Use(ok); err != nil {
		t.Fatal(err)
	}
	ok.Close()
	ok.Close() // twice is fine
}

func TestDocument(t *testing.T) {
	t.Parallel()
	doc, err := rxdb.Document(&framework.Record{UID: "a1", IsDeleted: true, Data: []byte(`{"title":"x","id":"spoofed"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(doc["id"]) != `"a1"` || string(doc["_deleted"]) != "true" || string(doc["title"]) != `"x"` {
		t.Fatalf("document: %s", doc)
	}
}
