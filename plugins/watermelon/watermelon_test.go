package watermelon_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/plugins/watermelon"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  watermelon.Config
		want string // part of the error; empty for success
	}{
		{"zero value", watermelon.Config{}, ""},
		{"one table", watermelon.Config{Tables: map[string]string{"tasks": "data.Task"}}, ""},
		{"bad table name", watermelon.Config{Tables: map[string]string{"my tasks": "data.Task"}}, `table name "my tasks"`},
		{"empty model", watermelon.Config{Tables: map[string]string{"tasks": ""}}, "model name is empty"},
		{"model twice", watermelon.Config{Tables: map[string]string{"a": "data.Task", "b": "data.Task"}}, "already backs"},
		{"relative path", watermelon.Config{Path: "wm"}, "Config.Path"},
		{"negative limit", watermelon.Config{PullLimit: -1}, "Config.PullLimit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := watermelon.New(c.cfg)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("New: %v, want %q", err, c.want)
			}
		})
	}
}

func TestSetupNeedsRegisteredModels(t *testing.T) {
	t.Parallel()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Schemas: fstest.MapFS{
		"task.json": {Data: []byte(`{"type":"object"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("data.Task", framework.ModelOptions{Schema: "task.json"})
	p, _ := watermelon.New(watermelon.Config{Tables: map[string]string{"tasks": "data.Missing"}})
	if err := app.Use(p); err == nil || !strings.Contains(err.Error(), "data.Missing is not registered") {
		t.Fatalf("Use with an unregistered model: %v", err)
	}
	ok, _ := watermelon.New(watermelon.Config{})
	if err := ok.Expose("tasks", "data.Task"); err != nil {
		t.Fatal(err)
	}
	if err := ok.Expose("other", "data.Task"); err == nil {
		t.Fatal("a model may back one table only")
	}
	if ok.Name() != "watermelon" {
		t.Fatal(ok.Name())
	}
}
