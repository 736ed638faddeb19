package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Metrics is River worker middleware that counts the jobs this process
// works by kind and outcome and times them: how long each attempt ran and
// how long it waited in its queue before (from when it was due to when a
// worker took it). It costs no query: an operator gets the River figures
// from the workers as they happen, not from counting river_job on every
// scrape.
type Metrics struct {
	river.MiddlewareDefaults

	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	wait     *prometheus.HistogramVec
}

// Outcomes of an attempt (the outcome label).
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeSnoozed   = "snoozed"
	OutcomeCancelled = "cancelled"
)

// NewMetrics registers the job metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perks_river_job_attempts_total", Help: "River job attempts worked by this process, by kind and outcome (ok, error, snoozed, cancelled).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "perks_river_job_duration_seconds", Help: "How long River job attempts ran, by kind.", Buckets: buckets,
		}, []string{"kind"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "perks_river_job_queue_wait_seconds", Help: "How long River jobs waited from due to taken by a worker, by kind.", Buckets: buckets,
		}, []string{"kind"}),
	}
	reg.MustRegister(m.attempts, m.duration, m.wait)
	return m
}

// Work times one attempt of job.
func (m *Metrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	if job.AttemptedAt != nil {
		m.wait.WithLabelValues(job.Kind).Observe(max(job.AttemptedAt.Sub(job.ScheduledAt), 0).Seconds())
	}
	err := doInner(ctx)
	m.duration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
	m.attempts.WithLabelValues(job.Kind, outcome(err)).Inc()
	return err
}

// outcome names what an attempt's error means to River.
func outcome(err error) string {
	var snooze *river.JobSnoozeError
	var cancel *river.JobCancelError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &snooze):
		return OutcomeSnoozed
	case errors.As(err, &cancel):
		return OutcomeCancelled
	}
	return OutcomeError
}
