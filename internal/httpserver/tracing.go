package httpserver

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/tracing"
)

// traceRequests makes a server span of every request, the parent of the
// spans of its SQL statements and of the jobs it inserts. A caller's
// traceparent is honoured, so a partner's own trace continues into Perks.
//
// It runs inside Observe, which has named the request (request id) and
// whose request.Info learns the route pattern when the mux matches; the
// span is named after that pattern ("POST /integrations/actions") once the
// handler is done. Deliberately not otelhttp: its server spans carry
// url.path (external user ids are emails for some partners), the query,
// the client's address and its User-Agent. Here the only attributes are
// the method, the pattern, the status, the scheme, the request id and the
// error code.
func traceRequests(next http.Handler, tracer trace.Tracer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(tracing.KeyHTTPMethod.String(r.Method), tracing.KeyURLScheme.String(scheme)))
		info := request.From(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			status := sw.status
			if status == 0 {
				status = http.StatusOK
				if v != nil {
					status = http.StatusInternalServerError
				}
			}
			if route := info.Route(); route != "" {
				span.SetName(route)
				_, path, ok := strings.Cut(route, " ")
				if !ok {
					path = route
				}
				span.SetAttributes(tracing.KeyHTTPRoute.String(path))
			}
			span.SetAttributes(tracing.KeyHTTPStatus.Int(status), tracing.KeyRequestID.String(info.ID))
			if code := info.Code(); code != "" {
				span.SetAttributes(tracing.KeyErrorCode.String(code))
			}
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
			if v != nil {
				panic(v)
			}
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}
