package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perkshq/perks/internal/database"
)

// dbCollector exports pool figures and River's job counts by state at
// scrape time.
type dbCollector struct {
	db                              *database.DB
	acquired, idle, total, maxConns *prometheus.Desc
	waits                           *prometheus.Desc
	jobs                            *prometheus.Desc
}

func newDBCollector(db *database.DB) *dbCollector {
	return &dbCollector{
		db:       db,
		acquired: prometheus.NewDesc("perks_db_pool_acquired_conns", "Connections in use.", nil, nil),
		idle:     prometheus.NewDesc("perks_db_pool_idle_conns", "Idle connections.", nil, nil),
		total:    prometheus.NewDesc("perks_db_pool_total_conns", "Open connections.", nil, nil),
		maxConns: prometheus.NewDesc("perks_db_pool_max_conns", "Pool size limit.", nil, nil),
		waits:    prometheus.NewDesc("perks_db_pool_empty_acquire_total", "Acquires that had to wait for a connection.", nil, nil),
		jobs:     prometheus.NewDesc("perks_river_jobs", "River jobs by queue and state.", []string{"queue", "state"}, nil),
	}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.maxConns, c.waits, c.jobs} {
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
	rows, err := c.db.Pool.Query(ctx, "SELECT queue, state::text, count(*) FROM river_job GROUP BY queue, state")
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var queue, state string
		var n int64
		if rows.Scan(&queue, &state, &n) == nil {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), queue, state)
		}
	}
}
