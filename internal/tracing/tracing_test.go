package tracing_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/tracing"
)

func TestEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"off by default", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			on, why := tracing.Enabled(func(k string) string { return tc.env[k] })
			require.Equal(t, tc.want, on, why)
			tp, err := tracing.FromEnv(t.Context(), func(k string) string { return tc.env[k] }, "")
			require.NoError(t, err)
			require.Equal(t, tc.want, tp != nil)
			if tp != nil {
				require.NoError(t, tp.Shutdown(t.Context()))
			}
		})
	}
	t.Run("grpc refused with the reason", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
		_, err := tracing.FromEnv(t.Context(), func(k string) string { return env[k] }, "")
		require.ErrorContains(t, err, "http/protobuf")
	})
}

// TestFromEnvExportsOverOTLPHTTP: the provider FromEnv builds posts spans
// to the collector named by OTEL_EXPORTER_OTLP_ENDPOINT, with the headers
// of OTEL_EXPORTER_OTLP_HEADERS (read by the exporter from the process
// environment, hence no t.Parallel).
func TestFromEnvExportsOverOTLPHTTP(t *testing.T) {
	type post struct {
		path, auth string
		body       []byte
	}
	got := make(chan post, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- post{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: b}
	}))
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer collector-token")
	t.Setenv("OTEL_SERVICE_NAME", "perks-test")

	tp, err := tracing.FromEnv(t.Context(), func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}[k]
	}, "v1.2.3")
	require.NoError(t, err)
	require.NotNil(t, tp)
	_, span := tracing.Tracer(tp).Start(t.Context(), "exported-span")
	span.End()
	require.NoError(t, tp.Shutdown(t.Context()))
	p := <-got
	require.Equal(t, "/v1/traces", p.path)
	require.Equal(t, "Bearer collector-token", p.auth)
	require.Contains(t, string(p.body), "exported-span")
	require.Contains(t, string(p.body), "perks-test")
	require.Contains(t, string(p.body), "v1.2.3")
}
