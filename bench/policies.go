package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/policies"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// policyWorkloads measures the batch push of every conflict policy as a
// ratio to last-writer-wins, both pushed alternately to one in-process
// server on the run's store (a framework App with one model per policy,
// over loopback HTTP). Every second batch updates the notes of the one
// before, naming the untouched fields' older times (so field-merging
// policies merge each update), and every tenth update is an hour old.
func (b *bencher) policyWorkloads() error {
	var db *bun.DB
	var err error
	if b.store == "postgres" {
		db, err = models.OpenPostgres(b.ctx, b.schemaURL)
	} else {
		db, err = models.OpenSQLite(b.ctx, filepath.Join(b.tmp, "policies.db"))
	}
	if err != nil {
		return err
	}
	defer db.Close()
	app, err := framework.New(framework.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schemas: fstest.MapFS{"note.json": {Data: []byte(`{"type":"object","properties":{"title":{"type":"string"},"body":{"type":"string"},"tags":{"type":"array"},"pinned":{"type":"boolean"}}}`)}}})
	if err != nil {
		return err
	}
	kinds := []struct {
		name   string
		policy framework.ConflictPolicy
	}{
		{"LWW", nil}, {"FirstWriterWins", policies.FirstWriterWins{}}, {"ClientWins", policies.ClientWins{}},
		{"FieldLWW", policies.FieldLWW{}}, {"Automerge", policies.Automerge{}}, {"Counter", policies.Counter("counts")},
	}
	for _, k := range kinds {
		app.MustRegisterSchema("bench."+k.name, framework.ModelOptions{Schema: "note.json", Policy: k.policy})
	}
	app.SetAuthenticator(framework.AuthenticatorFunc(func(r *http.Request) (framework.Principal, error) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || id == "" {
			return framework.Principal{}, framework.ErrUnauthenticated
		}
		return framework.Principal{UserID: id}, nil
	}))
	if err := app.Migrate(b.ctx); err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	app.Mount(r.Group("/sync"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}()
	const conc = 4
	d := newDriver(ln.Addr().String(), conc)
	size := b.opt.batch
	push := func(model string, rep int) op {
		g := &batchGen{prefix: fmt.Sprintf("%s-%s-r%d-", b.runID, model, rep), size: size, n: make([]int, conc), last: make([][]note, conc)}
		bufs := make([]buffers, conc)
		return func(ctx context.Context, w int) (int, bool, error) {
			ns, _ := g.next(w)
			for i := range ns {
				ns[i].Model = "bench." + model
				if g.n[w]%2 == 0 { // an update (next counted it already)
					ns[i].FieldsAt = ns[i].ModifyAt.Add(-time.Minute)
				}
			}
			st, err := d.push(ctx, user{ID: "u" + model, Token: fmt.Sprintf("u%s-w%d", model, w)}, ns, &bufs[w])
			if err != nil {
				return 0, false, err
			}
			for i, s := range st {
				if s != "applied" && s != "stale" {
					return 0, false, fmt.Errorf("bench.%s: %s answered %s", model, ns[i].UID, s)
				}
			}
			return len(ns), false, nil
		}
	}
	for _, k := range kinds[1:] {
		name := fmt.Sprintf("batch_push_%d_c%d_%s_vs_LWW", size, conc, k.name)
		res, err := b.repeatAgainst(name, conc, func(rep int) op { return push(k.name, rep) }, func(rep int) op { return push("LWW", rep) })
		if err != nil {
			return err
		}
		b.emit(res)
	}
	return nil
}

// repeatAgainst runs srv and base alternately, b.opt.reps times each,
// and summarizes srv with base as its baseline.
func (b *bencher) repeatAgainst(name string, conc int, srv, base func(rep int) op) (Result, error) {
	var runs, bases []run
	for i := 0; i < b.opt.reps; i++ {
		r, err := measure(b.ctx, conc, deadline(b.opt.duration), srv(i))
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
		}
		br, err := measure(b.ctx, conc, deadline(b.opt.duration), base(i))
		if err != nil {
			return Result{}, fmt.Errorf("%s baseline: %w", name, err)
		}
		runs, bases = append(runs, r), append(bases, br)
	}
	return summarize(name, b.store, runs, bases, nil), nil
}
