package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/graph"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/earning"
)

// TestHostileDocumentsOverHTTP: the documents of issue 11 sent to the
// running server, with and without a token, are each refused with their
// code (HTTP 422) before anything runs, and the refused mutations change
// nothing. The CPU they cost is measured by BenchmarkHostileDocuments.
func TestHostileDocumentsOverHTTP(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	putRule(t, env, "tap", earning.RuleInput{Name: "Tap", Points: 1, ClientTriggerable: true, Enabled: true})
	tok := env.Token("acme", "hostile", nil)
	require.Empty(t, env.GraphQL(tok, `{ me { id } }`, nil).Errors)

	for _, d := range graph.HostileDocuments() {
		for _, token := range []string{"", tok} {
			start := time.Now()
			res := env.GraphQL(token, d.Query, nil)
			took := time.Since(start)
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, "%s (token %t)", d.Name, token != "")
			require.Len(t, res.Errors, 1, d.Name)
			require.Equal(t, d.Code, res.ErrorCode(), "%s (token %t): %s", d.Name, token != "", res.Errors[0].Message)
			require.Equal(t, d.Limit, res.Errors[0].Extensions["limit"], d.Name)
			require.Contains(t, []string{"", "null"}, string(res.Data), d.Name)
			t.Logf("%-60s token=%-5t %v", d.Name, token != "", took.Round(time.Microsecond))
		}
	}
	var earned int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE action_code = 'tap'").Scan(context.Background(), &earned))
	require.Zero(t, earned, "a refused mutation earned")

	// At the limits, the same requests go through.
	ok := map[string]string{
		"catalog(first: 100) with every field":         `{ catalog(first: 100) { edges { cursor node { id sku title description imageUrl category costPoints stock perUserLimit claimableFrom claimableUntil countries voucherLifetimeSeconds redemption merchants { id name } claimedByMe canClaim reason } } pageInfo { hasNextPage endCursor } } }`,
		"three pages of 100 gifts and their merchants": `{ a: catalog(first: 100) { edges { node { id merchants { id } } } } b: catalog(first: 100) { edges { node { id merchants { id } } } } c: catalog(first: 100) { edges { node { id merchants { id } } } } }`,
		"12 levels deep is the limit":                  "{ me {" + strings.Repeat(" partner {", 10) + " id" + strings.Repeat(" }", 10) + " } }",
	}
	var ten strings.Builder
	ten.WriteString("mutation {")
	for i := range 10 {
		ten.WriteString(strings.NewReplacer("%d", string(rune('a'+i))).Replace(` t%d: triggerAction(code: "tap", idempotencyKey: "ok-%d") { balance }`))
	}
	ten.WriteString(" }")
	ok["10 triggerAction"] = ten.String()
	for name, q := range ok {
		res := env.GraphQL(tok, q, nil)
		for _, e := range res.Errors {
			require.NotContains(t, []any{"QUERY_TOO_LARGE", "DEPTH_LIMIT_EXCEEDED", "COMPLEXITY_LIMIT_EXCEEDED", "MUTATION_LIMIT_EXCEEDED"}, e.Extensions["code"], "%s: %s", name, e.Message)
		}
	}
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE action_code = 'tap'").Scan(context.Background(), &earned))
	require.Equal(t, 10, earned)
}

// TestIntrospectionQueryInDevelopment: the standard introspection query of
// graphql-js (GraphiQL, graphql-inspector, codegen), 15 levels deep, works
// in development, while real queries keep the depth limit of 12; production
// keeps introspection off.
func TestIntrospectionQueryInDevelopment(t *testing.T) {
	t.Parallel()
	q, err := os.ReadFile("testdata/introspection.graphql")
	require.NoError(t, err)

	dev := apptest.New(t)
	res := dev.GraphQL("", string(q), nil)
	require.Empty(t, res.Errors)
	require.Contains(t, string(res.Data), `"name":"triggerAction"`)
	tok := dev.Token("acme", "introspector", nil)
	require.Empty(t, dev.GraphQL(tok, string(q), nil).Errors)
	deep := "{ me {" + strings.Repeat(" partner {", 11) + " id" + strings.Repeat(" }", 11) + " } }"
	require.Equal(t, "DEPTH_LIMIT_EXCEEDED", dev.GraphQL(tok, deep, nil).ErrorCode(), "13 levels of a real query")

	prod := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_ENV": "production"}})
	res = prod.GraphQL("", string(q), nil)
	require.NotEmpty(t, res.Errors)
	require.NotContains(t, string(res.Data), "triggerAction")
}

// TestNoSuggestionsInProduction: validation errors in production do not
// spell out the schema's names ("Did you mean …?"); development keeps them.
func TestNoSuggestionsInProduction(t *testing.T) {
	t.Parallel()
	typos := []string{
		`{ me { emial } }`,                                   // field
		`{ ads(kind: BONUSS) { id } }`,                       // enum value
		`{ catalog(frist: 1) { pageInfo { hasNextPage } } }`, // argument
		`{ me { ...F } } fragment F on Usr { id }`,           // type
		`{ me }`, // selection ("Did you mean \"me { ... }\"?", stripped by the presenter)
	}
	prod := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_ENV": "production"}})
	dev := apptest.New(t)
	for _, q := range typos {
		for _, tok := range []string{"", prod.Token("acme", "typo", nil)} {
			res := prod.GraphQL(tok, q, nil)
			require.Equal(t, "GRAPHQL_VALIDATION_FAILED", res.ErrorCode(), q)
			for _, e := range res.Errors {
				require.NotContains(t, strings.ToLower(e.Message), "did you mean", q)
			}
		}
		res := dev.GraphQL("", q, nil)
		require.Equal(t, "GRAPHQL_VALIDATION_FAILED", res.ErrorCode(), q)
		require.Contains(t, res.Errors[0].Message, "Did you mean", "development suggests: %s", q)
	}
}

// TestMalformedBodyIsAClientError: a GraphQL body that is not JSON (or not
// a GraphQL request) answers 400 with a code, and neither the answer nor
// the log quotes it; before, the log line held the whole body (tokens,
// emails) and the answer said INTERNAL. Another content type answers 415
// with a code (before: 400 and no code).
func TestMalformedBodyIsAClientError(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	tok := env.Token("acme", "malformed", nil)
	secret := "alice.secret@example.com"
	bearer := "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"
	pad := strings.Repeat("x", 200<<10)
	for _, tc := range []struct {
		name, body, code, field string
	}{
		{"truncated", `{"query":"{ me { id } }","variables":{"email":"` + secret + `","token":"` + bearer + `"`, "MALFORMED_JSON", ""},
		{"garbage after a string", `{"query":"{ me { id } }" ` + secret + ` ` + bearer + `}`, "MALFORMED_JSON", ""},
		{"500 KB of garbage", `{"query": "` + secret + `"` + pad + bearer + `}`, "MALFORMED_JSON", ""},
		{"not an object", `["` + secret + `", "` + bearer + `"]`, "MALFORMED_JSON", ""},
		{"query is a number", `{"query": 42, "variables": {"email": "` + secret + `"}}`, "INVALID_FIELD", "query"},
		{"variables is a string", `{"query": "{ me { id } }", "variables": "` + secret + `"}`, "INVALID_FIELD", "variables"},
		{"trailing data", `{"query": "{ me { id } }"} {"email": "` + secret + `"}`, "MALFORMED_JSON", ""},
		{"empty", ``, "MALFORMED_JSON", ""},
	} {
		for _, token := range []string{"", tok} {
			res := env.Consumer(token, http.MethodPost, "/graphql", []byte(tc.body))
			if tc.body == "" { // Consumer sets the content type only with a body
				req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", nil)
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				res = env.Do(req)
			}
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", tc.name, res.Body)
			var out apptest.GraphQLResult
			require.NoError(t, json.Unmarshal(res.Body, &out), tc.name)
			require.Equal(t, tc.code, out.ErrorCode(), "%s: %s", tc.name, res.Body)
			if tc.field != "" {
				require.Equal(t, tc.field, out.Errors[0].Extensions["field"], tc.name)
			}
			require.NotContains(t, string(res.Body), secret, tc.name)
			require.NotContains(t, string(res.Body), bearer, tc.name)
		}
	}
	for _, ct := range []string{"text/plain", "application/graphql", ""} {
		req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
		require.NoError(t, err)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res := env.Do(req)
		require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode, ct)
		var out apptest.GraphQLResult
		require.NoError(t, json.Unmarshal(res.Body, &out), ct)
		require.Equal(t, "UNSUPPORTED_MEDIA_TYPE", out.ErrorCode(), ct)
	}

	logs := env.Logs.String()
	require.NotContains(t, logs, secret)
	require.NotContains(t, logs, bearer)
	require.NotContains(t, logs, "xxxxxxxx")
	require.NotContains(t, logs, "graphql internal error")
}
