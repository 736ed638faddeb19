package httpserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/openapi"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/rest"
	"github.com/perkshq/perks/internal/textcheck"
)

// Options configure the handler.
type Options struct {
	DB       *database.DB
	API      *rest.API
	GraphQL  http.Handler
	GraphiQL bool
	Registry *prometheus.Registry
	// Metrics says whether this handler serves /metrics (the main
	// listener does unless a metrics listener of its own is set), and
	// MetricsToken the bearer token it then requires ("" for none: only in
	// development, see app.New).
	Metrics      bool
	MetricsToken string
	Log          *slog.Logger
	// Web mounts extra handlers (the consumer webview, the merchant page).
	Web func(mux *http.ServeMux)
	// PublicURL is the deployment's public base URL: /openapi.json lists
	// it as the document's server, so generated clients call it.
	PublicURL string
	// CORS, when set, lets the origins partners list call /graphql from
	// a browser (preflight on OPTIONS /graphql).
	CORS *CORS
	// Usage, when set, counts the requests of each partner (the console's
	// usage charts).
	Usage UsageCounter
	// Tracer, when set, makes a server span of every request
	// (docs/tracing.md); nil (tracing off) adds nothing to a request.
	Tracer trace.Tracer
}

// New builds the root handler and lists the routes it serves.
func New(o Options) (http.Handler, []string) {
	rt := rest.NewRouter(o.Log)
	o.API.Register(rt)
	if o.CORS != nil {
		rt.Handle(http.MethodPost, "/graphql", o.CORS.wrap(o.graphql()))
		rt.Handle(http.MethodOptions, "/graphql", o.CORS.preflight(o.Log))
	} else {
		rt.Handle(http.MethodPost, "/graphql", o.graphql())
	}
	if o.GraphiQL {
		rt.Handle(http.MethodGet, "/graphql", playground.Handler("Perks GraphQL", "/graphql"))
	}
	rt.Handle(http.MethodGet, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	rt.Handle(http.MethodGet, "/readyz", http.HandlerFunc(o.ready))
	if o.Metrics {
		rt.Handle(http.MethodGet, "/metrics", MetricsHandler(o.Registry, o.MetricsToken, o.Log))
	}
	apiDoc := openapi.JSONFor(o.PublicURL)
	rt.Handle(http.MethodGet, "/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(apiDoc)
	}))
	if o.Web != nil {
		o.Web(rt.Mux())
	}
	routes := rt.Routes()
	inner := limitHeaders(refuseControlInURL(rt.Finish(), o.Log), MaxHeaderBytes)
	if o.Tracer != nil {
		inner = traceRequests(inner, o.Tracer)
	}
	m := NewMetrics(o.Registry)
	m.Usage = o.Usage
	return Observe(inner, o.Log, m), routes
}

// MetricsHandler serves reg's metrics, to requests carrying "Authorization:
// Bearer <token>" when token is set (compared in constant time; anything
// else is 401 UNAUTHENTICATED, the token never logged).
func MetricsHandler(reg *prometheus.Registry, token string, log *slog.Logger) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			rest.WriteError(w, r, log, apperr.New(apperr.CodeUnauthenticated, "/metrics needs the bearer token of PERKS_METRICS_TOKEN"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// graphql authenticates the consumer token when one is sent and leaves the
// outcome in the context: `program` works without a user, everything else
// reports the stored error.
func (o Options) graphql() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := rest.ReadBody(r, o.API.MaxBodyBytes)
		if err != nil {
			rest.WriteError(w, r, o.Log, err)
			return
		}
		r.Body = http.NoBody
		// Variables reach the database as they are: the same control
		// character rule as every REST body (textcheck.JSON).
		if err := textcheck.JSON("", body); err != nil {
			writeGraphQLError(w, r, apperr.As(err))
			return
		}
		ctx := r.Context()
		if tok, _ := auth.TokenFromHeaders(r.Header); tok != "" || r.Header.Get(auth.HeaderAuthorization) != "" {
			c, err := o.API.AuthenticateConsumer(w, r)
			if e := apperr.As(err); e != nil && e.Code == apperr.CodeRateLimited {
				writeGraphQLError(w, r, e)
				return
			}
			ctx = auth.WithConsumer(ctx, c, err)
		}
		r = r.WithContext(ctx)
		r.Body = readCloser(body)
		r.ContentLength = int64(len(body))
		o.GraphQL.ServeHTTP(w, r)
	})
}

// writeGraphQLError answers a request refused before execution (rate
// limited) with the HTTP status of its code, Retry-After, and a GraphQL
// response body carrying extensions.code.
func writeGraphQLError(w http.ResponseWriter, r *http.Request, e *apperr.Error) {
	request.From(r.Context()).SetCode(string(e.Code))
	ext := map[string]any{"code": string(e.Code)}
	if e.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
		ext["retryAfterSeconds"] = e.RetryAfterSeconds
	}
	b, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"message": e.Message, "extensions": ext}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(apperr.Lookup(e.Code).Status)
	_, _ = w.Write(append(b, '\n'))
}

// ready answers 200 only when the database answers and every migration is
// applied, so a load balancer never routes to a replica with an old schema.
func (o Options) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := o.DB.Pool.Ping(ctx); err != nil {
		rest.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database unreachable"})
		return
	}
	if err := database.Check(ctx, o.DB.Bun); err != nil {
		rest.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "migrations pending"})
		return
	}
	rest.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
