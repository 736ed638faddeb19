package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// HostileDocument is a document a client sent (or could send) to make the
// server pay before any limit applied, and the refusal it must get.
type HostileDocument struct {
	Name  string
	Query string
	// Code and Limit are the expected extensions.code and extensions.limit.
	Code, Limit string
	// Validated is true when the refusal may only come after validation
	// (the complexity needs argument values checked against the schema).
	Validated bool
	// Mutation marks documents whose refusal must change nothing.
	Mutation bool
}

// repeat joins n copies of format, each %d replaced by the copy's index and
// each %n by the next index.
func repeat(n int, format string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.NewReplacer("%d", strconv.Itoa(i), "%n", strconv.Itoa(i+1)).Replace(format))
	}
	return b.String()
}

// FragmentBomb is a document of levels fragments that each spread the
// previous one twice: 2^levels fields once expanded, in about 37 bytes a
// level (the 900-byte document at 24 levels).
func FragmentBomb(levels int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{ me { ...F%d } }\nfragment F0 on User { id }\n", levels)
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "fragment F%d on User { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	return b.String()
}

// HostileDocuments are the documents of issue 11 (and their neighbours just
// inside the byte and token limits). Each is refused with its code before
// validation unless Validated says otherwise.
func HostileDocuments() []HostileDocument {
	return []HostileDocument{
		{Name: "4,000 copies of me { id } (40 KB)", Query: "{" + repeat(4000, " me { id }") + " }", Code: "QUERY_TOO_LARGE", Limit: "bytes"},
		{Name: "huge selection: 5,000 × id", Query: "{ me {" + repeat(5000, " id") + " } }", Code: "QUERY_TOO_LARGE", Limit: "tokens"},
		{Name: "100 copies of me { id } (1 KB, quadratic validation)", Query: "{" + repeat(100, " me { id }") + " }", Code: "QUERY_TOO_LARGE", Limit: "repeatedFields"},
		{Name: "10 × me { 10 × partner { id } } (1.5 KB)", Query: "{" + repeat(10, " me {"+repeat(10, " partner { id }")+" }") + " }", Code: "QUERY_TOO_LARGE", Limit: "repeatedFields"},
		{Name: "300 fragments each spread once", Query: "{ me {" + repeat(300, " ...F%d") + " } }\n" + repeat(300, "fragment F%d on User { id }\n"), Code: "QUERY_TOO_LARGE", Limit: "repeatedFields"},
		{Name: "100 distinct fragments spread in one place", Query: "{ me {" + repeat(100, " ...F%d") + " } }\n" + repeat(100, "fragment F%d on User { a%d: id }\n"), Code: "QUERY_TOO_LARGE", Limit: "repeatedFields"},
		{Name: "fragment bomb, 24 levels (900 bytes)", Query: FragmentBomb(24), Code: "QUERY_TOO_LARGE", Limit: "fields"},
		{Name: "fragment bomb, 10 levels", Query: FragmentBomb(10), Code: "QUERY_TOO_LARGE", Limit: "fields"},
		{Name: "140 aliased catalog(first: 100)", Query: "{" + repeat(140, " c%d: catalog(first: 100) { edges { node { id title } } }") + " }", Code: "QUERY_TOO_LARGE", Limit: "aliases"},
		{Name: "10 aliased catalog(first: 100)", Query: "{" + repeat(10, " c%d: catalog(first: 100) { edges { node { id } } }") + " }", Code: "COMPLEXITY_LIMIT_EXCEEDED", Limit: "complexity", Validated: true},
		{Name: "5 × catalog(first: 100) { merchants } through a fragment", Query: `{ a: catalog(first: 100) { ...C } b: catalog(first: 100) { ...C } c: catalog(first: 100) { ...C } d: catalog(first: 100) { ...C } e: catalog(first: 100) { ...C } }
fragment C on GiftConnection { edges { node { id merchants { id } redemption } } pageInfo { hasNextPage } }`, Code: "COMPLEXITY_LIMIT_EXCEEDED", Limit: "complexity", Validated: true},
		{Name: "200 aliased triggerAction", Query: "mutation {" + repeat(200, ` t%d: triggerAction(code: "tap", idempotencyKey: "k%d") { balance }`) + " }", Code: "QUERY_TOO_LARGE", Limit: "aliases", Mutation: true},
		{Name: "11 aliased triggerAction", Query: "mutation {" + repeat(11, ` t%d: triggerAction(code: "tap", idempotencyKey: "k%d") { balance }`) + " }", Code: "MUTATION_LIMIT_EXCEEDED", Limit: "mutationFields", Mutation: true},
		{Name: "11 triggerAction through a fragment", Query: "mutation { ...M }\nfragment M on Mutation {" + repeat(11, ` t%d: triggerAction(code: "tap", idempotencyKey: "f%d") { balance }`) + " }", Code: "MUTATION_LIMIT_EXCEEDED", Limit: "mutationFields", Mutation: true},
		{Name: "13 levels deep", Query: "{ me {" + strings.Repeat(" partner {", 11) + " id" + strings.Repeat(" }", 11) + " } }", Code: "DEPTH_LIMIT_EXCEEDED", Limit: "depth"},
		{Name: "13 levels deep through fragments", Query: "{ me { ...D0 } }\n" + repeat(11, "fragment D%d on User { partner { ...D%n } }\n") + "fragment D11 on User { id }", Code: "DEPTH_LIMIT_EXCEEDED", Limit: "depth"},
	}
}

// guardServer is the GraphQL handler with no services behind it: without a
// token every resolver answers UNAUTHENTICATED, so what it costs is the
// document's parse, limits and validation.
func guardServer(t testing.TB, introspection bool) (http.Handler, *atomic.Int64) {
	t.Helper()
	srv := NewServer(&Resolver{}, Options{Introspection: introspection, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var validations atomic.Int64
	ruleSet := validationRules(introspection)
	srv.SetValidationRulesFn(func() *rules.Rules {
		validations.Add(1)
		return ruleSet()
	})
	return srv, &validations
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func post(t testing.TB, h http.Handler, query string) (int, gqlResponse) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var res gqlResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res), "%s", rec.Body.String())
	return rec.Code, res
}

// TestHostileDocumentsRefusedBeforeValidation: every hostile document is
// refused with its code and limit, and, unless its limit is the
// complexity, without gqlparser validating it.
func TestHostileDocumentsRefusedBeforeValidation(t *testing.T) {
	t.Parallel()
	for _, introspection := range []bool{false, true} {
		h, validations := guardServer(t, introspection)
		for _, d := range HostileDocuments() {
			before := validations.Load()
			status, res := post(t, h, d.Query)
			require.Equal(t, http.StatusUnprocessableEntity, status, d.Name)
			require.Len(t, res.Errors, 1, d.Name)
			require.Equal(t, d.Code, res.Errors[0].Extensions["code"], "%s: %s", d.Name, res.Errors[0].Message)
			require.Equal(t, d.Limit, res.Errors[0].Extensions["limit"], d.Name)
			validated := validations.Load() - before
			if d.Validated {
				require.EqualValues(t, 1, validated, d.Name)
			} else {
				require.Zero(t, validated, "%s was validated before its refusal", d.Name)
			}
		}
	}
}

// acceptedAtTheLimits are the worst documents that pass every limit checked
// before validation, so gqlparser validates them: their cost bounds what any
// document costs. The benchmark measures them next to the refused ones.
func acceptedAtTheLimits(t testing.TB) map[string]string {
	introspection, err := os.ReadFile("testdata/introspection.graphql")
	require.NoError(t, err)
	return map[string]string{
		"45 × me { id } (1,980 repeated pairs)":         "{" + repeat(45, " me { id }") + " }",
		"me { 63 × id } (1,953 repeated pairs)":         "{ me {" + repeat(63, " id") + " } }",
		"4 × me { 11 × partner { id } } (1,898 pairs)":  "{" + repeat(4, " me {"+repeat(11, " partner { id }")+" }") + " }",
		"44 fragments of id spread in one place":        "{ me {" + repeat(44, " ...F%d") + " } }\n" + repeat(44, "fragment F%d on User { id }\n"),
		"fragment bomb, 5 levels (32 fields)":           FragmentBomb(5),
		"90 aliased me with 10 fields (990 fields)":     "{" + repeat(90, " m%d: me { id email displayName balance partner { id name slug displayName logoPath } }") + " }",
		"2,900 tokens of argument list":                 "{ catalog(first: [" + repeat(1450, "1, ") + "]) { pageInfo { hasNextPage } } }",
		"700 duplicate arguments":                       "{ catalog(" + repeat(700, "first: 1 ") + ") { pageInfo { hasNextPage } } }",
		"700 unused variables":                          "query(" + repeat(700, "$v%d: Int ") + ") { me { id } }",
		"370 operations":                                repeat(370, "query Q%d { me { id } } "),
		"420 directives":                                "{ me " + repeat(420, "@include(if: true) ") + "{ id } }",
		"graphql-js introspection query":                string(introspection),
		"80 × 12 levels of unknown fields (960 fields)": "{" + repeat(80, " a%d { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } }") + " }",
		"999 unknown fields (suggestions)":              "{ me {" + repeat(999, " nope%d") + " } }",
		"700 unknown variable types (suggestions)":      "query(" + repeat(700, "$v%d: Innt ") + ") { me { id } }",
		"62 distinct fragments spread in one place":     "{ me {" + repeat(62, " ...F%d") + " } }\n" + repeat(62, "fragment F%d on User { a%d: id }\n"),
		"100 enum typos (suggestions)":                  "{" + repeat(100, " a%d: ads(kind: BONUSS) { id }") + " }",
		"webview catalog page (the hot path)":           `query Catalog($after: String) { catalog(first: 20, after: $after) { edges { node { id sku title description imageUrl costPoints stock perUserLimit redemption claimedByMe canClaim reason merchants { name } } } pageInfo { hasNextPage endCursor } } }`,
	}
}

// TestAcceptedAtTheLimitsAreValidated: the benchmark's worst accepted
// documents do pass the limits (so it measures their validation).
func TestAcceptedAtTheLimitsAreValidated(t *testing.T) {
	t.Parallel()
	h, validations := guardServer(t, true)
	for name, q := range acceptedAtTheLimits(t) {
		before := validations.Load()
		_, res := post(t, h, q)
		for _, e := range res.Errors {
			require.NotContains(t, []any{"QUERY_TOO_LARGE", "DEPTH_LIMIT_EXCEEDED", "COMPLEXITY_LIMIT_EXCEEDED"}, e.Extensions["code"], "%s: %s", name, e.Message)
		}
		require.EqualValues(t, 1, validations.Load()-before, name)
	}
}

// BenchmarkHostileDocuments measures what a document costs the server
// without a token, from the HTTP body to the answer: the refused documents
// of issue 11, and the worst documents the limits let through to
// validation. docs/graphql.md records the numbers.
//
//	go test -run '^$' -bench HostileDocuments -benchtime 20x ./graph/
func BenchmarkHostileDocuments(b *testing.B) {
	h, _ := guardServer(b, true)
	run := func(name, query string) {
		b.Run(name, func(b *testing.B) {
			q, err := json.Marshal(query)
			require.NoError(b, err)
			b.ReportAllocs()
			i := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				// A comment that differs each time defeats the caches of
				// parsed documents, as an attacker would.
				i++
				body := fmt.Appendf(nil, `{"query":%s\n# %d"}`, q[:len(q)-1], i)
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
	for _, d := range HostileDocuments() {
		run("refused/"+d.Name, d.Query)
	}
	for name, q := range acceptedAtTheLimits(b) {
		run("validated/"+name, q)
	}
}

// processCPU is the CPU time the process used so far (user and system, GC
// included): the server's cost, which a loaded machine's wall clock hides.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
