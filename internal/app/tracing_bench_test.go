package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/perkshq/perks/internal/apptest"
)

// discard is an exporter that drops every span (the cost of recording
// them, without an exporter's I/O).
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkEarnTracing: one signed earn request through the whole handler
// (in process, no network), tracing off (the default: nothing installed)
// and on (every span sampled and recorded, then dropped). docs/tracing.md
// quotes the numbers.
//
//	go test -run '^$' -bench EarnTracing -benchtime 500x ./internal/app
func BenchmarkEarnTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			opts := apptest.Options{}
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				opts.TracerProvider = tp
			}
			env := apptest.New(b, opts)
			res := env.Partner("acme", http.MethodPut, "/integrations/earning-rules/bench", []byte(`{"name":"Bench","points":1}`))
			require.Less(b, res.StatusCode, 300, "%s", res.Body)
			secret := env.HMACSecret("acme")
			b.ResetTimer()
			for i := range b.N {
				body, _ := json.Marshal(map[string]any{"externalUserId": fmt.Sprintf("usr_bench_%d", i%50), "action": "bench",
					"reference": fmt.Sprintf("ref-%d", i), "createUser": true})
				req := httptest.NewRequest(http.MethodPost, "/integrations/actions", bytesReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Partner-Slug", "acme")
				req.Header.Set("X-Signature", env.SignV1(secret, body))
				w := httptest.NewRecorder()
				env.App.Handler.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
