package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perkshq/perks/internal/database"
)

// dbCollector exports pool figures and, per River queue, how long the job
// next in line has been due (the queue's lag) and how many jobs are
// available, counted up to maxAvailable, at scrape time: a few index probes
// per queue (river_job_prioritized_fetching_index), never a count of the
// whole jobs table, which keeps a day of finished jobs. What the workers
// did is jobs.Metrics'.
type dbCollector struct {
	db                              *database.DB
	queues                          []string
	acquired, idle, total, maxConns *prometheus.Desc
	waits                           *prometheus.Desc
	lag, available                  *prometheus.Desc
}

// maxAvailable bounds the available-jobs count of a scrape.
const maxAvailable = 10_000

func newDBCollector(db *database.DB, queues []string) *dbCollector {
	return &dbCollector{
		db:       db,
		queues:   queues,
		acquired: prometheus.NewDesc("perks_db_pool_acquired_conns", "Connections in use.", nil, nil),
		idle:     prometheus.NewDesc("perks_db_pool_idle_conns", "Idle connections.", nil, nil),
		total:    prometheus.NewDesc("perks_db_pool_total_conns", "Open connections.", nil, nil),
		maxConns: prometheus.NewDesc("perks_db_pool_max_conns", "Pool size limit.", nil, nil),
		waits:    prometheus.NewDesc("perks_db_pool_empty_acquire_total", "Acquires that had to wait for a connection.", nil, nil),
		lag: prometheus.NewDesc("perks_river_queue_lag_seconds",
			"How long the oldest available job of the queue has been due (0 when none is waiting).", []string{"queue"}, nil),
		available: prometheus.NewDesc("perks_river_queue_available_jobs",
			"Jobs available in the queue, waiting for a worker, counted up to 10000.", []string{"queue"}, nil),
	}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.maxConns, c.waits, c.lag, c.available} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// River's priorities are 1 to 4: the oldest job of a queue is the
	// oldest of each priority's first, each one index probe.
	rows, err := c.db.Pool.Query(ctx, `SELECT q,
		coalesce(extract(epoch FROM now() - (SELECT min(o.s) FROM generate_series(1, 4) p, LATERAL (
			SELECT scheduled_at AS s FROM river_job WHERE state = 'available' AND queue = q AND priority = p
			ORDER BY scheduled_at LIMIT 1) o)), 0)::float8,
		(SELECT count(*) FROM (SELECT 1 FROM river_job WHERE state = 'available' AND queue = q LIMIT $2) a)::float8
		FROM unnest($1::text[]) q`, c.queues, maxAvailable)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var queue string
		var lag, n float64
		if rows.Scan(&queue, &lag, &n) == nil {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, max(lag, 0), queue)
			ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, n, queue)
		}
	}
}
