package metrics

import (
	"github.com/ferrysync/ferry/framework"
	"github.com/prometheus/client_golang/prometheus"
)

// statsCollector reports the App's [framework.Stats] at each scrape:
// they are counted by the framework (atomics on the App), so the sync
// path pays nothing for metrics nobody scrapes.
type statsCollector struct {
	app   *framework.App
	descs []statDesc
}

type statDesc struct {
	desc *prometheus.Desc
	of   func(framework.Stats) int64
}

func (p *Plugin) statsCollector(app *framework.App) prometheus.Collector {
	d := func(sub, name, help string, of func(framework.Stats) int64) statDesc {
		return statDesc{prometheus.NewDesc(prometheus.BuildFQName(Namespace, sub, name), help, nil, nil), of}
	}
	return &statsCollector{app: app, descs: []statDesc{
		d("pull", "pages_total", "Pull pages answered.", func(s framework.Stats) int64 { return s.PullPages }),
		d("pull", "records_total", "Records in pull pages, tombstones included.", func(s framework.Stats) int64 { return s.PullRecords }),
		d("push", "malformed_changes_total", "Pushed changes rejected for their envelope (bad uid, modify_at, shape) before the push ran; not in ferry_push_changes_total.",
			func(s framework.Stats) int64 { return s.MalformedChanges }),
		d("push", "contention_retries_total", "Push transactions run again after the store reported a concurrency failure (serialization, deadlock, busy).",
			func(s framework.Stats) int64 { return s.ContentionRetries }),
		d("purge", "runs_total", "Tombstone purge runs.", func(s framework.Stats) int64 { return s.PurgeRuns }),
		d("purge", "failures_total", "Tombstone purge runs that ended in an error.", func(s framework.Stats) int64 { return s.PurgeFailures }),
		d("purge", "tombstones_total", "Tombstones purged.", func(s framework.Stats) int64 { return s.PurgedTombstones }),
	}}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d.desc
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.app.Stats()
	for _, d := range c.descs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.of(s)))
	}
}
