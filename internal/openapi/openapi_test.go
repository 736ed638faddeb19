package openapi_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/openapi"
)

// TestEveryRouteIsDocumented: each REST route the router serves is in the
// document, and the document describes no route that does not exist.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	var documented []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(documented)
	var served []string
	for _, r := range env.App.Routes {
		method, path, _ := strings.Cut(r, " ")
		if strings.HasPrefix(path, "/integrations/") || strings.HasPrefix(path, "/merchant/") || strings.HasPrefix(path, "/auth/") || path == "/me" {
			served = append(served, method+" "+path)
		}
	}
	require.Equal(t, served, documented)

	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/openapi.json", nil)
	res := env.Do(req)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.Contains(t, string(res.Body), `"openapi":"3.1.0"`)
	apptest.ContractRouter(t) // the document loads and validates
}

// TestEventTypesAreDocumented: the EventType enum that webhook endpoint
// requests are validated against lists exactly event.Types, so an endpoint
// can subscribe to every event Perks sends (a new type added to
// event.Types without the document would be refused).
func TestEventTypesAreDocumented(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	require.ElementsMatch(t, event.Types, doc.Components.Schemas["EventType"].Enum)
}

// TestWebhooksAreDocumented: every event type Perks sends is an OpenAPI
// 3.1 webhook whose body example names its type, so a receiver can be
// generated from the document.
func TestWebhooksAreDocumented(t *testing.T) {
	t.Parallel()
	var doc struct {
		Webhooks map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Example struct {
							Type string         `json:"type"`
							Data map[string]any `json:"data"`
						} `json:"example"`
					} `json:"content"`
				} `json:"requestBody"`
			} `json:"post"`
		} `json:"webhooks"`
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	var documented []string
	for typ, w := range doc.Webhooks {
		documented = append(documented, typ)
		ex := w.Post.RequestBody.Content["application/json"].Example
		require.Equal(t, typ, ex.Type, "webhook %s: example type", typ)
		require.NotEmpty(t, ex.Data, "webhook %s: example data", typ)
	}
	require.ElementsMatch(t, event.Types, documented)
}

// TestErrorAnswersComeFromTheCatalog: every operation documents at least
// one 4xx answer; each error answer's codes are codes of internal/apperr
// whose status is that answer's (5xx under default), listed both as the
// enum of the problem's code and as x-error-codes, with an example of one
// of them. Every operation of a partner lists the signature errors, every
// write the idempotency errors.
func TestErrorAnswersComeFromTheCatalog(t *testing.T) {
	t.Parallel()
	catalog := apperr.Codes()
	type response struct {
		XErrorCodes []string `json:"x-error-codes"`
		Content     map[string]struct {
			Schema struct {
				AllOf []struct {
					Properties map[string]struct {
						Enum []string `json:"enum"`
					} `json:"properties"`
				} `json:"allOf"`
			} `json:"schema"`
			Example any `json:"example"`
		} `json:"content"`
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	ops := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			ops++
			var op struct {
				Security  []map[string]any    `json:"security"`
				Responses map[string]response `json:"responses"`
			}
			require.NoError(t, json.Unmarshal(raw, &op))
			where := method + " " + path
			all := map[string]bool{}
			has4xx := false
			for status, r := range op.Responses {
				if len(r.XErrorCodes) == 0 {
					continue
				}
				problem, ok := r.Content["application/problem+json"]
				require.True(t, ok, "%s %s: problem+json", where, status)
				require.Len(t, problem.Schema.AllOf, 2, "%s %s", where, status)
				require.Equal(t, r.XErrorCodes, problem.Schema.AllOf[1].Properties["code"].Enum, "%s %s", where, status)
				example, _ := problem.Example.(map[string]any)
				require.Contains(t, r.XErrorCodes, example["code"], "%s %s: example", where, status)
				for _, c := range r.XErrorCodes {
					info, ok := catalog[apperr.Code(c)]
					require.True(t, ok, "%s %s: %s is not in internal/apperr", where, status, c)
					if status == "default" {
						require.GreaterOrEqual(t, info.Status, 500, "%s: %s", where, c)
					} else {
						require.Equal(t, status, strconv.Itoa(info.Status), "%s: %s", where, c)
						has4xx = true
					}
					all[c] = true
				}
			}
			require.True(t, has4xx, "%s: no 4xx answer", where)
			require.True(t, all[string(apperr.CodeUnauthenticated)], "%s: UNAUTHENTICATED", where)
			if len(op.Security) == 0 {
				require.True(t, all[string(apperr.CodeInvalidSignature)], "%s: INVALID_SIGNATURE", where)
			}
			if method != "get" {
				require.True(t, all[string(apperr.CodeIdempotencyKeyReused)], "%s: IDEMPOTENCY_KEY_REUSED", where)
			}
		}
	}
	require.Greater(t, ops, 30)
}

// TestServersFromThePublicURL: /openapi.json names the deployment's
// configured public URL as its server, so a client generated from it (or
// a tool pointed at it) calls this deployment, not localhost.
func TestServersFromThePublicURL(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_PUBLIC_BASE_URL": "https://loyalty.example.test/"}})
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/openapi.json", nil)
	res := env.Do(req)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &doc))
	require.Len(t, doc.Servers, 1)
	require.Equal(t, "https://loyalty.example.test", doc.Servers[0].URL)
	require.Equal(t, openapi.JSONFor("https://loyalty.example.test"), res.Body)
}

// TestEveryPropertyIsDescribed: every property of every schema (requests,
// answers, webhooks, components) has a description, its own or, for a
// $ref, the referenced schema's, so generated clients carry the docs.
func TestEveryPropertyIsDescribed(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	described := func(s map[string]any) bool {
		if d, ok := s["description"].(string); ok && d != "" {
			return true
		}
		if ref, ok := s["$ref"].(string); ok {
			target, _ := schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
			d, _ := target["description"].(string)
			return d != ""
		}
		return false
	}
	var missing []string
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name, p := range props {
					if p, ok := p.(map[string]any); ok && !described(p) {
						missing = append(missing, where+"."+name)
					}
				}
			}
			for k, e := range v {
				walk(where+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(where+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("", doc)
	sort.Strings(missing)
	require.Empty(t, missing, "%d properties without a description", len(missing))
}

// TestEveryOperationHasExamples: every operation shows a request example
// (when it takes a JSON body) and an example of each answer with a body,
// errors included, so a reader and a mock server see real exchanges.
// Recorded examples come from examples.json (see openapi.go).
func TestEveryOperationHasExamples(t *testing.T) {
	t.Parallel()
	type media struct {
		Example  any            `json:"example"`
		Examples map[string]any `json:"examples"`
	}
	has := func(m media) bool { return m.Example != nil || len(m.Examples) > 0 }
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	var missing []string
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				RequestBody *struct {
					Content map[string]media `json:"content"`
				} `json:"requestBody"`
				Responses map[string]struct {
					Content map[string]media `json:"content"`
				} `json:"responses"`
			}
			require.NoError(t, json.Unmarshal(raw, &op))
			where := strings.ToUpper(method) + " " + path
			if op.RequestBody != nil {
				if m, ok := op.RequestBody.Content["application/json"]; ok && !has(m) {
					missing = append(missing, where+" request")
				}
			}
			for status, r := range op.Responses {
				for ct, m := range r.Content {
					if !has(m) {
						missing = append(missing, where+" "+status+" "+ct)
					}
				}
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing)
}
