// Package openapi holds the OpenAPI 3.1 document of the partner and merchant
// REST API (openapi.yaml, written by hand next to the handlers it
// describes) and serves it as JSON. Tests check that every route the router
// serves is documented, that the requests and responses of the whole test
// suite validate against it, that Spectral and Redocly find nothing to
// report, and that a client generated from it calls every operation.
//
// What is not written by hand is derived here, once, when the package
// loads, so it cannot drift from the code:
//
//   - the 4xx and 5xx answers of every operation, from the one error list
//     (internal/apperr): each status an operation can answer, with the
//     codes it can carry as an enum on the problem's `code` (and as
//     `x-error-codes`), their titles and actions, and an example. The codes
//     are the ones every operation of its kind can answer (authentication
//     of its scheme, body and query checks, idempotency, rate limits) plus
//     the operation's own `x-error-codes` in openapi.yaml. The contract
//     check of the test suite (apptest) validates every answer of every
//     test against them, so a code answered but not listed fails a test;
//   - the RateLimit-* headers on every answer of a rate-limited operation,
//     Retry-After where it is sent, and the authentication headers
//     (x-partner-slug, X-Timestamp) as parameters;
//   - `servers`, from the configured public URL (JSONFor).
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/perkshq/perks/internal/apperr"
)

//go:embed openapi.yaml
var source []byte

// examplesJSON are real exchanges of every operation, recorded from the
// generated client's run against a test server
// (TestGeneratedClientCallsEveryOperation with PERKS_UPDATE_EXAMPLES=1):
// "METHOD /path" to the request body and the answer of each status.
//
//go:embed examples.json
var examplesJSON []byte

// Example is one recorded operation: its request body (null without one)
// and its answers by "status content-type".
type Example struct {
	Request   json.RawMessage            `json:"request,omitempty"`
	Responses map[string]ExampleResponse `json:"responses"`
}

// ExampleResponse is one recorded answer: JSON, or a JSON string for a
// text answer (NDJSON, CSV).
type ExampleResponse struct {
	Body json.RawMessage `json:"body"`
}

var document []byte

func init() {
	var v map[string]any
	if err := yaml.Unmarshal(source, &v); err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	var examples map[string]Example
	if err := json.Unmarshal(examplesJSON, &examples); err != nil {
		panic(fmt.Sprintf("examples.json: %v", err))
	}
	if err := complete(v, examples); err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml to JSON: %v", err))
	}
	document = b
}

// JSON returns the document as JSON, with the servers of openapi.yaml.
func JSON() []byte { return document }

var (
	forMu  sync.Mutex
	forURL = map[string][]byte{}
)

// JSONFor returns the document with `servers` set to the deployment's
// public base URL (PERKS_PUBLIC_BASE_URL), so a client generated from a
// running server's /openapi.json calls that server. An empty URL keeps the
// document's own servers. The result is computed once per URL.
func JSONFor(publicURL string) []byte {
	publicURL = strings.TrimRight(publicURL, "/")
	if publicURL == "" {
		return document
	}
	forMu.Lock()
	defer forMu.Unlock()
	if b, ok := forURL[publicURL]; ok {
		return b
	}
	var v map[string]any
	if err := json.Unmarshal(document, &v); err != nil {
		panic(err) // the document was marshalled by init
	}
	v["servers"] = []any{map[string]any{"url": publicURL, "description": "This deployment (PERKS_PUBLIC_BASE_URL)."}}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	forURL[publicURL] = b
	return b
}

// Error code sets by what an operation does. Each is answered by layers
// every operation of that kind goes through, so they are not repeated in
// openapi.yaml.
var (
	// Every request: the router, the header limit, the database.
	// Query parameters are checked on every request (an unknown one
	// carrying a control character is refused too).
	everyCodes = []apperr.Code{apperr.CodeRequestHeadersTooLarge, apperr.CodeBadRequest, apperr.CodeInvalidField,
		apperr.CodeInternal, apperr.CodeUnavailable, apperr.CodeTimeout, apperr.CodeDatabaseUnavailable}
	// A partner back end's signed call (HMAC, Ed25519 or request JWT).
	partnerCodes = []apperr.Code{apperr.CodeUnauthenticated, apperr.CodeInvalidSignature,
		apperr.CodeTimestampOutOfRange, apperr.CodeSignatureV2Required, apperr.CodeSignatureReused,
		apperr.CodeRequestBindingRequired, apperr.CodeRequestBindingMismatch, apperr.CodeTokenInvalid,
		apperr.CodeTokenExpired, apperr.CodeForbidden, apperr.CodePartnerDisabled, apperr.CodePartnerPending, apperr.CodePartnerSuspended,
		apperr.CodeOriginNotAllowed, apperr.CodeSchemeNotAllowed, apperr.CodeRateLimited}
	// A merchant's Ed25519-signed call.
	merchantCodes = []apperr.Code{apperr.CodeUnauthenticated, apperr.CodeInvalidSignature,
		apperr.CodeTimestampOutOfRange, apperr.CodeForbidden, apperr.CodePartnerDisabled, apperr.CodePartnerPending, apperr.CodePartnerSuspended, apperr.CodeRateLimited}
	// A consumer token's call.
	consumerCodes = []apperr.Code{apperr.CodeUnauthenticated, apperr.CodeTokenInvalid,
		apperr.CodeTokenExpired, apperr.CodeTokenRevoked, apperr.CodeUserAnonymised,
		apperr.CodeForbidden, apperr.CodePartnerDisabled, apperr.CodePartnerPending, apperr.CodePartnerSuspended, apperr.CodeRateLimited}
	// A write (POST, PUT, DELETE): replay protection and Idempotency-Key.
	writeCodes = []apperr.Code{apperr.CodeSignatureReplayed, apperr.CodeIdempotencyKeyNeeded,
		apperr.CodeIdempotencyKeyInvalid, apperr.CodeIdempotencyKeyReused, apperr.CodeIdempotencyInProgress}
	// A request body.
	bodyCodes = []apperr.Code{apperr.CodeMalformedJSON, apperr.CodeInvalidField, apperr.CodeUnknownField,
		apperr.CodeMissingField, apperr.CodePayloadTooLarge, apperr.CodeUnsupportedMediaType}
	// Path or query parameters.
	paramCodes = []apperr.Code{apperr.CodeInvalidField}
)

// retryAfter are the codes whose answers carry a Retry-After header.
var retryAfter = map[apperr.Code]bool{
	apperr.CodeRateLimited: true, apperr.CodeCooldown: true, apperr.CodeIdempotencyInProgress: true,
	apperr.CodeDatabaseUnavailable: true, apperr.CodeUnavailable: true,
}

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// complete derives the error answers, headers and parameters of every
// operation (see the package comment).
func complete(doc map[string]any, examples map[string]Example) error {
	catalog := apperr.Codes()
	components, _ := doc["components"].(map[string]any)
	shared, _ := components["responses"].(map[string]any)
	paths, _ := doc["paths"].(map[string]any)
	defaultSecurity, _ := doc["security"].([]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		pathParams, _ := item["parameters"].([]any)
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			where := strings.ToUpper(m) + " " + path
			security := defaultSecurity
			if s, ok := op["security"].([]any); ok {
				security = s
			}
			scheme := schemeOf(security)
			codes := map[apperr.Code]bool{}
			add := func(cs []apperr.Code) {
				for _, c := range cs {
					codes[c] = true
				}
			}
			add(everyCodes)
			switch scheme {
			case "merchant":
				add(merchantCodes)
			case "consumer":
				add(consumerCodes)
			default:
				add(partnerCodes)
			}
			if m != "get" && m != "head" {
				add(writeCodes)
			}
			if _, ok := op["requestBody"]; ok {
				add(bodyCodes)
			}
			if len(pathParams) > 0 || len(asSlice(op["parameters"])) > 0 {
				add(paramCodes)
			}
			for _, c := range asSlice(op["x-error-codes"]) {
				code := apperr.Code(fmt.Sprint(c))
				if _, ok := catalog[code]; !ok {
					return fmt.Errorf("%s: x-error-codes: %s is not in internal/apperr", where, code)
				}
				codes[code] = true
			}
			if err := addExamples(op, shared, examples[where]); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if err := addErrorResponses(op, codes, catalog, where); err != nil {
				return err
			}
			addHeaders(op)
			addAuthParameters(op, scheme)
		}
	}
	// Every shared response was inlined with its operation's example.
	delete(components, "responses")
	return nil
}

// addExamples inlines the operation's shared ($ref) responses, so each
// can carry its own example, and adds the recorded request and answers as
// examples where the document has none written by hand.
func addExamples(op map[string]any, shared map[string]any, ex Example) error {
	responses, _ := op["responses"].(map[string]any)
	for status, r := range responses {
		rm, ok := r.(map[string]any)
		if !ok {
			continue
		}
		if ref, ok := rm["$ref"].(string); ok {
			target, ok := shared[strings.TrimPrefix(ref, "#/components/responses/")]
			if !ok {
				return fmt.Errorf("response %s: unknown %s", status, ref)
			}
			rm = deepCopy(target).(map[string]any)
			responses[status] = rm
		}
		content, _ := rm["content"].(map[string]any)
		for ct, m := range content {
			rec, ok := ex.Responses[status+" "+ct]
			media, _ := m.(map[string]any)
			if !ok || media == nil {
				continue
			}
			if _, ok := media["examples"]; ok {
				continue
			}
			if _, ok := media["example"]; ok {
				continue
			}
			var body any
			if err := json.Unmarshal(rec.Body, &body); err != nil {
				return fmt.Errorf("example %s %s: %w", status, ct, err)
			}
			media["example"] = body
		}
	}
	if body, ok := op["requestBody"].(map[string]any); ok && len(ex.Request) > 0 {
		content, _ := body["content"].(map[string]any)
		if media, ok := content["application/json"].(map[string]any); ok {
			_, many := media["examples"]
			if _, one := media["example"]; !many && !one {
				var v any
				if err := json.Unmarshal(ex.Request, &v); err != nil {
					return fmt.Errorf("request example: %w", err)
				}
				media["example"] = v
			}
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// schemeOf names the kind of caller of an operation from its security.
func schemeOf(security []any) string {
	for _, s := range security {
		for name := range s.(map[string]any) {
			switch name {
			case "merchantSignature":
				return "merchant"
			case "consumerToken":
				return "consumer"
			}
		}
	}
	return "partner"
}

// addErrorResponses replaces the catch-all `default` of an operation with
// one response per status its codes answer with: 4xx by status, 5xx as
// `default`.
func addErrorResponses(op map[string]any, codes map[apperr.Code]bool, catalog map[apperr.Code]apperr.Info, where string) error {
	responses, _ := op["responses"].(map[string]any)
	if responses == nil {
		return fmt.Errorf("%s: no responses", where)
	}
	delete(responses, "default")
	byStatus := map[string][]apperr.Code{}
	for c := range codes {
		key := strconv.Itoa(catalog[c].Status)
		if catalog[c].Status >= 500 {
			key = "default"
		}
		byStatus[key] = append(byStatus[key], c)
	}
	for key, cs := range byStatus {
		if _, ok := responses[key]; ok {
			return fmt.Errorf("%s: response %s is derived from the error codes; remove it from openapi.yaml", where, key)
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
		enum := make([]any, len(cs))
		var desc strings.Builder
		if key == "default" {
			desc.WriteString("A server-side failure (5xx); retry later. An RFC 9457 problem whose `code` is one of:\n")
		} else {
			status, _ := strconv.Atoi(key)
			fmt.Fprintf(&desc, "An RFC 9457 problem (%d); nothing was changed. Its `code` is one of:\n", status)
		}
		headers := map[string]any{}
		for i, c := range cs {
			enum[i] = string(c)
			info := catalog[c]
			fmt.Fprintf(&desc, "- `%s` (%s): %s\n", c, info.Title, info.Action)
			if retryAfter[c] {
				headers["Retry-After"] = map[string]any{"$ref": "#/components/headers/Retry-After"}
			}
		}
		first := catalog[cs[0]]
		example := map[string]any{
			"type":      "https://docs.perks.dev/errors#" + strings.ToLower(string(cs[0])),
			"title":     first.Title,
			"status":    first.Status,
			"code":      string(cs[0]),
			"detail":    first.Title + ".",
			"requestId": "0f9a3c2e7d4b4d1a",
		}
		resp := map[string]any{
			"description":   desc.String(),
			"x-error-codes": enum,
			"content": map[string]any{
				"application/problem+json": map[string]any{
					"schema": map[string]any{
						"allOf": []any{
							map[string]any{"$ref": "#/components/schemas/Problem"},
							map[string]any{
								"type":     "object",
								"required": []any{"code"},
								"properties": map[string]any{
									"code": map[string]any{"type": "string", "enum": enum, "description": "The codes this operation can answer with this status (docs/errors.md)."},
								},
							},
						},
					},
					"example": example,
				},
			},
		}
		if len(headers) > 0 {
			resp["headers"] = headers
		}
		responses[key] = resp
	}
	return nil
}

// addHeaders documents the RateLimit-* headers that every answer carries
// when rate limits are configured (inline responses; the shared ones of
// components/responses get them in complete).
func addHeaders(op map[string]any) {
	responses, _ := op["responses"].(map[string]any)
	for _, r := range responses {
		if r, ok := r.(map[string]any); ok {
			addRateLimitHeaders(r)
		}
	}
}

func addRateLimitHeaders(r map[string]any) {
	if _, isRef := r["$ref"]; isRef {
		return
	}
	headers, _ := r["headers"].(map[string]any)
	if headers == nil {
		headers = map[string]any{}
		r["headers"] = headers
	}
	for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		headers[h] = map[string]any{"$ref": "#/components/headers/" + h}
	}
}

// addAuthParameters lists the authentication headers that are not the
// security scheme's own (one header each) as optional parameters, so a
// generated client can type them.
func addAuthParameters(op map[string]any, scheme string) {
	var refs []string
	switch scheme {
	case "merchant":
		refs = []string{"Timestamp"}
	case "consumer":
		refs = []string{"PartnerSlugConsumer"}
	default:
		refs = []string{"PartnerSlug", "Timestamp"}
	}
	params := asSlice(op["parameters"])
	for _, r := range refs {
		params = append(params, map[string]any{"$ref": "#/components/parameters/" + r})
	}
	op["parameters"] = params
}
