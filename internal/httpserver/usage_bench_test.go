package httpserver_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perkshq/perks/internal/httpserver"
	"github.com/perkshq/perks/internal/report"
	"github.com/perkshq/perks/internal/request"
)

// BenchmarkObserveUsage is the request path's middleware (request id,
// metrics, access log) around a handler that authenticates a partner, with
// and without the console's request counter: the difference is what
// counting costs a request (docs/admin.md).
func BenchmarkObserveUsage(b *testing.B) {
	partnerID := uuid.NewString()
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		request.From(r.Context()).SetPartner(partnerID)
		w.WriteHeader(http.StatusNoContent)
	})
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, counting := range []bool{false, true} {
		name := "without-counter"
		m := httpserver.NewMetrics(prometheus.NewRegistry())
		if counting {
			name = "with-counter"
			m.Usage = &report.RequestCounter{}
		}
		h := httpserver.Observe(inner, log, m)
		b.Run(name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/integrations/users/x", nil)
				for pb.Next() {
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		})
	}
}
