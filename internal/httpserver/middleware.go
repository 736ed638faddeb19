// Package httpserver assembles the HTTP surface: middleware (request ids,
// access log, metrics, panic recovery), ops endpoints, and the mounts of the
// GraphQL, REST and web handlers.
package httpserver

import (
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/rest"
)

// HeaderRequestID carries the request id both ways.
const HeaderRequestID = "X-Request-Id"

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Metrics are the HTTP figures exported on /metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// Usage, when set, counts every request an authenticated partner (or
	// one of its users or merchants) made: the console's usage charts.
	Usage UsageCounter
}

// UsageCounter counts requests per partner id (report.RequestCounter): it
// runs on every request, so it must be cheap and never block.
type UsageCounter interface{ Count(partnerID string) }

// NewMetrics registers the HTTP metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perks_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "perks_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// Observe wraps next with request ids, recovery, metrics and one access log
// line per request. The log line carries the route pattern (the ServeMux
// pattern, e.g. "GET /integrations/users/{externalUserId}"), never the raw
// path (external user ids are emails for some partners) nor its query
// (which could hold secrets), nor any header but the request id. Unmatched
// requests log the fallback's pattern "/".
func Observe(next http.Handler, log *slog.Logger, m *Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !requestIDRE.MatchString(id) {
			id = request.NewID()
		}
		info := &request.Info{ID: id}
		w.Header().Set(HeaderRequestID, id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(request.With(r.Context(), info))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic", "code", string(apperr.CodeInternal), "request_id", id, "panic", v)
				if sw.status == 0 {
					rest.WriteError(sw, r, log, apperr.New(apperr.CodeInternal, "internal error"))
				}
			}
			route := info.Route()
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			m.latency.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
			if p := info.Partner(); p != "" && m.Usage != nil {
				m.Usage.Count(p)
			}
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
				slog.String("partner_id", info.Partner()),
				slog.String("remote", r.RemoteAddr),
			}
			if code := info.Code(); code != "" {
				// The code of an error answer (REST problem, or the
				// first GraphQL error).
				attrs = append(attrs, slog.String("code", code))
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}
