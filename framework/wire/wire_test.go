package wire_test

import (
	"encoding/json"
	"fmt"
	"go/build"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
)

// The package is a leaf: a client takes it without the server.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
			t.Errorf("wire imports %s", imp)
		}
	}
}

func TestStatusAndCodeAgree(t *testing.T) {
	for _, code := range []string{wire.CodeInvalid, wire.CodeUnauthenticated, wire.CodeForbidden, wire.CodeNotFound,
		wire.CodeMethodNotAllowed, wire.CodeConflict, wire.CodeResetRequired, wire.CodeTooLarge,
		wire.CodeUnsupportedMedia, wire.CodeRateLimited, wire.CodeInternal, wire.CodeUnavailable} {
		if got := wire.CodeForStatus(wire.HTTPStatus(code)); got != code {
			t.Errorf("%s: status %d reads back as %s", code, wire.HTTPStatus(code), got)
		}
	}
	if wire.HTTPStatus("nonsense") != http.StatusInternalServerError || wire.CodeForStatus(418) != "http_418" || wire.CodeForStatus(502) != wire.CodeInternal {
		t.Error("unknown codes and statuses")
	}
}

func TestShapes(t *testing.T) {
	op := "1"
	cases := []struct {
		v    any
		want string
	}{
		{wire.Change{Model: "data.Note", UID: "a", ModifyAt: wire.Time{Time: time.Unix(0, 1500).UTC()}},
			`{"model":"data.Note","uid":"a","modify_at":"1970-01-01T00:00:00.000001Z","is_deleted":false}`},
		{wire.PushRequest{Changes: []wire.Change{{OpID: &op, Model: "m", UID: "u", IsDeleted: true, ModifyAt: wire.Time{Time: time.Unix(1, 0)}, Data: json.RawMessage(`{}`)}}},
			`{"changes":[{"op_id":"1","model":"m","uid":"u","modify_at":"1970-01-01T00:00:01.000000Z","is_deleted":true,"data":{}}]}`},
		{wire.Result{Model: "m", UID: "u", Status: wire.StatusForbidden}, `{"model":"m","uid":"u","status":"forbidden"}`},
		{wire.ErrorBody{Error: wire.ErrorObject{Code: wire.CodeNotFound, Message: "no route"}}, `{"error":{"code":"not_found","message":"no route"}}`},
		{wire.ErrorBody{Error: wire.ErrorObject{Code: wire.CodeInvalid, Message: "m", Details: []wire.FieldError{{Path: "/uid", Message: "x"}}}},
			`{"error":{"code":"invalid","message":"m","details":[{"path":"/uid","message":"x"}]}}`},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.v)
		if err != nil || string(got) != c.want {
			t.Errorf("%T:\ngot  %s %v\nwant %s", c.v, got, err, c.want)
		}
	}
}

// A client builds a push body from wire types and reads the answer with
// them.
func Example() {
	at := wire.Time{Time: time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)}
	op := "1"
	body, _ := json.Marshal(wire.PushRequest{DeviceID: "phone", Changes: []wire.Change{
		{OpID: &op, Model: "data.Note", UID: "n1", ModifyAt: at, Data: json.RawMessage(`{"title":"Buy milk"}`)},
	}})
	fmt.Println(string(body))

	answer := `{"results":[{"op_id":"1","model":"data.Note","uid":"n1","status":"applied",` +
		`"record":{"model":"data.Note","uid":"n1","owner":"u1","modify_at":1795600800.123456,"is_deleted":false,"version":3,"data":{"title":"Buy milk"}}}]}`
	var resp wire.PushResponse
	if err := json.Unmarshal([]byte(answer), &resp); err != nil {
		fmt.Println(err)
		return
	}
	r := resp.Results[0]
	fmt.Println(r.Status, r.Record.Version, r.Record.ModifyAt.Format(wire.TimeFormat))

	_, err := wire.ParseTime("2026-11-25T10:00:00+02:00")
	fmt.Println(err)
	// Output:
	// {"device_id":"phone","changes":[{"op_id":"1","model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00.123456Z","is_deleted":false,"data":{"title":"Buy milk"}}]}
	// applied 3 2026-11-25T10:00:00.123456Z
	// wire: modify_at must be UTC
}
