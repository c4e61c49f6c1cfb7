package framework

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrysync/ferry/models"
)

// A push is written by one pipeline with three routes, fastest first. Each
// change is validated the same way beforehand, decided by the same rule
// ([models.Rule] for the store's, the policy otherwise), and answered the
// same way on each route; the route only changes what it costs.
const (
	// RouteStoreDecided: PostgreSQL decides last-writer-wins inside the
	// statement that writes ([models.NewerWriter]), one statement per
	// model of a push, without reading the stored rows first. It needs a
	// policy that advertises the store's rule ([StoreRuler]) and no apply
	// hook for the model.
	RouteStoreDecided = "store-decided"
	// RouteBulk: the stored rows are read in one query per model, the
	// policy decides in Go, and the writes go out in bulk at the end. It
	// needs no apply hook for the model.
	RouteBulk = "bulk"
	// RouteChangeByChange: each write runs through the apply hooks inside a
	// savepoint, so a hook sees every write and can veto it alone.
	RouteChangeByChange = "change-by-change"
)

// route is a write route, fastest first.
type route uint8

const (
	routeStore route = iota
	routeBulk
	routeCareful
)

func (r route) String() string {
	switch r {
	case routeStore:
		return RouteStoreDecided
	case routeBulk:
		return RouteBulk
	}
	return RouteChangeByChange
}

// WriteRoute describes how pushes of one model are written.
type WriteRoute struct {
	Model string
	// Route is the fastest route the model's changes take
	// ([RouteStoreDecided], [RouteBulk] or [RouteChangeByChange]) under
	// the model's own policy. A push takes the slowest route among its
	// changes, and the ordinary routes for some pushes whatever the
	// model: a [PushOptions].Policy without the store's rule, AbortOnStale,
	// a tombstone sent without data, one record twice, a user near a
	// quota; a bulk write the store refuses (a unique field) is done again
	// change by change.
	Route string
	// Reason says what keeps the model off the faster routes; empty on
	// the store-decided route.
	Reason string
	// Hooks are the IDs of the apply hooks that run for the model, in run
	// order: any of them puts it on [RouteChangeByChange]. Untagged are
	// those among them bound without Tags, which run for every model.
	Hooks    []string
	Untagged []string
}

// modelPlan is what a model's route is decided from, derived from the
// registration, the store and the apply hooks bound when the hooks were
// at generation gen.
type modelPlan struct {
	gen uint64
	// hooks (untagged among them) run for the model: change by change.
	hooks, untagged []string
	// storeOK: the model's table can apply [models.NewerWins] on this
	// store, whatever the policy; storeWhy says why not.
	storeOK  bool
	storeWhy string
}

// route is the route of a change of the plan's model decided by rule.
func (p *modelPlan) route(rule models.Rule) route {
	switch {
	case len(p.hooks) > 0:
		return routeCareful
	case !p.storeOK || rule != models.NewerWins:
		return routeBulk
	}
	return routeStore
}

// planOf returns m's plan, derived again when apply hooks were bound or
// unbound since it was last derived (one atomic load otherwise).
func (a *App) planOf(m *model) *modelPlan {
	gen := a.onApply.Generation()
	if p := m.plan.Load(); p != nil && p.gen == gen {
		return p
	}
	p := &modelPlan{gen: gen}
	for _, h := range a.onApply.Matching(m.name) {
		p.hooks = append(p.hooks, h.ID)
		if len(h.Tags) == 0 {
			p.untagged = append(p.untagged, h.ID)
		}
	}
	switch {
	case m.selfOwned:
		p.storeWhy = "it is self-owned (who may write is checked in Go)"
	case !a.store.Features(m.name).WriteIfNewer:
		p.storeWhy = "the store cannot decide last-writer-wins in the writing statement (it does so on PostgreSQL through pgx, for tables whose data columns have an equality)"
	default:
		p.storeOK = true
	}
	m.plan.Store(p)
	return p
}

// WriteRoute says how pushes of model are written, and what keeps them
// off the faster routes (apply hooks, the policy, the store); see
// [RouteStoreDecided]. It reflects the hooks bound now; binding an apply
// hook later changes it.
func (a *App) WriteRoute(model string) (WriteRoute, error) {
	m, ok := a.model(model)
	if !ok {
		return WriteRoute{}, NewError(CodeUnknownModel, "unknown model %q", model)
	}
	p := a.planOf(m)
	r := p.route(m.rule)
	wr := WriteRoute{Model: model, Route: r.String(), Hooks: p.hooks, Untagged: p.untagged}
	switch {
	case r == routeCareful && len(p.untagged) > 0:
		wr.Reason = fmt.Sprintf("apply hooks run for every write of it (%s; untagged, so for every model: give them Tags)", strings.Join(p.hooks, ", "))
	case r == routeCareful:
		wr.Reason = fmt.Sprintf("apply hooks run for every write of it (%s)", strings.Join(p.hooks, ", "))
	case !p.storeOK:
		wr.Reason = p.storeWhy
	case r == routeBulk:
		wr.Reason = fmt.Sprintf("its conflict policy (%T) lets the store apply no rule of its own (see framework.StoreRuler)", m.policy)
	}
	return wr, nil
}

// logRoutes logs each model's write route (debug), and once, at info,
// the untagged apply hooks that keep every model off the fast routes.
func (a *App) logRoutes(ctx context.Context, when string) {
	var untagged []string
	for _, name := range a.Models() {
		wr, err := a.WriteRoute(name)
		if err != nil {
			continue
		}
		a.log.DebugContext(ctx, "write route", "at", when, "model", name, "route", wr.Route, "reason", wr.Reason, "hooks", wr.Hooks)
		if untagged == nil {
			untagged = wr.Untagged
		}
	}
	if len(untagged) > 0 {
		a.log.InfoContext(ctx, "untagged apply hooks run for every model, so every push is written change by change; tag them with the models they concern",
			"at", when, "hooks", untagged)
	}
}
