package framework_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
)

// fieldsPolicy is a policy that says it uses field times.
type fieldsPolicy struct{ framework.LastWriterWins }

func (fieldsPolicy) UsesFieldTimes() bool { return true }

func TestAppPolicy(t *testing.T) {
	t.Parallel()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), DefaultPolicy: fieldsPolicy{},
		Schemas: fstest.MapFS{"m.json": {Data: []byte(`{"type":"object"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	app.MustRegisterSchema("m.Own", framework.ModelOptions{Schema: "m.json", Policy: framework.LastWriterWins{}})
	app.MustRegisterSchema("m.Default", framework.ModelOptions{Schema: "m.json"})
	if p, err := app.Policy("m.Own"); err != nil || framework.UsesFieldTimes(p) {
		t.Fatalf("m.Own: %T %v", p, err)
	}
	if p, err := app.Policy("m.Default"); err != nil || !framework.UsesFieldTimes(p) {
		t.Fatalf("m.Default takes Config.DefaultPolicy: %T %v", p, err)
	}
	var pe *framework.Error
	if _, err := app.Policy("m.Missing"); !errors.As(err, &pe) || pe.Code != framework.CodeUnknownModel {
		t.Fatalf("an unknown model: %v", err)
	}
}

// TestConflictSchema: a policy learns from Conflict.Schema what the
// model's schema says of each top-level field, through $ref and allOf.
func TestConflictSchema(t *testing.T) {
	t.Parallel()
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Schemas: fstest.MapFS{"m.json": {Data: []byte(`{
		"type": "object",
		"$defs": {"set": {"type": "array", "uniqueItems": true}},
		"properties": {
			"tags": {"$ref": "#/$defs/set"},
			"either": {"type": ["string", "null", "integer"], "allOf": [{"type": ["null", "string"]}]},
			"list": {"type": "array"}
		},
		"allOf": [{"properties": {"more": {"uniqueItems": true}}}]
	}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	var seen *framework.ModelSchema
	app.MustRegisterSchema("m.Doc", framework.ModelOptions{Schema: "m.json", Policy: framework.PolicyFunc(
		func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
			seen = c.Schema
			return framework.Resolution{Outcome: framework.KeepStored}, nil
		})})
	if err := app.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ann := framework.Principal{UserID: "ann"}
	at := time.Now().Add(-time.Hour).UTC()
	for _, d := range []time.Duration{0, time.Minute} {
		if _, err := app.Push(context.Background(), ann, []*framework.Change{{UID: "d", Model: "m.Doc", ModifyAt: framework.Time{Time: at.Add(d)}, Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	if seen == nil {
		t.Fatal("the policy saw no schema")
	}
	for name, want := range map[string]framework.FieldSchema{
		"tags":   {Types: []string{"array"}, UniqueItems: true},
		"either": {Types: []string{"null", "string"}},
		"list":   {Types: []string{"array"}},
		"more":   {UniqueItems: true},
	} {
		got, ok := seen.Field(name)
		if !ok || !slices.Equal(got.Types, want.Types) || got.UniqueItems != want.UniqueItems {
			t.Errorf("%s: %+v %v, want %+v", name, got, ok, want)
		}
	}
	if _, ok := seen.Field("absent"); ok {
		t.Error("a field the schema does not name is named")
	}
	if _, ok := (*framework.ModelSchema)(nil).Field("tags"); ok {
		t.Error("a nil ModelSchema names a field")
	}
}
