package framework_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

type Thing struct {
	bun.BaseModel `bun:"table:things"`
	models.Base
	N int `bun:"n" json:"n"`
}

func (*Thing) ResourceType() string { return "test.Thing" }
func (*Thing) Validate() error      { return nil }

// NoBase has a uid but not the other base fields.
type NoBase struct {
	bun.BaseModel `bun:"table:nobase"`
	Base          struct{} `bun:"-"`
	ID            string   `bun:"uid,pk"`
}

func (*NoBase) ResourceType() string     { return "test.NoBase" }
func (*NoBase) Validate() error          { return nil }
func (*NoBase) UID() string              { return "" }
func (*NoBase) Owner() string            { return "" }
func (*NoBase) ModifyAt() (t time.Time)  { return }
func (n *NoBase) SyncBase() *models.Base { return &models.Base{} }

func TestRegistrationErrors(t *testing.T) {
	db := synctest.OpenSQLite(t)
	app, err := framework.New(framework.Config{DB: db, Schemas: testSchemas})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"typed", framework.Register[Thing](app, framework.ModelOptions{Schema: "item.json"}), ""},
		{"duplicate", framework.Register[Thing](app, framework.ModelOptions{Schema: "item.json"}), `"test.Thing" is already registered`},
		{"missing schema", app.RegisterSchema("test.Other", framework.ModelOptions{Schema: "nope.json"}), `schema "nope.json" not found`},
		{"no schema", app.RegisterSchema("test.Other", framework.ModelOptions{}), "ModelOptions.Schema is empty"},
		{"bad name", app.RegisterSchema("not a name", framework.ModelOptions{Schema: "item.json"}), "dotted identifiers"},
		{"no base", framework.Register[NoBase](app, framework.ModelOptions{Schema: "item.json"}), "embed models.Base"},
	}
	for _, c := range cases {
		if c.want == "" && c.err != nil || c.want != "" && (c.err == nil || !strings.Contains(c.err.Error(), c.want)) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, c.err, c.want)
		}
	}
	if got := strings.Join(app.Models(), ","); got != "test.Thing" {
		t.Fatalf("models %s", got)
	}
	app.Mount(ginGroup())
	if err := app.RegisterSchema("test.Late", framework.ModelOptions{Schema: "item.json"}); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("registration after Mount: %v", err)
	}
}

func ginGroup() gin.IRouter {
	gin.SetMode(gin.TestMode)
	return gin.New().Group("/sync")
}
