// Package metrics exposes a Ferry server's workings to Prometheus, with
// github.com/prometheus/client_golang: HTTP requests by route, method
// and status with their latencies, pushed changes by model and status
// (stale ones are the conflicts the incoming change lost), rejections by
// code, pull pages and records, version-counter contention retries,
// tombstone purges, the database pool, and open live streams. No metric
// has a per-user label: a scrape's size does not grow with the users.
//
// Attach it with [framework.App.Use], put [Plugin.Middleware] on the engine, and
// serve [Plugin.Handler] where the scraper reaches it (on a private
// listener if the server's port is public):
//
//	m, _ := metrics.New(metrics.Config{})
//	app.MustUse(m)
//	engine.Use(m.Middleware())
//	engine.GET("/metrics", gin.WrapH(m.Handler()))
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of the plugin (ferry_…).
const Namespace = "ferry"

// Label values used where the real value could be anything a client
// sends, so that a scrape stays small whatever clients do.
const (
	// UnmatchedRoute is the route label of requests no route matched.
	UnmatchedRoute = "unmatched"
	// UnknownModel is the model label of changes naming no registered
	// model.
	UnknownModel = "unknown"
	// OtherMethod is the method label of methods outside the standard ones.
	OtherMethod = "other"
)

// DefaultBuckets are the request latency buckets, in seconds: from a
// cached pull (a millisecond) to a large push on a busy PostgreSQL.
var DefaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Config configures the plugin. Its zero value is useful.
type Config struct {
	// Registry is where the metrics are registered. Nil makes a new
	// registry holding, besides Ferry's, the Go runtime's and the
	// process's collectors; pass your own to serve Ferry's metrics beside
	// your application's.
	Registry *prometheus.Registry
	// Streams names the live streams to count (ferry_live_streams, by
	// kind): a function per kind that returns how many are open on this
	// replica, such as realtime's and rxdb's Plugin.Streams.
	Streams map[string]func() int
	// Buckets are the request latency buckets in seconds (default
	// [DefaultBuckets]).
	Buckets []float64
	// DBName is the db_name label of the database pool's metrics
	// (go_sql_…; default "ferry").
	DBName string
}

// Plugin is the metrics plugin; build it with [New]. One Plugin serves
// one App.
type Plugin struct {
	cfg Config
	reg *prometheus.Registry

	requests *prometheus.HistogramVec
	inFlight prometheus.Gauge
	changes  *prometheus.CounterVec
	rejected *prometheus.CounterVec

	app       *framework.App
	modelsSet sync.Once
	models    map[string]bool
}

var _ framework.Plugin = (*Plugin)(nil)

// New validates cfg and builds the plugin and its request metrics.
func New(cfg Config) (*Plugin, error) {
	if cfg.Buckets == nil {
		cfg.Buckets = DefaultBuckets
	}
	for i, b := range cfg.Buckets {
		if i > 0 && b <= cfg.Buckets[i-1] {
			return nil, fmt.Errorf("metrics: Config.Buckets must increase (%g after %g)", b, cfg.Buckets[i-1])
		}
	}
	for kind, fn := range cfg.Streams {
		if kind == "" || fn == nil {
			return nil, fmt.Errorf("metrics: Config.Streams[%q]: a kind needs a name and a function", kind)
		}
	}
	if cfg.DBName == "" {
		cfg.DBName = "ferry"
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	p := &Plugin{cfg: cfg, reg: reg,
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http",
			Name: "request_duration_seconds", Buckets: cfg.Buckets,
			Help: "HTTP requests by route (the route's pattern, or unmatched), method and status, and how long they took; _count is the number of requests."},
			[]string{"route", "method", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http",
			Name: "requests_in_flight", Help: "HTTP requests being served, live streams included."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "push",
			Name: "changes_total", Help: "Pushed changes by model and status (applied, stale: lost a conflict, rejected, forbidden)."},
			[]string{"model", "status"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "push",
			Name: "rejections_total", Help: "Rejected pushed changes by model and error code (invalid: validation, unknown_model, quota_exceeded, …)."},
			[]string{"model", "code"}),
	}
	for _, c := range []prometheus.Collector{p.requests, p.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return p, nil
}

// Name is "metrics".
func (p *Plugin) Name() string { return "metrics" }

// Setup registers the App's metrics and binds the "metrics.results"
// hook, which counts every push's results after it committed.
func (p *Plugin) Setup(app *framework.App) error {
	if p.app != nil {
		return errors.New("metrics: the plugin is already set up on an App; build one per App")
	}
	p.app = app
	cs := []prometheus.Collector{p.changes, p.rejected, p.statsCollector(app)}
	if db := app.DB(); db != nil {
		cs = append(cs, collectors.NewDBStatsCollector(db.DB, p.cfg.DBName))
	}
	kinds := make([]string, 0, len(p.cfg.Streams))
	for k := range p.cfg.Streams {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		fn := p.cfg.Streams[kind]
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "live",
			Name: "streams", Help: "Live streams open on this replica, by kind.", ConstLabels: prometheus.Labels{"kind": kind}},
			func() float64 { return float64(fn()) }))
	}
	for _, c := range cs {
		if err := p.reg.Register(c); err != nil {
			return fmt.Errorf("metrics: register: %w", err)
		}
	}
	app.OnResults().Bind(&hook.Handler[*framework.ResultsEvent]{ID: "metrics.results", Func: p.countResults})
	return nil
}

// Registry is where the plugin's metrics are (Config.Registry, or the one
// New made).
func (p *Plugin) Registry() *prometheus.Registry { return p.reg }

// Handler serves the registry in Prometheus's exposition formats. Put it
// where only the scraper reaches it if the metrics are private.
func (p *Plugin) Handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg})
}

// Middleware is gin middleware that measures every request after it:
// put it on the engine, before the routes (after request ids, so that
// its work is theirs too). The route label is gin's route pattern
// (/sync/rxdb/:collection/pull), never the path itself, so it is
// bounded by the routes.
func (p *Plugin) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		p.inFlight.Inc()
		defer func() {
			// Deferred, so a request a handler aborts with a panic (which
			// the recovery middleware passes on) is counted too.
			p.inFlight.Dec()
			route := c.FullPath()
			if route == "" {
				route = UnmatchedRoute
			}
			p.requests.WithLabelValues(route, method(c.Request.Method), strconv.Itoa(c.Writer.Status())).
				Observe(time.Since(start).Seconds())
		}()
		c.Next()
	}
}

func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return OtherMethod
}

// countResults counts a push's results, grouped first so that a push of
// a thousand changes touches a counter per (model, status), not per
// change.
func (p *Plugin) countResults(e *framework.ResultsEvent) error {
	type key struct{ model, status, code string }
	counts := map[key]int{}
	for i := range e.Results {
		r := &e.Results[i]
		k := key{model: p.modelLabel(r.Model), status: r.Status}
		if r.Status == framework.StatusRejected {
			k.code = r.Code
			if k.code == "" {
				k.code = framework.CodeInvalid
			}
		}
		counts[k]++
	}
	for k, n := range counts {
		p.changes.WithLabelValues(k.model, k.status).Add(float64(n))
		if k.code != "" {
			p.rejected.WithLabelValues(k.model, k.code).Add(float64(n))
		}
	}
	return e.Next()
}

// modelLabel is name when it is a registered model, UnknownModel
// otherwise: a client may name any model. The registered models are
// read once, at the first push (the registry is complete by then).
func (p *Plugin) modelLabel(name string) string {
	p.modelsSet.Do(func() {
		p.models = map[string]bool{}
		for _, m := range p.app.Models() {
			p.models[m] = true
		}
	})
	if p.models[name] {
		return name
	}
	return UnknownModel
}
