package inspector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/conflictlog"
	"github.com/gin-gonic/gin"
)

const (
	// scopesPerPage is the scopes the index lists per page.
	scopesPerPage = 100
	// maxMemberships is the spaces or members a page lists.
	maxMemberships = 200
	// maxRecordBytes is the data shown on a record's page.
	maxRecordBytes = 64 << 10
	// maxWindowFactor bounds the versions one records page scans, as a
	// multiple of its size: a page whose window holds few records (most
	// were changed since, or belong to another model) widens up to this.
	maxWindowFactor = 64
	// maxID bounds the ids the pages take (scopes are varchar(255)).
	maxID = 255
)

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000000Z")
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return now.Sub(t).Truncate(time.Second).String() + " ago"
	},
	"space": wire.SpaceOf,
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode()) //nolint:gosec // url.Values.Encode escapes every value
	},
	"itoa": func(n int64) string { return strconv.FormatInt(n, 10) },
}

func (in *Inspector) now() time.Time { return in.app.Config().Now() }

// render executes the page into a buffer first, so a failure is an error
// answer rather than half a page.
func (in *Inspector) render(c *gin.Context, name string, data any) error {
	var b bytes.Buffer
	if err := in.pages.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("inspector: render %s: %w", name, err)
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
	return nil
}

// base is what every page shows.
type base struct {
	Path string
	Now  time.Time
}

func (in *Inspector) base() base { return base{Path: in.cfg.Path, Now: in.now()} }

// scopeRow is a scope's counters.
type scopeRow struct {
	Scope, Space                           string
	Version, PurgedVersion, Records, Bytes int64
	// Counted: Records and Bytes are usage (kept or counted); false in
	// the list when usage accounting is off, the counters being stale.
	Counted bool
}

func rowOf(s models.Scope) scopeRow {
	return scopeRow{Scope: s.Scope, Space: wire.SpaceOf(s.Scope), Version: s.Version, PurgedVersion: s.PurgedVersion,
		Records: s.Records, Bytes: s.Bytes}
}

// purgeView is the tombstone purge's configuration and last run.
type purgeView struct {
	Retention, Interval                time.Duration
	Runs, Failures, Purged, LastPurged int64
	LastAt                             time.Time
}

func (in *Inspector) purge() purgeView {
	cfg, st := in.app.Config(), in.app.Stats()
	return purgeView{Retention: cfg.TombstoneRetention, Interval: cfg.PurgeInterval, Runs: st.PurgeRuns,
		Failures: st.PurgeFailures, Purged: st.PurgedTombstones, LastPurged: st.LastPurged, LastAt: st.LastPurgeAt}
}

type indexPage struct {
	base
	Purge      purgeView
	Models     []string
	Listable   bool
	Scopes     []scopeRow
	After      string
	NextAfter  string
	Active     []trackedUser
	Tracked    int
	Forgot     int64
	MaxUsers   int
	ConflictOn bool
	// UsageOn: the counters are kept (Config.UsageAccounting).
	UsageOn bool
}

func (in *Inspector) index(c *gin.Context) error {
	ctx := c.Request.Context()
	after, err := idParam(c, "after", false)
	if err != nil {
		return err
	}
	p := indexPage{base: in.base(), Purge: in.purge(), Models: in.app.Models(), After: after,
		MaxUsers: in.cfg.MaxUsers, ConflictOn: in.conflictLog() != nil, UsageOn: in.app.UsageAccountingOn()}
	if db := in.app.Store().DB(); db != nil {
		p.Listable = true
		rows, err := models.ListScopes(ctx, db, models.ListScopesParams{After: after, Limit: scopesPerPage + 1})
		if err != nil {
			return err
		}
		if len(rows) > scopesPerPage {
			rows = rows[:scopesPerPage]
			p.NextAfter = rows[len(rows)-1].Scope
		}
		for _, r := range rows {
			row := rowOf(r)
			// Counting a hundred scopes' rows per page would scan the
			// record tables; the scope's own page counts.
			row.Counted = p.UsageOn
			p.Scopes = append(p.Scopes, row)
		}
	}
	p.Active, p.Tracked, p.Forgot = in.act.recent(50)
	return in.render(c, "index.html", p)
}

// recordRow is a record in a list.
type recordRow struct {
	Model, UID, Owner string
	Version           int64
	ModifyAt          time.Time
	Deleted           bool
	Preview           string
}

// recordsView is a page of a scope's records.
type recordsView struct {
	Scope, Model string
	Models       []string
	Rows         []recordRow
	Tombstones   int
	// Before is the page's bound (0: the newest); Older the bound of the
	// next page, 0 when there is none.
	Before, Older int64
	Limit         int
	// From and UpTo are the versions the page covers.
	From, UpTo int64
}

// records reads a page of scope's records, newest first: those whose
// version is below before (0: any), at most limit, of model ("": any).
// Each record has one version (its latest), so pages by version never
// repeat or skip a record. It reads a window of versions below the bound,
// widening it (up to maxWindowFactor × limit versions) while it holds
// fewer than limit records; it keeps only the newest limit records of
// what it reads, so memory stays bounded whatever the scope holds.
func (in *Inspector) records(ctx context.Context, scope string, head int64, model string, before int64, limit int) (recordsView, error) {
	v := recordsView{Scope: scope, Model: model, Models: in.app.Models(), Before: before, Limit: limit}
	upTo := head
	if before > 0 {
		upTo = min(head, before-1)
	}
	var filter []string
	if model != "" {
		filter = []string{model}
	}
	var keep []models.Record
	var lo int64
	for w := int64(limit); ; w *= 4 {
		lo = max(0, upTo-w)
		var err error
		if keep, err = in.readNewest(ctx, scope, lo, upTo, filter, limit); err != nil {
			return v, err
		}
		if len(keep) >= limit || lo == 0 || w >= int64(limit)*maxWindowFactor {
			break
		}
	}
	v.From, v.UpTo = lo+1, upTo
	for i := len(keep) - 1; i >= 0; i-- {
		r := &keep[i]
		v.Rows = append(v.Rows, recordRow{Model: r.Model, UID: r.UID, Owner: r.Owner, Version: r.Version,
			ModifyAt: r.ModifyAt, Deleted: r.IsDeleted, Preview: preview(r.Data, in.cfg.MaxPreview)})
		if r.IsDeleted {
			v.Tombstones++
		}
	}
	switch {
	case len(keep) == limit:
		v.Older = keep[0].Version
		v.From = keep[0].Version
	case lo > 0:
		v.Older = lo + 1
	}
	return v, nil
}

// readNewest reads the scope's records with versions in (lo, hi] a store
// page at a time, keeping the newest limit, in version order.
func (in *Inspector) readNewest(ctx context.Context, scope string, lo, hi int64, filter []string, limit int) ([]models.Record, error) {
	var keep []models.Record
	for lo < hi {
		feed, err := in.app.Store().ReadFeed(ctx, models.ReadFeedParams{
			Scopes: []models.ScopeRange{{Scope: scope, After: lo, UpTo: hi}}, Models: filter, Limit: 500, MaxBytes: 4 << 20})
		if err != nil {
			return nil, fmt.Errorf("inspector: read %s: %w", scope, err)
		}
		keep = append(keep, feed.Records...)
		if len(keep) > limit {
			keep = slices.Clone(keep[len(keep)-limit:])
		}
		if !feed.More {
			break
		}
		lo = feed.Positions[scope]
	}
	return keep, nil
}

// readable is data as JSON without the \u003c-style escapes the store
// keeps (html/template escapes what the page shows), indented when
// indent is set.
func readable(data json.RawMessage, indent bool) string {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(data)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if enc.Encode(v) != nil {
		return string(data)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// preview is the start of a record's data, at most n characters.
func preview(data json.RawMessage, n int) string {
	s := readable(data, false)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// pushView is a push as shown.
type pushView struct {
	pushEntry
	Shown int
}

// deviceView is a device as shown: its lag per scope.
type deviceView struct {
	deviceState
	Lags     []lag
	LagTotal int64
}

// lag is how far behind a device's cursor is in one scope.
type lag struct {
	Scope                   string
	Position, HeadAtPull    int64
	Head, Behind, BehindNow int64
}

// conflictsView is the recent conflicts, or why there are none to show.
type conflictsView struct {
	On      bool
	Entries []conflictlog.Entry
	Max     int
}

type scopePage struct {
	base
	User, Space string
	Scope       scopeRow
	Written     bool
	Purge       purgeView
	Memberships []models.Membership
	MoreMembers bool
	Records     recordsView
	Conflicts   conflictsView
	Activity    userView
	Pushes      []pushView
	Devices     []deviceView
	MaxPushes   int
	MaxDevices  int
	MaxChanges  int
}

func (in *Inspector) user(c *gin.Context) error {
	id, err := idParam(c, "id", true)
	if err != nil {
		return err
	}
	if sp := wire.SpaceOf(id); sp != "" {
		c.Redirect(http.StatusFound, in.cfg.Path+"/space?"+url.Values{"id": {sp}}.Encode())
		return nil
	}
	ctx := c.Request.Context()
	p, err := in.scopePage(c, id)
	if err != nil {
		return err
	}
	p.User = id
	ms, err := in.app.Store().Memberships(ctx, models.MembershipsParams{User: id, Limit: maxMemberships + 1})
	if err != nil {
		return err
	}
	p.Memberships, p.MoreMembers = capped(ms)
	scopes := []string{id}
	for _, m := range p.Memberships {
		scopes = append(scopes, m.Scope)
	}
	if p.Conflicts, err = in.conflicts(ctx, scopes); err != nil {
		return err
	}
	p.Activity = in.act.view(id)
	for _, e := range p.Activity.Pushes {
		p.Pushes = append(p.Pushes, pushView{pushEntry: e, Shown: len(e.Changes)})
	}
	if p.Devices, err = in.devices(ctx, p.Activity.Devices); err != nil {
		return err
	}
	return in.render(c, "scope.html", p)
}

func (in *Inspector) space(c *gin.Context) error {
	id, err := idParam(c, "id", true)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	scope := wire.SpaceOwner(id)
	p, err := in.scopePage(c, scope)
	if err != nil {
		return err
	}
	p.Space = id
	ms, err := in.app.Store().Memberships(ctx, models.MembershipsParams{Scope: scope, Limit: maxMemberships + 1})
	if err != nil {
		return err
	}
	p.Memberships, p.MoreMembers = capped(ms)
	if p.Conflicts, err = in.conflicts(ctx, []string{scope}); err != nil {
		return err
	}
	return in.render(c, "scope.html", p)
}

func capped(ms []models.Membership) ([]models.Membership, bool) {
	if len(ms) > maxMemberships {
		return ms[:maxMemberships], true
	}
	return ms, false
}

// scopePage reads what the user and space pages share: the scope's
// counters and a page of its records.
func (in *Inspector) scopePage(c *gin.Context, scope string) (scopePage, error) {
	ctx := c.Request.Context()
	p := scopePage{base: in.base(), Purge: in.purge(), MaxPushes: in.cfg.MaxPushesPerUser,
		MaxDevices: in.cfg.MaxDevicesPerUser, MaxChanges: in.cfg.MaxChangesPerPush}
	model := c.Query("model")
	if model != "" && !slices.Contains(in.app.Models(), model) {
		return p, framework.Invalid("model", "not a registered model")
	}
	before, err := intParam(c, "before", 1, 1<<62)
	if err != nil {
		return p, err
	}
	limit := in.cfg.PageSize
	if c.Query("limit") != "" {
		n, err := intParam(c, "limit", 1, 1<<31)
		if err != nil {
			return p, err
		}
		limit = int(min(n, int64(in.cfg.MaxPageSize)))
	}
	state, err := in.app.Store().ScopeState(ctx, models.ScopeStateParams{Scopes: []string{scope}})
	if err != nil {
		return p, err
	}
	st, written := state[scope]
	st.Scope = scope
	p.Scope, p.Written = rowOf(st), written
	// The counters when the App keeps them, else a count.
	u, err := in.app.Usage(ctx, scope)
	if err != nil {
		return p, err
	}
	p.Scope.Records, p.Scope.Bytes, p.Scope.Counted = u.Records, u.Bytes, true
	if p.Records, err = in.records(ctx, scope, st.Version, model, before, limit); err != nil {
		return p, err
	}
	return p, nil
}

func (in *Inspector) conflicts(ctx context.Context, scopes []string) (conflictsView, error) {
	l := in.conflictLog()
	v := conflictsView{On: l != nil, Max: in.cfg.MaxConflicts}
	if l == nil {
		return v, nil
	}
	var err error
	v.Entries, err = l.Recent(ctx, scopes, in.cfg.MaxConflicts)
	return v, err
}

// devices adds to each device its lag: per scope it pulled, the scope's
// version now (read from the store) minus its cursor's position.
func (in *Inspector) devices(ctx context.Context, ds []deviceState) ([]deviceView, error) {
	var scopes []string
	for _, d := range ds {
		for s := range d.Positions {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	heads, err := in.app.Store().ScopeState(ctx, models.ScopeStateParams{Scopes: scopes})
	if err != nil {
		return nil, err
	}
	out := make([]deviceView, len(ds))
	for i, d := range ds {
		out[i].deviceState = d
		for s, pos := range d.Positions {
			l := lag{Scope: s, Position: pos, HeadAtPull: d.Heads[s], Head: heads[s].Version}
			l.Behind = max(0, l.HeadAtPull-pos)
			l.BehindNow = max(0, l.Head-pos)
			out[i].LagTotal += l.BehindNow
			out[i].Lags = append(out[i].Lags, l)
		}
		sort.Slice(out[i].Lags, func(a, b int) bool { return out[i].Lags[a].Scope < out[i].Lags[b].Scope })
	}
	return out, nil
}

type recordPage struct {
	base
	Record            models.Record
	Space             string
	Data              string
	Truncated, Absent bool
}

func (in *Inspector) record(c *gin.Context) error {
	scope, err := idParam(c, "scope", true)
	if err != nil {
		return err
	}
	uid, err := idParam(c, "uid", true)
	if err != nil {
		return err
	}
	model := c.Query("model")
	if !slices.Contains(in.app.Models(), model) {
		return framework.Invalid("model", "not a registered model")
	}
	rows, err := in.app.Store().Load(c.Request.Context(), models.LoadParams{Scope: scope, Model: model, UIDs: []string{uid}})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return framework.NewError(framework.CodeNotFound, "no record %s/%s in scope %s", model, uid, scope)
	}
	p := recordPage{base: in.base(), Record: rows[0], Space: wire.SpaceOf(scope)}
	p.Data = readable(rows[0].Data, true)
	if len(p.Data) > maxRecordBytes {
		cut := maxRecordBytes
		for cut > 0 && !utf8.RuneStart(p.Data[cut]) {
			cut--
		}
		p.Data, p.Truncated = p.Data[:cut], true
	}
	return in.render(c, "record.html", p)
}

// idParam reads an id from the query: at most maxID bytes, valid UTF-8.
func idParam(c *gin.Context, name string, required bool) (string, error) {
	v := c.Query(name)
	switch {
	case v == "" && required:
		return "", framework.Invalid(name, "required")
	case len(v) > maxID:
		return "", framework.Invalid(name, fmt.Sprintf("at most %d bytes", maxID))
	case !utf8.ValidString(v):
		return "", framework.Invalid(name, "not valid UTF-8")
	}
	return v, nil
}

// intParam reads an optional integer from the query (0 when absent).
func intParam(c *gin.Context, name string, lo, hi int64) (int64, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, framework.Invalid(name, fmt.Sprintf("an integer from %d to %d", lo, hi))
	}
	return n, nil
}

// headData is what the layout's head shows.
type headData struct {
	Title string
	Path  string
	Now   time.Time
}

// Head is the layout's head for a page titled t.
func (b base) Head(t string) headData { return headData{Title: t, Path: b.Path, Now: b.Now} }
