package request_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/request"
)

// TestLogHandlerAddsCodeAndRequestID: every warning and error line carries
// request_id (the request's, or "-" outside one) and every error line a
// code (INTERNAL unless given); what the call site gave is kept, and lower
// levels are untouched.
func TestLogHandlerAddsCodeAndRequestID(t *testing.T) {
	t.Parallel()
	setup := func() (*slog.Logger, func() []map[string]any) {
		var buf bytes.Buffer
		log := slog.New(request.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		return log, func() []map[string]any {
			var out []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(l), &m))
				out = append(out, m)
			}
			return out
		}
	}
	inRequest := request.With(context.Background(), &request.Info{ID: "req-1"})
	tests := []struct {
		name         string
		log          func(l *slog.Logger)
		code, reqID  any
		wantCode, id bool
	}{
		{"error in a request", func(l *slog.Logger) { l.ErrorContext(inRequest, "boom") }, "INTERNAL", "req-1", true, true},
		{"error outside a request", func(l *slog.Logger) { l.Error("boom") }, "INTERNAL", "-", true, true},
		{"error with its own code", func(l *slog.Logger) { l.ErrorContext(inRequest, "boom", "code", "TIMEOUT") }, "TIMEOUT", "req-1", true, true},
		{"code and id given by With", func(l *slog.Logger) { l.With("code", "X", "request_id", "job-7").Error("boom") }, "X", "job-7", true, true},
		{"warning", func(l *slog.Logger) { l.WarnContext(inRequest, "careful") }, nil, "req-1", false, true},
		{"info untouched", func(l *slog.Logger) { l.InfoContext(inRequest, "fine") }, nil, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, lines := setup()
			tt.log(log)
			got := lines()
			require.Len(t, got, 1)
			line := got[0]
			if tt.wantCode {
				require.Equal(t, tt.code, line["code"])
			} else {
				require.NotContains(t, line, "code")
			}
			if tt.id {
				require.Equal(t, tt.reqID, line["request_id"])
			} else {
				require.NotContains(t, line, "request_id")
			}
			require.Len(t, strings.Split(strings.TrimSpace(string(mustJSON(t, line))), `"request_id"`), map[bool]int{true: 2, false: 1}[tt.id], "one request_id key")
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
