package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/perkshq/perks/internal/openapi"
)

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

// ContractRouter loads the OpenAPI document once per test binary.
func ContractRouter(t testing.TB) routers.Router {
	t.Helper()
	contractOnce.Do(func() {
		// kin-openapi validates documents by OpenAPI 3.0 rules: give it the
		// 3.0 spelling of our 3.1 nullable types (["string", "null"] is
		// "string" with nullable: true). The served document stays 3.1.
		var raw any
		if contractErr = json.Unmarshal(openapi.JSON(), &raw); contractErr != nil {
			return
		}
		raw.(map[string]any)["openapi"] = "3.0.3"
		// 3.1-only parts 3.0 has no place for: webhooks (the requests
		// Perks sends, not routes it serves) and the license identifier.
		delete(raw.(map[string]any), "webhooks")
		if info, ok := raw.(map[string]any)["info"].(map[string]any); ok {
			if lic, ok := info["license"].(map[string]any); ok {
				delete(lic, "identifier")
			}
		}
		// Match any host: tests serve on random ports.
		raw.(map[string]any)["servers"] = []any{map[string]any{"url": "/"}}
		b, _ := json.Marshal(to30(raw))
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(b)
		if err != nil {
			contractErr = err
			return
		}
		contractRouter, contractErr = legacy.NewRouter(doc)
	})
	if contractErr != nil {
		t.Fatalf("openapi document: %v", contractErr)
	}
	return contractRouter
}

func to30(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if types, ok := v["type"].([]any); ok {
			var rest []any
			for _, t := range types {
				if t == "null" {
					v["nullable"] = true
				} else {
					rest = append(rest, t)
				}
			}
			if len(rest) == 1 {
				v["type"] = rest[0]
			} else {
				v["type"] = rest
			}
		}
		for k, e := range v {
			v[k] = to30(e)
		}
	case []any:
		for i, e := range v {
			v[i] = to30(e)
		}
	}
	return v
}

// documented reports whether a path is part of the REST API the document
// covers (GraphQL, ops and web pages are described elsewhere).
func documented(path string) bool {
	// The merchant API is these two routes; the rest of /merchant is the
	// merchant portal's pages (internal/merchantportal).
	if strings.HasPrefix(path, "/merchant/") {
		return strings.HasPrefix(path, "/merchant/vouchers/") || path == "/merchant/redemptions"
	}
	for _, p := range []string{"/integrations/", "/auth/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return path == "/me"
}

// contract wraps h so every REST exchange of the test is checked against
// the OpenAPI document: every response must match the documented response
// of its status, and when the API accepted the request (2xx) the request
// must match the documented request too. Deliberately bad requests are
// refused by the API and checked only for their (problem) response.
func contract(t testing.TB, h http.Handler) http.Handler {
	router := ContractRouter(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !documented(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		if rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), `"ROUTE_NOT_FOUND"`) {
			return
		}
		vr := r.Clone(context.Background())
		vr.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := router.FindRoute(vr)
		if err != nil {
			t.Errorf("openapi: %s %s is not documented: %v", r.Method, r.URL.Path, err)
			return
		}
		in := &openapi3filter.RequestValidationInput{
			Request: vr, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}
		// An operation whose items fail alone (x-items-fail-alone) accepts
		// a request with malformed items: each is refused in its result,
		// so only requests without them must match the document.
		if _, partial := route.Operation.Extensions["x-items-fail-alone"]; rec.Code < 300 && !(partial && itemsFailed(rec)) {
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("openapi: request %s %s does not match the document: %v", r.Method, r.URL.Path, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/x-ndjson") || strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
			out.Options.ExcludeResponseBody = true
		}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("openapi: response %d to %s %s does not match the document: %v\n%s", rec.Code, r.Method, r.URL.Path, err, truncate(rec.Body.String(), 600))
		}
	})
}

// itemsFailed reports whether an answer says some items failed: a 200 with
// a failed count, or a 202 (a job whose items are checked as it runs).
func itemsFailed(rec *httptest.ResponseRecorder) bool {
	if rec.Code == http.StatusAccepted {
		return true
	}
	var res struct {
		Failed int `json:"failed"`
	}
	return json.Unmarshal(rec.Body.Bytes(), &res) == nil && res.Failed > 0
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
