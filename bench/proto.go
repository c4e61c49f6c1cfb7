package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// proto is the write path docs/PERFORMANCE.md recommends, prototyped on
// the server's own tables with the public models API, and measured by
// -proto without HTTP: per push one transaction that reserves the scope's
// versions, loads the stored records, decides last-writer-wins in Go, and
// writes all winners with one multi-row upsert into the model's table and
// one into the change index; no savepoint per change, and no scope
// update when a single version was used. It leaves out what the HTTP
// layer adds (decoding, validation, hooks), which the Go benchmarks
// measure, so it is an upper bound for the store part of a push.
type proto struct {
	db    *bun.DB
	table *models.TypedTable[server.Note, *server.Note]
}

func newProto(db *bun.DB) (*proto, error) {
	t, err := models.NewTypedTable[server.Note, *server.Note](db)
	if err != nil {
		return nil, err
	}
	return &proto{db: db, table: t}, nil
}

// write applies ns for owner and returns how many won.
func (p *proto) write(ctx context.Context, owner string, ns []note) (int, error) {
	applied := 0
	err := p.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		applied = 0
		v, err := models.ReserveVersion(ctx, tx, owner)
		if err != nil {
			return err
		}
		uids := make([]string, len(ns))
		for i := range ns {
			uids[i] = ns[i].UID
		}
		stored, err := p.table.Load(ctx, tx, "data.Note", uids)
		if err != nil {
			return err
		}
		byUID := make(map[string]*models.Record, len(stored))
		for i := range stored {
			byUID[stored[i].UID] = &stored[i]
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		rows := make([]server.Note, 0, len(ns))
		changes := make([]models.Change, 0, len(ns))
		for i := range ns {
			n := &ns[i]
			at := n.ModifyAt.UTC().Truncate(time.Microsecond)
			created := now
			if s, ok := byUID[n.UID]; ok {
				if s.Owner != owner || at.Before(s.ModifyAt) {
					continue // forbidden or stale
				}
				created = s.CreatedAt
			}
			rows = append(rows, server.Note{
				Base:  models.Base{ID: n.UID, OwnerID: owner, ModifiedAt: at, Version: v, CreatedAt: created, UpdatedAt: now},
				Title: n.Title, Body: n.Body, Tags: []string{"work", "home"}, Pinned: n.Pinned,
			})
			changes = append(changes, models.Change{Model: "data.Note", UID: n.UID, Scope: owner, Version: v})
			v++
		}
		if len(rows) == 0 {
			return nil
		}
		if _, err := tx.NewInsert().Model(&rows).On("CONFLICT (uid) DO UPDATE").
			Set("modify_at = EXCLUDED.modify_at").Set("is_deleted = EXCLUDED.is_deleted").
			Set("version = EXCLUDED.version").Set("updated_at = EXCLUDED.updated_at").
			Set("title = EXCLUDED.title").Set("body = EXCLUDED.body").
			Set("tags = EXCLUDED.tags").Set("pinned = EXCLUDED.pinned").
			Exec(ctx); err != nil {
			return fmt.Errorf("upsert notes: %w", err)
		}
		if _, err := tx.NewInsert().Model(&changes).On("CONFLICT (model, uid) DO UPDATE").
			Set("scope = EXCLUDED.scope").Set("version = EXCLUDED.version").Set("is_deleted = EXCLUDED.is_deleted").
			Exec(ctx); err != nil {
			return fmt.Errorf("upsert change index: %w", err)
		}
		if len(rows) > 1 {
			if err := models.SetScopeVersion(ctx, tx, owner, v-1); err != nil {
				return err
			}
		}
		applied = len(rows)
		return nil
	})
	return applied, err
}

// protoRun measures the prototype with the workload's own change
// generator and reports it beside the workload's baseline.
func (b *bencher) protoRun(name string, conc, reps int, dur time.Duration, main Result, gen func(rep int) op) error {
	var runs []run
	for i := 0; i < reps; i++ {
		r, err := measure(b.ctx, conc, deadline(dur), gen(i))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		runs = append(runs, r)
	}
	res := summarize(name, b.store, runs, nil, nil)
	res.BaselinePerS, res.BaselineP50 = main.BaselinePerS, main.BaselineP50
	if res.BaselinePerS > 0 {
		res.Ratio = round(res.RecordsPerS/res.BaselinePerS, 3)
	}
	b.emit(res)
	return nil
}

// pullPage is the pull path docs/PERFORMANCE.md recommends, prototyped:
// one query taking a page of the change index and joining the model's
// table to it, in version order (instead of reading the index and then loading the records by
// uid), and the page encoded straight into one buffer: the envelope by
// hand, the data with one json.Marshal of the typed value, never
// re-validated as a json.RawMessage. It returns the records and the last
// version, and leaves out HTTP.
func (p *proto) pullPage(ctx context.Context, owner string, after int64, limit int, buf []byte) (int, int64, []byte, error) {
	var rows []server.Note
	// The page is cut from the index first (a materialized CTE), so the
	// planner knows it joins at most limit rows and keeps to index
	// lookups; a plain join with ORDER BY … LIMIT flipped to a hash join
	// over the whole notes table once other users' rows made the version
	// estimate large (11 ms instead of 0.2 ms for 100 rows).
	err := p.db.NewRaw(`WITH page AS MATERIALIZED (
			SELECT uid, version FROM ferry_changes
			WHERE scope = ? AND version > ? AND model = 'data.Note'
			ORDER BY version LIMIT ?)
		SELECT n.* FROM page JOIN notes AS n ON n.uid = page.uid ORDER BY page.version`,
		owner, after, limit).Scan(ctx, &rows)
	if err != nil {
		return 0, 0, buf, err
	}
	buf = append(buf[:0], `{"changes":[`...)
	last := after
	for i := range rows {
		r := &rows[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		// uids and owners are [A-Za-z0-9_-]; a real encoder escapes JSON.
		buf = append(buf, `{"model":"data.Note","uid":`...)
		buf = strconv.AppendQuote(buf, r.ID)
		buf = append(buf, `,"owner":`...)
		buf = strconv.AppendQuote(buf, r.OwnerID)
		buf = append(buf, `,"modify_at":"`...)
		buf = r.ModifiedAt.UTC().AppendFormat(buf, wireTime)
		buf = append(buf, `","is_deleted":`...)
		buf = strconv.AppendBool(buf, r.IsDeleted)
		buf = append(buf, `,"version":`...)
		buf = strconv.AppendInt(buf, r.Version, 10)
		buf = append(buf, `,"data":`...)
		data, err := json.Marshal(r)
		if err != nil {
			return 0, 0, buf, err
		}
		buf = append(buf, data...)
		buf = append(buf, '}')
		last = r.Version
	}
	buf = append(buf, `],"cursor":"","has_more":false}`...)
	return len(rows), last, buf, nil
}
