package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/apptest"
)

// TestTraceEarnToWebhook: with tracing on, one earn request is one trace:
// the HTTP server span, the SQL statements under it, the River insert and
// the webhook job's work, and the delivery's client span, whose
// traceparent the receiver gets. No span carries the user's id or email,
// the request's reference, the partner's HMAC secret, the request
// signature or the webhook secret. With tracing off nothing is sent or
// stored.
func TestTraceEarnToWebhook(t *testing.T) {
	t.Parallel()

	const (
		externalID = "ann.trace@example.test"
		reference  = "order-trace-4711"
	)
	type delivery struct {
		header http.Header
		body   []byte
	}
	type bundle struct {
		env      *apptest.Env
		spans    *tracetest.InMemoryExporter
		got      chan delivery
		secret   string
		earnSig  string
		earnBody []byte
	}
	setup := func(t *testing.T, traced bool) *bundle {
		t.Helper()
		b := &bundle{got: make(chan delivery, 10)}
		opts := apptest.Options{Workers: true}
		if traced {
			b.spans = tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(b.spans))
			t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
			opts.TracerProvider = tp
		}
		b.env = apptest.New(t, opts)
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			b.got <- delivery{header: r.Header.Clone(), body: body}
		}))
		t.Cleanup(rcv.Close)
		res := b.env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+uuid.NewString(), map[string]any{
			"url": rcv.URL + "/hooks?token=receiver-own-token", "eventTypes": []string{"points.earned"},
		})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		b.secret = res.JSON(t)["secret"].(string)
		res = b.env.Partner("acme", http.MethodPut, "/integrations/earning-rules/traced", []byte(`{"name":"Traced","points":40}`))
		require.Less(t, res.StatusCode, 300, "%s", res.Body)
		b.earnBody, _ = json.Marshal(map[string]any{"externalUserId": externalID, "action": "traced", "reference": reference, "createUser": true})
		b.earnSig = b.env.SignV1(b.env.HMACSecret("acme"), b.earnBody)
		return b
	}
	earn := func(t *testing.T, b *bundle, headers map[string]string) delivery {
		t.Helper()
		res := b.env.Partner("acme", http.MethodPost, "/integrations/actions", b.earnBody, headers)
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		select {
		case d := <-b.got:
			require.Contains(t, string(d.body), "points.earned")
			return d
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery arrived")
		}
		panic("unreachable")
	}
	// find returns the ended spans named name (waiting for them: a job's
	// span ends after the receiver has answered).
	find := func(t *testing.T, b *bundle, name string) []tracetest.SpanStub {
		t.Helper()
		var found []tracetest.SpanStub
		require.Eventually(t, func() bool {
			found = found[:0]
			for _, s := range b.spans.GetSpans() {
				if s.Name == name {
					found = append(found, s)
				}
			}
			return len(found) > 0
		}, 15*time.Second, 10*time.Millisecond, "no span %q", name)
		return found
	}

	t.Run("one trace from the request to the delivery", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		b.spans.Reset()
		d := earn(t, b, nil)

		server := find(t, b, "POST /integrations/actions")
		require.Len(t, server, 1)
		srv := server[0]
		require.Equal(t, trace.SpanKindServer, srv.SpanKind)
		require.False(t, srv.Parent.IsValid(), "the request starts the trace")
		tid := srv.SpanContext.TraceID()
		attrs := map[string]any{}
		for _, kv := range srv.Attributes {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
		}
		require.Equal(t, "/integrations/actions", attrs["http.route"])
		require.Equal(t, int64(201), attrs["http.response.status_code"])
		require.Equal(t, "POST", attrs["http.request.method"])

		// SQL statements of the earn, children of the request's span.
		var sqlChildren int
		var ledger bool
		for _, s := range b.spans.GetSpans() {
			if s.Parent.SpanID() == srv.SpanContext.SpanID() && s.SpanKind == trace.SpanKindClient {
				for _, kv := range s.Attributes {
					if kv.Key == "db.query.text" {
						sqlChildren++
						require.NotContains(t, kv.Value.AsString(), "'", "literals are replaced: %s", kv.Value.AsString())
						ledger = ledger || strings.Contains(kv.Value.AsString(), "INSERT INTO ledger_entries")
					}
				}
			}
		}
		require.Greater(t, sqlChildren, 3, "the earn's SQL statements are spans under the request")
		// The hot paths' prepared statements bypass bun's hook: they make
		// their own spans (database.startSpan).
		require.True(t, ledger, "the ledger's prepared statement is a span too")

		insert := find(t, b, "river.insert")
		var ins tracetest.SpanStub
		for _, s := range insert {
			if s.SpanContext.TraceID() == tid {
				ins = s
			}
		}
		require.True(t, ins.SpanContext.IsValid(), "the delivery job's insert is in the request's trace")

		work := find(t, b, "river.work/webhook_deliver")
		require.Len(t, work, 1)
		require.Equal(t, tid, work[0].SpanContext.TraceID(), "the job's span is in the request's trace")
		require.Equal(t, ins.SpanContext.SpanID(), work[0].Parent.SpanID())

		post := find(t, b, "webhook POST")
		require.Len(t, post, 1)
		require.Equal(t, tid, post[0].SpanContext.TraceID())
		require.Equal(t, work[0].SpanContext.SpanID(), post[0].Parent.SpanID())
		require.Equal(t, fmt.Sprintf("00-%s-%s-01", tid, post[0].SpanContext.SpanID()), d.header.Get("traceparent"),
			"the receiver continues the trace")

		// SQL run by the job is in the trace too.
		var jobSQL bool
		for _, s := range b.spans.GetSpans() {
			jobSQL = jobSQL || (s.Parent.SpanID() == work[0].SpanContext.SpanID() && s.SpanKind == trace.SpanKindClient && s.Name != "webhook POST")
		}
		require.True(t, jobSQL, "the job's SQL statements are spans under the job")

		// Nothing secret or personal in any span.
		dump, err := json.Marshal(b.spans.GetSpans())
		require.NoError(t, err)
		for _, secret := range []string{
			externalID, "ann.trace", reference, b.env.HMACSecret("acme"), b.earnSig, b.secret,
			strings.TrimPrefix(b.secret, "whsec_"), d.header.Get("webhook-signature"), "receiver-own-token",
		} {
			require.NotContains(t, string(dump), secret)
		}
		require.NotContains(t, b.env.Logs.String(), b.earnSig)
	})

	t.Run("a caller's traceparent is continued", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		d := earn(t, b, map[string]string{"traceparent": parent})
		srv := find(t, b, "POST /integrations/actions")
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", srv[0].SpanContext.TraceID().String())
		require.Equal(t, "00f067aa0ba902b7", srv[0].Parent.SpanID().String())
		require.True(t, strings.HasPrefix(d.header.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-"))
	})

	t.Run("off: no traceparent sent or stored", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		d := earn(t, b, map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
		require.Empty(t, d.header.Get("traceparent"))
		var n int
		require.NoError(t, b.env.DB.Bun.NewRaw(`SELECT count(*) FROM river_job WHERE metadata ? 'traceparent'`).Scan(t.Context(), &n))
		require.Zero(t, n)
	})
}
