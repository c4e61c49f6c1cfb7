package framework_test

import (
	"errors"
	"testing"
	"testing/fstest"

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
