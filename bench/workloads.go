package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"
)

// bencher runs the workloads against one server and one baseline.
type bencher struct {
	ctx   context.Context
	opt   options
	store string
	d     *driver
	db    *bun.DB   // the server's store, for seeding
	base  *baseline // nil when there is no baseline (SQLite)
	pid   int       // the server's pid, for RSS
	runID string
	// tmp is the run's scratch directory; schemaURL the PostgreSQL
	// schema's URL ("" on SQLite).
	tmp, schemaURL string
	nUser          int
	emit           func(Result)
	// realtimeResults are the realtime workload's lines.
	realtimeResults []RealtimeResult
	// blobResults are the blob workload's lines.
	blobResults []BlobResult
	// compressionResults are the compression workload's lines.
	compressionResults []CompressionResult
}

func (b *bencher) users(n int) ([]user, error) {
	out := make([]user, n)
	for i := range out {
		b.nUser++
		u, err := b.d.register(b.ctx, fmt.Sprintf("bench-%s-%d@example.com", b.runID, b.nUser))
		if err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
		out[i] = u
	}
	return out, nil
}

// rep measures the server side of one repetition (sampling its RSS), then
// the baseline side.
func (b *bencher) rep(conc int, dur time.Duration, srv, base func() op) (run, run, float64, error) {
	rss := startRSS(b.pid)
	r, err := measure(b.ctx, conc, deadline(dur), srv())
	peak := rss.peak()
	if err != nil {
		return r, run{}, peak, fmt.Errorf("server: %w", err)
	}
	var br run
	if b.base != nil && base != nil {
		if br, err = measure(b.ctx, conc, deadline(dur), base()); err != nil {
			return r, br, peak, fmt.Errorf("baseline: %w", err)
		}
	}
	return r, br, peak, nil
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Now().Add(24 * time.Hour)
	}
	return time.Now().Add(d)
}

// repeat runs reps repetitions and emits the summary.
func (b *bencher) repeat(name string, reps, conc int, dur time.Duration, srv, base func(rep int) op) (Result, error) {
	var runs, bases []run
	var rss []float64
	for i := 0; i < reps; i++ {
		var bf func() op
		if base != nil {
			bf = func() op { return base(i) }
		}
		r, br, peak, err := b.rep(conc, dur, func() op { return srv(i) }, bf)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
		}
		runs, rss = append(runs, r), append(rss, peak)
		if b.base != nil {
			bases = append(bases, br)
		}
	}
	res := summarize(name, b.store, runs, bases, rss)
	b.emit(res)
	return res, nil
}

// singleGen makes the single-record workload's changes: each worker
// creates notes for the first half of the run and then updates them,
// every tenth update dated an hour before the stored one so that it must
// lose.
type singleGen struct {
	prefix   string
	switchAt time.Time
	created  [][]note
	updates  []int
}

func newSingleGen(conc int, prefix string, dur time.Duration) *singleGen {
	return &singleGen{prefix: prefix, switchAt: time.Now().Add(dur / 2),
		created: make([][]note, conc), updates: make([]int, conc)}
}

func (g *singleGen) next(w int) (note, bool) {
	now := time.Now().UTC()
	if len(g.created[w]) == 0 || now.Before(g.switchAt) {
		i := len(g.created[w])
		n := note{UID: g.prefix + "w" + strconv.Itoa(w) + "n" + strconv.Itoa(i), ModifyAt: now,
			Title: "Note " + strconv.Itoa(i), Body: seedBody, Pinned: i%10 == 0}
		g.created[w] = append(g.created[w], n)
		return n, true
	}
	k := g.updates[w]
	g.updates[w]++
	idx := k % len(g.created[w])
	n := g.created[w][idx]
	n.Title = "Note " + strconv.Itoa(idx) + " edit " + strconv.Itoa(k)
	if k%10 == 9 {
		n.ModifyAt = n.ModifyAt.Add(-time.Hour)
		return n, false
	}
	n.ModifyAt = now
	g.created[w][idx] = n
	return n, true
}

func (b *bencher) single(conc int) error {
	us, err := b.users(conc)
	if err != nil {
		return err
	}
	bufs := make([]buffers, conc)
	srv := func(rep int) op {
		g := newSingleGen(conc, "s"+strconv.Itoa(conc)+"r"+strconv.Itoa(rep), b.opt.duration)
		return func(ctx context.Context, w int) (int, bool, error) {
			n, want := g.next(w)
			status, err := b.d.single(ctx, us[w], &n, &bufs[w])
			if err != nil {
				return 0, false, err
			}
			if exp := wantStatus(want); status != exp {
				return 0, false, fmt.Errorf("POST /sync/ %s answered %q, want %q", n.UID, status, exp)
			}
			return 1, false, nil
		}
	}
	base := func(rep int) op {
		g := newSingleGen(conc, "s"+strconv.Itoa(conc)+"r"+strconv.Itoa(rep), b.opt.duration)
		return func(ctx context.Context, w int) (int, bool, error) {
			n, want := g.next(w)
			applied, err := b.base.single(ctx, us[w].ID, &n)
			if err != nil {
				return 0, false, err
			}
			if applied != want {
				return 0, false, fmt.Errorf("baseline upsert of %s applied=%v, want %v", n.UID, applied, want)
			}
			return 1, false, nil
		}
	}
	name := fmt.Sprintf("single_c%d", conc)
	_, err = b.repeat(name, b.opt.reps, conc, b.opt.duration, srv, base)
	return err
}

func wantStatus(applied bool) string {
	if applied {
		return "applied"
	}
	return "stale"
}

// batchGen makes the batch workload's pushes: a worker alternates between
// a batch of new notes and a batch updating the notes it created last,
// every tenth update stale.
type batchGen struct {
	prefix string
	size   int
	n      []int
	last   [][]note
}

func (g *batchGen) next(w int) ([]note, []bool) {
	now := time.Now().UTC()
	k := g.n[w]
	g.n[w]++
	out := make([]note, g.size)
	want := make([]bool, g.size)
	if k%2 == 0 {
		for i := range out {
			out[i] = note{UID: g.prefix + "w" + strconv.Itoa(w) + "b" + strconv.Itoa(k) + "n" + strconv.Itoa(i),
				ModifyAt: now, Title: "Note " + strconv.Itoa(i), Body: seedBody, Pinned: i%10 == 0}
			want[i] = true
		}
		g.last[w] = append(g.last[w][:0], out...)
		return out, want
	}
	for i := range out {
		out[i] = g.last[w][i]
		out[i].Title += " edited"
		if i%10 == 9 {
			out[i].ModifyAt = out[i].ModifyAt.Add(-time.Hour)
			continue
		}
		out[i].ModifyAt = now
		want[i] = true
	}
	return out, want
}

func (b *bencher) batch(conc int) error {
	us, err := b.users(conc)
	if err != nil {
		return err
	}
	size := b.opt.batch
	gen := func(rep int) *batchGen {
		return &batchGen{prefix: "b" + strconv.Itoa(conc) + "r" + strconv.Itoa(rep) + "-", size: size,
			n: make([]int, conc), last: make([][]note, conc)}
	}
	bufs := make([]buffers, conc)
	srv := func(rep int) op {
		g := gen(rep)
		return func(ctx context.Context, w int) (int, bool, error) {
			ns, want := g.next(w)
			st, err := b.d.push(ctx, us[w], ns, &bufs[w])
			if err != nil {
				return 0, false, err
			}
			if len(st) != len(ns) {
				return 0, false, fmt.Errorf("push of %d changes answered %d results", len(ns), len(st))
			}
			for i := range st {
				if exp := wantStatus(want[i]); st[i] != exp {
					return 0, false, fmt.Errorf("push: %s answered %q, want %q", ns[i].UID, st[i], exp)
				}
			}
			return len(ns), false, nil
		}
	}
	base := func(rep int) op {
		g := gen(rep)
		return func(ctx context.Context, w int) (int, bool, error) {
			ns, want := g.next(w)
			applied, err := b.base.batch(ctx, us[w].ID, ns)
			if err != nil {
				return 0, false, err
			}
			if exp := countTrue(want); applied != exp {
				return 0, false, fmt.Errorf("baseline batch applied %d, want %d", applied, countTrue(want))
			}
			return len(ns), false, nil
		}
	}
	name := fmt.Sprintf("batch_push_%d_c%d", size, conc)
	_, err = b.repeat(name, b.opt.reps, conc, b.opt.duration, srv, base)
	return err
}

func countTrue(xs []bool) int {
	n := 0
	for _, x := range xs {
		if x {
			n++
		}
	}
	return n
}

// pullStore is one user's seeded store, on the server and in the baseline.
type pullStore struct {
	u      user
	size   int
	prefix string
	cursor string // the server's cursor after a full pull
	after  int64  // the baseline's position after the seed
}

func (b *bencher) seedStore(size int) (*pullStore, error) {
	us, err := b.users(1)
	if err != nil {
		return nil, err
	}
	u := us[0]
	prefix := "p" + strconv.Itoa(b.nUser) + "n"
	base := time.Now().UTC().Add(-48 * time.Hour)
	t0 := time.Now()
	if err := seedServer(b.ctx, b.db, u.ID, prefix, size, base); err != nil {
		return nil, err
	}
	if err := analyze(b.ctx, b.db); err != nil {
		return nil, err
	}
	if b.base != nil {
		if err := b.base.seed(b.ctx, u.ID, prefix, size, base); err != nil {
			return nil, err
		}
	}
	logf("seeded %d notes in %s", size, time.Since(t0).Round(time.Millisecond))
	return &pullStore{u: u, size: size, prefix: prefix}, nil
}

// initialPull measures paging through a whole store from an empty cursor.
// With onePass each repetition is exactly one full pull, whatever its
// length; otherwise pulls repeat until the duration is up.
func (b *bencher) initialPull(name string, ps *pullStore, reps int, onePass bool) error {
	dur := b.opt.duration
	if onePass {
		dur = 0
	}
	limit := b.opt.pullLimit
	srv := func(rep int) op {
		var cursor string
		var bb buffers
		got := 0
		return func(ctx context.Context, _ int) (int, bool, error) {
			page, err := b.d.pull(ctx, ps.u, cursor, limit, &bb)
			if err != nil {
				return 0, false, err
			}
			got += page.Changes
			cursor = page.Cursor
			if page.HasMore {
				return page.Changes, false, nil
			}
			// The store plus the user's own data.User record.
			if got != ps.size+1 {
				return 0, false, fmt.Errorf("a full pull gave %d records, want %d", got, ps.size+1)
			}
			ps.cursor = cursor
			cursor, got = "", 0
			return page.Changes, onePass, nil
		}
	}
	base := func(rep int) op {
		var after int64
		got := 0
		return func(ctx context.Context, _ int) (int, bool, error) {
			n, last, err := b.base.scan(ctx, ps.u.ID, after, limit)
			if err != nil {
				return 0, false, err
			}
			got += n
			after = last
			if n == limit {
				return n, false, nil
			}
			if got != ps.size {
				return 0, false, fmt.Errorf("a full baseline scan gave %d rows, want %d", got, ps.size)
			}
			ps.after = last
			after, got = 0, 0
			return n, onePass, nil
		}
	}
	_, err := b.repeat(name, reps, 1, dur, srv, base)
	return err
}

// incrementalPull changes b.opt.changes records of a store that was
// pulled whole, then measures pulling just those changes again and again
// from the cursor of that full pull.
func (b *bencher) incrementalPull(name string, ps *pullStore) error {
	if ps.cursor == "" {
		// Take the cursor of a full pull (not measured).
		var cursor string
		var bb buffers
		for {
			page, err := b.d.pull(b.ctx, ps.u, cursor, b.opt.pullLimit, &bb)
			if err != nil {
				return err
			}
			cursor = page.Cursor
			if !page.HasMore {
				break
			}
		}
		ps.cursor = cursor
	}
	if b.base != nil && ps.after == 0 {
		v, err := b.base.maxVersion(b.ctx, ps.u.ID)
		if err != nil {
			return err
		}
		ps.after = v
	}
	k := b.opt.changes
	now := time.Now().UTC()
	ns := make([]note, k)
	for i := range ns {
		g := 1 + i*ps.size/k
		ns[i] = note{UID: ps.prefix + strconv.Itoa(g), ModifyAt: now,
			Title: "Note " + strconv.Itoa(g) + " edited", Body: seedBody}
	}
	st, err := b.d.push(b.ctx, ps.u, ns, &buffers{})
	if err != nil {
		return err
	}
	for i, s := range st {
		if s != "applied" {
			return fmt.Errorf("incremental setup: %s answered %q", ns[i].UID, s)
		}
	}
	if b.base != nil {
		if n, err := b.base.batch(b.ctx, ps.u.ID, ns); err != nil || n != k {
			return fmt.Errorf("incremental setup on the baseline: %d applied, %v", n, err)
		}
	}
	srv := func(int) op {
		var bb buffers
		return func(ctx context.Context, _ int) (int, bool, error) {
			page, err := b.d.pull(ctx, ps.u, ps.cursor, 500, &bb)
			if err != nil {
				return 0, false, err
			}
			if page.Changes != k || page.HasMore {
				return 0, false, fmt.Errorf("incremental pull gave %d changes (has_more %v), want %d", page.Changes, page.HasMore, k)
			}
			return k, false, nil
		}
	}
	base := func(int) op {
		return func(ctx context.Context, _ int) (int, bool, error) {
			n, _, err := b.base.scan(ctx, ps.u.ID, ps.after, 500)
			if err != nil {
				return 0, false, err
			}
			if n != k {
				return 0, false, fmt.Errorf("incremental baseline scan gave %d rows, want %d", n, k)
			}
			return n, false, nil
		}
	}
	_, err = b.repeat(name, b.opt.reps, 1, b.opt.duration, srv, base)
	return err
}
