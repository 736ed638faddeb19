package graph

import (
	"context"
	"regexp"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
)

// operationMetrics counts GraphQL operations by name, type and outcome,
// and times them. Operation names come from clients, so the label is
// bounded: a name that is not a GraphQL name, or a new name once
// maxOperationNames are known, counts as "other"; an unnamed operation is
// "anonymous". The outcome is "ok", or the extensions.code of the first
// error (a stable code of docs/errors.md or gqlgen's own), "error" without
// one.
type operationMetrics struct {
	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu    sync.Mutex
	names map[string]bool
}

const maxOperationNames = 200

var (
	operationNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	errorCodeRE     = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
)

func newOperationMetrics(reg prometheus.Registerer) *operationMetrics {
	m := &operationMetrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perks_graphql_operations_total", Help: "GraphQL operations by operation name, type and outcome (ok or the first error's code).",
		}, []string{"operation", "type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "perks_graphql_operation_duration_seconds", Help: "GraphQL operation latency by operation name and type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "type"}),
		names: map[string]bool{},
	}
	reg.MustRegister(m.ops, m.duration)
	return m
}

// name is the operation label of a client-given name.
func (m *operationMetrics) name(n string) string {
	if n == "" {
		return "anonymous"
	}
	if !operationNameRE.MatchString(n) {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.names[n] {
		if len(m.names) >= maxOperationNames {
			return "other"
		}
		m.names[n] = true
	}
	return n
}

// around observes each response (AroundResponses).
func (m *operationMetrics) around(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	start := time.Now()
	resp := next(ctx)
	op, typ := "invalid", "none" // the document did not parse or validate
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		if oc.Operation != nil {
			op, typ = m.name(oc.OperationName), string(oc.Operation.Operation)
			if oc.OperationName == "" && oc.Operation.Name != "" {
				op = m.name(oc.Operation.Name)
			}
		}
	}
	outcome := "ok"
	if resp != nil && len(resp.Errors) > 0 {
		outcome = "error"
		if code, ok := resp.Errors[0].Extensions["code"].(string); ok && errorCodeRE.MatchString(code) {
			outcome = code
		}
	}
	m.ops.WithLabelValues(op, typ, outcome).Inc()
	m.duration.WithLabelValues(op, typ).Observe(time.Since(start).Seconds())
	return resp
}
