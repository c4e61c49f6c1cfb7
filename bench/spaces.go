package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// spaceChange appends one change of a shared space to b.
func spaceChange(b []byte, space, model, uid string, at time.Time, data string) []byte {
	b = append(b, `{"space":`...)
	b = strconv.AppendQuote(b, space)
	b = append(b, `,"model":`...)
	b = strconv.AppendQuote(b, model)
	b = append(b, `,"uid":`...)
	b = strconv.AppendQuote(b, uid)
	b = append(b, `,"modify_at":"`...)
	b = at.UTC().AppendFormat(b, wireTime)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// pushRaw pushes changes (JSON objects, in order) as u, in batches of at
// most 1000, and requires every one applied.
func (b *bencher) pushRaw(u user, changes [][]byte) error {
	for len(changes) > 0 {
		n := min(len(changes), 1000)
		body := []byte(`{"device_id":"bench","changes":[`)
		for i, c := range changes[:n] {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, c...)
		}
		body = append(body, "]}"...)
		answer, err := b.d.doRaw(b.ctx, "POST", "/sync/push", u.Token, body, nil)
		if err != nil {
			return err
		}
		st, err := statuses(answer, nil)
		if err != nil {
			return err
		}
		for i, s := range st {
			if s != "applied" {
				return fmt.Errorf("space setup: change %d answered %q: %.300s", i, s, changes[i])
			}
		}
		if len(st) != n {
			return fmt.Errorf("space setup: %d statuses for %d changes", len(st), n)
		}
		changes = changes[n:]
	}
	return nil
}

// fullPull pages from cursor to the end and returns the records and the
// last cursor.
func (b *bencher) fullPull(ctx context.Context, u user, cursor string, limit int, bb *buffers) (int, string, error) {
	got := 0
	for {
		page, err := b.d.pull(ctx, u, cursor, limit, bb)
		if err != nil {
			return got, cursor, err
		}
		got += page.Changes
		cursor = page.Cursor
		if !page.HasMore {
			return got, cursor, nil
		}
	}
}

// spaceWorkloads measures shared spaces: a pull when one of 100 (and of
// 1,000, the most Config.MaxSpaces allows) spaces changed against the
// same pull for a member of that space alone, and the back-fill of a
// space of many records against an initial pull of as many personal
// records. Both sides of each ratio are the server's, measured
// alternately in the same run.
func (b *bencher) spaceWorkloads() error {
	sizes, backfill := []int{100, 1000}, 10_000
	if b.opt.smoke {
		sizes, backfill = []int{20}, 2000
	}
	at := time.Now().UTC().Add(-time.Hour)
	tick := func() time.Time { at = at.Add(time.Microsecond); return at }
	space := func(i int) string { return fmt.Sprintf("bench-%s-%d", b.runID, i) }
	first := 0 // spaces are numbered across the sizes
	for _, n := range sizes {
		if err := b.pullOneOfSpaces(n, first, space, tick); err != nil {
			return err
		}
		first += n
	}
	us, err := b.users(3)
	if err != nil {
		return err
	}
	joiner, personal, bigOwner := us[0], us[1], us[2]
	var bb buffers

	// Back-fill: the joiner's pull from a cursor of his personal space
	// alone, once he is a member of a space of backfill records, against
	// the initial pull of a user holding as many personal records.
	big := space(first)
	setup := [][]byte{spaceChange(nil, big, "ferry.Space", big, tick(), `{"name":"big"}`)}
	var own [][]byte
	for j := range backfill {
		setup = append(setup, spaceChange(nil, big, "data.Task", "b"+strconv.Itoa(j), tick(), `{"title":"task"}`))
		own = append(own, []byte(fmt.Sprintf(`{"model":"data.Task","uid":"p%d","modify_at":%q,"data":{"title":"task"}}`, j, tick().Format(wireTime))))
	}
	if err := b.pushRaw(bigOwner, setup); err != nil {
		return err
	}
	if err := b.pushRaw(personal, own); err != nil {
		return err
	}
	_, joinerCursor, err := b.fullPull(b.ctx, joiner, "", b.opt.pullLimit, &bb)
	if err != nil {
		return err
	}
	if err := b.pushRaw(bigOwner, [][]byte{spaceChange(nil, big, "ferry.Member", joiner.ID, tick(), `{"role":"reader"}`)}); err != nil {
		return err
	}
	whole := func(u user, cursor string, want int) op {
		var bb buffers
		return func(ctx context.Context, _ int) (int, bool, error) {
			n, _, err := b.fullPull(ctx, u, cursor, b.opt.pullLimit, &bb)
			if err != nil {
				return 0, false, err
			}
			if n != want {
				return 0, false, fmt.Errorf("a full pull gave %d records, want %d", n, want)
			}
			return n, false, nil
		}
	}
	// The back-fill brings the space's record, the owner's and the
	// joiner's memberships; the initial pull the user's own data.User.
	return b.versus("spaces_backfill_"+size(backfill), b.opt.duration,
		func() op { return whole(joiner, joinerCursor, backfill+3) }, func() op { return whole(personal, "", backfill+1) })
}

// versus measures srv and base alternately, b.opt.reps times each for dur,
// and emits the summary with base as the baseline: a ratio of the server
// against itself in another configuration.
func (b *bencher) versus(name string, dur time.Duration, srv, base func() op) error {
	var runs, bases []run
	var rss []float64
	for range b.opt.reps {
		sample := startRSS(b.pid)
		r, err := measure(b.ctx, 1, deadline(dur), srv())
		rss = append(rss, sample.peak())
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		br, err := measure(b.ctx, 1, deadline(dur), base())
		if err != nil {
			return fmt.Errorf("%s (baseline): %w", name, err)
		}
		runs, bases = append(runs, r), append(bases, br)
	}
	b.emit(summarize(name, b.store, runs, bases, rss))
	return nil
}

// pullOneOfSpaces measures the pull of a member of nSpaces spaces (ids
// from first) after changes to one of them, against the same pull for a
// member of that space alone. Each size has users of its own: a user is
// in at most MaxSpaces spaces.
func (b *bencher) pullOneOfSpaces(nSpaces, first int, space func(int) string, tick func() time.Time) error {
	const perSpace = 10
	changed := b.opt.changes
	us, err := b.users(3)
	if err != nil {
		return err
	}
	owner, wide, narrow := us[0], us[1], us[2]
	var setup [][]byte
	for i := first; i < first+nSpaces; i++ {
		s := space(i)
		setup = append(setup, spaceChange(nil, s, "ferry.Space", s, tick(), `{"name":"bench"}`),
			spaceChange(nil, s, "ferry.Member", wide.ID, tick(), `{"role":"reader"}`))
		if i == first {
			setup = append(setup, spaceChange(nil, s, "ferry.Member", narrow.ID, tick(), `{"role":"reader"}`))
		}
		for j := range perSpace {
			setup = append(setup, spaceChange(nil, s, "data.Task", "t"+strconv.Itoa(j), tick(), `{"title":"task"}`))
		}
	}
	if err := b.pushRaw(owner, setup); err != nil {
		return err
	}
	var bb buffers
	_, wideCursor, err := b.fullPull(b.ctx, wide, "", b.opt.pullLimit, &bb)
	if err != nil {
		return err
	}
	_, narrowCursor, err := b.fullPull(b.ctx, narrow, "", b.opt.pullLimit, &bb)
	if err != nil {
		return err
	}
	var edits [][]byte
	for j := range changed {
		edits = append(edits, spaceChange(nil, space(first), "data.Task", "e"+strconv.Itoa(j), tick(), `{"title":"new"}`))
	}
	if err := b.pushRaw(owner, edits); err != nil {
		return err
	}
	pullFrom := func(u user, cursor string) op {
		var bb buffers
		return func(ctx context.Context, _ int) (int, bool, error) {
			page, err := b.d.pull(ctx, u, cursor, 500, &bb)
			if err != nil {
				return 0, false, err
			}
			if page.Changes != changed || page.HasMore {
				return 0, false, fmt.Errorf("a pull after the change gave %d records (has_more %v), want %d", page.Changes, page.HasMore, changed)
			}
			return changed, false, nil
		}
	}
	logf("spaces: the cursor of a member of %d spaces is %d bytes", nSpaces, len(wideCursor))
	return b.versus(fmt.Sprintf("spaces_pull_1_of_%d", nSpaces), b.opt.duration,
		func() op { return pullFrom(wide, wideCursor) }, func() op { return pullFrom(narrow, narrowCursor) })
}
