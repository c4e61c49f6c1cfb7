package main

// Go benchmarks of the server's hot paths, through the public framework
// API over httptest, on an embedded SQLite file where a store is needed:
//
//	go test -run '^$' -bench . -benchmem ./bench
//
// They are never timed assertions; `go test ./...` only compiles them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/schemas"
	"github.com/gin-gonic/gin"
)

const benchUser = "bench-user"

// benchApp is the example's data.Note on a fresh SQLite file, mounted on
// a gin engine with a fixed principal (authentication is not what these
// measure). setup runs before Mount.
func benchApp(b *testing.B, setup func(*framework.App)) (*framework.App, http.Handler) {
	b.Helper()
	gin.SetMode(gin.ReleaseMode)
	db := synctest.OpenSQLite(b)
	app, err := framework.New(framework.Config{DB: db, Schemas: schemas.Examples,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	framework.MustRegister[server.Note](app, framework.ModelOptions{Schema: "data/note.json"})
	app.SetAuthenticator(framework.AuthenticatorFunc(func(*http.Request) (framework.Principal, error) {
		return framework.Principal{UserID: benchUser}, nil
	}))
	if setup != nil {
		setup(app)
	}
	if err := app.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	e := gin.New()
	app.Mount(e.Group("/sync"))
	return app, e
}

func pushBody(model string, n int, at time.Time) []byte {
	ns := make([]note, n)
	for i := range ns {
		ns[i] = note{UID: "n" + strconv.Itoa(i), ModifyAt: at, Title: "Note " + strconv.Itoa(i), Body: seedBody}
	}
	b := []byte(`{"device_id":"bench","changes":[`)
	for i := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNote(b, &ns[i])
	}
	b = append(b, "]}"...)
	if model != "data.Note" {
		b = bytes.ReplaceAll(b, []byte(`"data.Note"`), []byte(strconv.Quote(model)))
	}
	return b
}

func serve(b *testing.B, h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
	return w
}

// BenchmarkDecodePush is request decoding alone: a push of 100 changes
// naming an unknown model is read, checked against the protocol schemas
// and decoded change by change, then rejected before any store access.
func BenchmarkDecodePush(b *testing.B) {
	_, h := benchApp(b, nil)
	body := pushBody("bench.Unknown", 100, time.Now().UTC())
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		serve(b, h, http.MethodPost, "/sync/push", body)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/change")
}

// BenchmarkDecodeValidatePush adds validation: the same 100 changes, valid
// data.Note ones, go through the note schema and Note.Validate; a hook
// after validation then forbids them, so the store is never touched. The
// difference with BenchmarkDecodePush is the cost of validation.
func BenchmarkDecodeValidatePush(b *testing.B) {
	_, h := benchApp(b, func(app *framework.App) {
		app.OnValidate().Bind(&hook.Handler[*framework.ValidateEvent]{ID: "bench.stop", Func: func(e *framework.ValidateEvent) error {
			if err := e.Next(); err != nil {
				return err
			}
			return framework.ErrForbidden
		}})
	})
	body := pushBody("data.Note", 100, time.Now().UTC())
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w := serve(b, h, http.MethodPost, "/sync/push", body)
		if !bytes.Contains(w.Body.Bytes(), []byte(`"forbidden"`)) {
			b.Fatalf("unexpected answer %s", w.Body.String()[:200])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/change")
}

// BenchmarkConflictResolution is the default policy's decision alone.
func BenchmarkConflictResolution(b *testing.B) {
	now := time.Now().UTC()
	c := &framework.Conflict{Model: "data.Note",
		Stored:   &framework.Record{Model: "data.Note", UID: "n1", ModifyAt: framework.Time{Time: now}, Data: json.RawMessage(`{"title":"a"}`)},
		Incoming: &framework.Record{Model: "data.Note", UID: "n1", ModifyAt: framework.Time{Time: now.Add(-time.Hour)}, Data: json.RawMessage(`{"title":"b"}`)},
	}
	var p framework.ConflictPolicy = framework.LastWriterWins{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.Resolve(ctx, c)
		if err != nil || r.Outcome != framework.KeepStored {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkPushStale is the whole conflict path on a store: 100 stale
// updates of stored notes are decoded, validated, loaded in one
// transaction, resolved and answered "stale" with the stored winner;
// nothing is written.
func BenchmarkPushStale(b *testing.B) {
	_, h := benchApp(b, nil)
	now := time.Now().UTC().Truncate(time.Second)
	serve(b, h, http.MethodPost, "/sync/push", pushBody("data.Note", 100, now))
	body := pushBody("data.Note", 100, now.Add(-time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		w := serve(b, h, http.MethodPost, "/sync/push", body)
		if !bytes.Contains(w.Body.Bytes(), []byte(`"stale"`)) {
			b.Fatalf("unexpected answer %s", w.Body.String()[:200])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/change")
}

// BenchmarkPushApply writes: 100 updates of stored notes per push, each
// newer than the last, on SQLite.
func BenchmarkPushApply(b *testing.B) {
	_, h := benchApp(b, nil)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	serve(b, h, http.MethodPost, "/sync/push", pushBody("data.Note", 100, at))
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Millisecond)
		serve(b, h, http.MethodPost, "/sync/push", pushBody("data.Note", 100, at))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/change")
}

// BenchmarkRecordEncoding encodes a pull page of 500 records, as the pull
// handler does.
func BenchmarkRecordEncoding(b *testing.B) {
	now := time.Now().UTC()
	resp := framework.PullResponse{Cursor: "eyJ2IjoxfQ"}
	for i := 0; i < 500; i++ {
		data, _ := json.Marshal(map[string]any{"title": fmt.Sprintf("Note %d", i), "body": seedBody, "tags": []string{"work", "home"}, "pinned": false})
		resp.Changes = append(resp.Changes, &framework.Record{Model: "data.Note", UID: "n" + strconv.Itoa(i), Owner: benchUser,
			ModifyAt: framework.Time{Time: now}, Version: int64(i + 1), Data: data})
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := json.Marshal(resp)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/record")
}

// BenchmarkPullPage is a whole pull page of 500 records over httptest on
// SQLite: the feed read, typed decode, encoding.
func BenchmarkPullPage(b *testing.B) {
	_, h := benchApp(b, nil)
	at := time.Now().UTC().Add(-time.Hour)
	for i := 0; i < 5; i++ {
		body := pushBody("data.Note", 100, at)
		body = bytes.ReplaceAll(body, []byte(`"uid":"n`), []byte(`"uid":"p`+strconv.Itoa(i)+`n`))
		serve(b, h, http.MethodPost, "/sync/push", body)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := serve(b, h, http.MethodGet, "/sync/pull?limit=500", nil)
		if w.Body.Len() < 500*100 {
			b.Fatalf("short page: %d bytes", w.Body.Len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/record")
}
