package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts delivery attempts per partner by outcome and times the
// receivers' answers, as each attempt is recorded: an operator sees which
// partner's endpoint fails or slows down without querying the delivery
// log. The partner label is its slug (bounded by the number of partners).
type Metrics struct {
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Attempt outcomes (the outcome label).
const (
	AttemptDelivered = "delivered" // a 2xx answer
	AttemptRetrying  = "retrying"  // failed, another attempt is due
	AttemptFailed    = "failed"    // failed, no attempt left
	AttemptDisabled  = "disabled"  // 410 Gone: the endpoint was switched off
)

// NewMetrics registers the delivery metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perks_webhook_attempts_total", Help: "Webhook delivery attempts by partner and outcome (delivered, retrying, failed, disabled).",
		}, []string{"partner", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "perks_webhook_attempt_duration_seconds", Help: "How long receivers took to answer a delivery attempt (or to fail it), by partner.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"partner"}),
	}
	reg.MustRegister(m.attempts, m.latency)
	return m
}

// observe records one recorded attempt; a nil m records nothing.
func (m *Metrics) observe(partner, status string, retry bool, latency time.Duration) {
	if m == nil {
		return
	}
	outcome := AttemptRetrying
	switch {
	case status == StatusSucceeded:
		outcome = AttemptDelivered
	case status == StatusDisabled:
		outcome = AttemptDisabled
	case status == StatusFailed && !retry:
		outcome = AttemptFailed
	}
	m.attempts.WithLabelValues(partner, outcome).Inc()
	m.latency.WithLabelValues(partner).Observe(latency.Seconds())
}
