package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
)

// TestEveryOperationRefusesBadInput is the partner fuzzer's finding kept
// as a test. It reads the served OpenAPI document and, for every operation,
// sends a valid request (which must succeed) and then
// generated bad inputs derived from the schemas: control characters (NUL
// first) in every string field, path and query parameter, integers one past
// their documented bounds and past the int4 and int64 ranges, fractions and
// numbers as strings, wrong JSON types, strings one past maxLength, missing
// required fields and broken documents. Each request is signed with the
// scheme the operation uses (partner HMAC, the merchant's Ed25519, a
// consumer token), so it reaches the handler. Every bad input must answer a
// 4xx problem+json with a code, and none may change the database.
//
// The cases are enumerated from the document, not sampled: every run sends
// the same requests (ids are derived, not random), so a failure names a
// request that can be replayed, and a new field or operation in the
// document is covered without touching the test.
//
// The request JWT exchange (/auth/token) is left out: its body is ignored,
// the token carries the data, and rest's request JWT tests cover it.
func TestEveryOperationRefusesBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := newFuzzer(t, env)

	req, err := http.NewRequest(http.MethodGet, env.Server.URL+"/openapi.json", nil)
	require.NoError(t, err)
	served := env.Do(req)
	require.Equal(t, http.StatusOK, served.StatusCode)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(served.Body, &doc))
	f.doc = doc
	ops := f.operations()
	require.Greater(t, len(ops), 30)

	// Valid requests first: they create the state the bad ones would change.
	for _, op := range ops {
		res := f.send(op, f.baseline(op))
		var job struct{ JobID any }
		if json.Unmarshal(res.Body, &job) == nil {
			if id, ok := job.JobID.(string); ok {
				f.jobID = id
			}
		}
		// Each valid request succeeds, so the bad ones differ from a
		// request the handler accepts by one value only.
		require.Less(t, res.StatusCode, 300, "valid %s %s: %d %s", op.method, op.path, res.StatusCode, res.Body)
	}
	before := dbtest.Snapshot(t, env.DB.Bun)

	sent := 0
	for _, op := range ops {
		cases := f.badCases(op)
		for _, c := range cases {
			res := f.send(op, c.req)
			sent++
			ok := res.StatusCode >= 400 && res.StatusCode < 500 &&
				strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") && res.Code() != ""
			if !ok {
				t.Errorf("%s %s, %s: want a 4xx problem with a code, got %d %s\nrequest: %s", op.method, op.path, c.name, res.StatusCode, truncate(string(res.Body), 300), truncate(c.req.describe(), 300))
			}
		}
	}
	t.Logf("%d operations, %d bad inputs", len(ops), sent)
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a refused request changed the database")
}

type operation struct {
	method, path string // path is the template, e.g. /integrations/ads/{id}
	spec         map[string]any
	params       []map[string]any
}

type request struct {
	path  map[string]string
	query url.Values
	body  []byte // nil: none
}

func (r request) describe() string {
	return fmt.Sprintf("path=%v query=%v body=%s", r.path, r.query, r.body)
}

func (r request) clone() request {
	out := request{path: map[string]string{}, query: url.Values{}, body: r.body}
	for k, v := range r.path {
		out.path[k] = v
	}
	for k, v := range r.query {
		out.query[k] = append([]string(nil), v...)
	}
	return out
}

type badCase struct {
	name string
	req  request
}

type fuzzer struct {
	t        *testing.T
	env      *apptest.Env
	doc      map[string]any
	merchant *apptest.MerchantClient
	token    string
	now      time.Time
	// state created for the valid requests
	endpointID, voucherID, voucherCode string
	credentialID                       string // an Ed25519 credential of acme (not the one signing)
	jobID                              string // a bulk job, once a valid request created one
	otp                                string // the merchant voucher's one-time code
	keys                               int
}

func newFuzzer(t *testing.T, env *apptest.Env) *fuzzer {
	f := &fuzzer{t: t, env: env, merchant: env.DemoMerchant(), now: env.Now()}
	env.FundedUser("acme", "fuzz-user", "SG", 100000)
	gift := env.PutGift("acme", "fuzz-pool", catalog.GiftInput{Title: "Fuzz", CostPoints: 10, CodeSource: catalog.SourcePool, Merchants: []string{demo.DemoMerchant.Code}})
	env.UploadCodes("acme", "fuzz-pool", "FUZZ-0001", "FUZZ-0002")
	f.token = env.Token("acme", "fuzz-user", nil)
	claim := env.Claim(f.token, gift.ID, "fuzz-claim")
	require.Empty(t, claim.Errors)
	f.voucherID = claim.VoucherID
	// A second voucher for the merchant routes: the partner's valid cancel
	// runs before them.
	claim = env.Claim(f.token, gift.ID, "fuzz-claim-2")
	require.Empty(t, claim.Errors)
	f.voucherCode = *claim.Code
	f.otp = env.RequestOTP(f.token, claim.VoucherID)
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "ed25519", "description": "fuzz"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	f.credentialID = res.JSON(t)["id"].(string)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "fuzz-key", "generateSecret": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": "http://127.0.0.1:9/fuzz"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	f.endpointID = res.JSON(t)["id"].(string)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/actions", map[string]any{"externalUserId": "fuzz-user", "action": "purchase", "points": 5, "reference": "fuzz-reverse"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	// Held earns for the confirm and cancel routes (pathValue).
	for _, op := range []string{"confirm", "cancel"} {
		res := env.PartnerJSON("acme", http.MethodPost, "/integrations/actions", map[string]any{
			"externalUserId": "fuzz-user", "action": "purchase", "points": 5, "reference": "fuzz-held-" + op, "pending": true})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	return f
}

func (f *fuzzer) operations() []operation {
	var out []operation
	paths := f.doc["paths"].(map[string]any)
	for path, item := range paths {
		if path == "/auth/token" {
			continue
		}
		m := item.(map[string]any)
		var shared []map[string]any
		for _, p := range asList(m["parameters"]) {
			shared = append(shared, f.resolve(p))
		}
		for method, spec := range m {
			if method == "parameters" {
				continue
			}
			s := spec.(map[string]any)
			params := append([]map[string]any(nil), shared...)
			for _, p := range asList(s["parameters"]) {
				params = append(params, f.resolve(p))
			}
			out = append(out, operation{method: strings.ToUpper(method), path: path, spec: s, params: params})
		}
	}
	// Writes that create state first, deletions last.
	rank := map[string]int{http.MethodPost: 0, http.MethodPut: 0, http.MethodGet: 1, http.MethodDelete: 2}
	sort.Slice(out, func(i, j int) bool {
		if a, b := rank[out[i].method], rank[out[j].method]; a != b {
			return a < b
		}
		return out[i].path+out[i].method < out[j].path+out[j].method
	})
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// resolve follows a $ref (one level at a time, until none is left).
func (f *fuzzer) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = f.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		m = cur.(map[string]any)
	}
	return m
}

// bodySchema returns the operation's JSON body schema, or nil.
func (f *fuzzer) bodySchema(op operation) map[string]any {
	rb := f.resolve(op.spec["requestBody"])
	if rb == nil {
		return nil
	}
	content, _ := rb["content"].(map[string]any)
	js, _ := content["application/json"].(map[string]any)
	if js == nil {
		return nil
	}
	return f.schema(js["schema"])
}

// schema resolves a schema, merging allOf.
func (f *fuzzer) schema(v any) map[string]any {
	s := f.resolve(v)
	if s == nil {
		return map[string]any{}
	}
	return s
}

func types(s map[string]any) (main string, nullable bool) {
	switch t := s["type"].(type) {
	case string:
		return t, false
	case []any:
		for _, e := range t {
			if e == "null" {
				nullable = true
			} else {
				main = e.(string)
			}
		}
	}
	return main, nullable
}

// latest returns the id of acme's newest row of table, or "".
func (f *fuzzer) latest(table string) string {
	var ids []string
	err := f.env.DB.Bun.NewRaw("SELECT id::text FROM ? WHERE partner_id = ? ORDER BY created_at DESC LIMIT 1",
		bun.Ident(table), f.env.Acme.Partner.ID).Scan(context.Background(), &ids)
	require.NoError(f.t, err)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// pathValue is a valid value of a path parameter.
func (f *fuzzer) pathValue(op operation, name string) string {
	switch {
	case name == "externalUserId" && op.method == http.MethodDelete:
		return "fuzz-user-2" // created by POST /integrations/users
	case name == "externalUserId":
		return "fuzz-user"
	case name == "sku":
		return "fuzz-pool"
	case name == "name" && strings.HasPrefix(op.path, "/integrations/reports/"):
		return "points"
	case name == "reference" && strings.HasSuffix(op.path, "/reverse"):
		return "fuzz-reverse" // earned by newFuzzer
	case name == "code" && strings.HasPrefix(op.path, "/merchant/"):
		return f.voucherCode
	case name == "code":
		return "fuzz_rule"
	case name == "reference":
		return "fuzz-held-" + op.path[strings.LastIndex(op.path, "/")+1:]
	case strings.HasPrefix(op.path, "/integrations/ads/"):
		return "fuzz-ad"
	case strings.HasPrefix(op.path, "/integrations/vouchers/"):
		return f.voucherID
	case strings.HasPrefix(op.path, "/integrations/webhook-endpoints/"):
		return f.endpointID
	case strings.HasPrefix(op.path, "/integrations/credentials/"):
		return f.credentialID
	case name == "kid":
		return "fuzz-key"
	case strings.HasPrefix(op.path, "/integrations/jobs/") && f.jobID != "":
		return f.jobID
	case strings.HasPrefix(op.path, "/integrations/events/"):
		if id := f.latest("events"); id != "" {
			return id
		}
	case strings.HasPrefix(op.path, "/integrations/webhook-deliveries/"):
		if id := f.latest("webhook_deliveries"); id != "" {
			return id
		}
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(op.path)).String()
}

func (f *fuzzer) baseline(op operation) request {
	r := request{path: map[string]string{}, query: url.Values{}}
	for _, p := range op.params {
		if p["in"] == "path" {
			r.path[p["name"].(string)] = f.pathValue(op, p["name"].(string))
		}
	}
	if s := f.bodySchema(op); s != nil {
		v := f.value(op, "", s)
		if over, ok := bodyOverrides[op.method+" "+op.path]; ok {
			v = over(f)
		}
		b, err := json.Marshal(v)
		require.NoError(f.t, err)
		r.body = b
	}
	return r
}

// bodyOverrides are valid bodies the generic generator cannot guess.
var bodyOverrides = map[string]func(f *fuzzer) any{
	"POST /integrations/credentials": func(*fuzzer) any {
		return map[string]any{"kind": "hmac", "description": "fuzz"}
	},
	"POST /integrations/credentials/{id}/rotate": func(*fuzzer) any {
		return map[string]any{"keepOld": true}
	},
	"POST /integrations/consumer-keys": func(*fuzzer) any {
		return map[string]any{"kid": "fuzz-key-new", "description": "fuzz", "generateSecret": true}
	},
	"POST /integrations/consumer-keys/{kid}/rotate": func(*fuzzer) any {
		return map[string]any{"kid": "fuzz-key-next", "generateSecret": true, "keepOld": true}
	},
	"POST /integrations/actions/multistore": func(*fuzzer) any {
		return map[string]any{"items": []any{map[string]any{"externalUserId": "fuzz-user", "action": "purchase", "points": 1, "reference": "fuzz-ms-1"}}}
	},
	"PUT /integrations/campaigns/{code}": func(*fuzzer) any {
		return map[string]any{"name": "Fuzz", "bonus": 5, "actions": []any{"purchase"}, "condition": "earn.points > 0"}
	},
	"PUT /integrations/referral-policy": func(*fuzzer) any {
		return map[string]any{"qualifyAction": "purchase", "referrerPoints": 1, "refereePoints": 1, "codePattern": "FZ-####", "linkTemplate": "https://example.com/r/{code}", "holdDays": 1}
	},
	"POST /merchant/redemptions": func(f *fuzzer) any {
		return map[string]any{"code": f.voucherCode, "otp": f.otp}
	},
	"POST /integrations/events/replay": func(f *fuzzer) any {
		return map[string]any{"from": f.now.Add(-time.Hour).Format(time.RFC3339), "to": f.now.Format(time.RFC3339)}
	},
}

// value generates a valid value for a schema; name is the property name.
func (f *fuzzer) value(op operation, name string, s map[string]any) any {
	if enum, ok := s["enum"].([]any); ok {
		return enum[0]
	}
	typ, nullable := types(s)
	switch name {
	case "externalUserId":
		if op.path == "/integrations/users" {
			return "fuzz-user-2"
		}
		return "fuzz-user"
	case "action":
		if strings.HasPrefix(op.path, "/integrations/ads/") {
			return "daily_login" // an ad offers only client-triggerable actions
		}
		return "purchase"
	case "merchants":
		return []any{demo.DemoMerchant.Code}
	case "externalUserIds":
		return []any{"fuzz-user-3"}
	case "url":
		return "http://127.0.0.1:9/fuzz-put"
	case "email":
		return "fuzz@example.com"
	case "locale":
		return "en-US"
	case "countryCode":
		return "SG"
	case "codes":
		return []any{"FUZZ-0100"}
	case "endpointId":
		return f.endpointID
	}
	if nullable {
		return nil
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		for k, p := range props {
			out[k] = f.value(op, k, f.schema(p))
		}
		return out
	case "array":
		return []any{}
	case "integer":
		if min, ok := s["minimum"].(float64); ok && min > 1 {
			return int64(min)
		}
		return 1
	case "boolean":
		return false
	case "string":
		switch s["format"] {
		case "date-time":
			return f.now.Format(time.RFC3339)
		case "uuid":
			return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String()
		case "uri":
			return "https://example.com/fuzz.png"
		}
		if p, ok := s["pattern"].(string); ok && strings.Contains(p, "a-z0-9") {
			return "fuzz_x"
		}
		return "fuzz"
	}
	return "fuzz"
}

// Bad strings: NUL alone (the fuzzer's NUL-only title), inside a value,
// other C0 controls, DEL and a C1 control.
var badStrings = []string{"\x00", "ok\x00ok", "\x01", "a\x1bb", "a\x7fb", "a\u0085b", "a\u0000"}

func (f *fuzzer) badCases(op operation) []badCase {
	base := f.baseline(op)
	var out []badCase
	add := func(name string, r request) { out = append(out, badCase{name: name, req: r}) }

	for _, p := range op.params {
		name := p["name"].(string)
		in := p["in"].(string)
		s := f.schema(p["schema"])
		typ, _ := types(s)
		vals := append(append([]string(nil), badStrings...), "\xff\xfe", "a\nb")
		if ml, ok := s["maxLength"].(float64); ok {
			vals = append(vals, strings.Repeat("x", int(ml)+1))
		}
		if s["format"] == "uuid" {
			vals = append(vals, "not-a-uuid", "00000000-0000-0000-0000-00000000000")
		}
		if typ == "integer" {
			vals = append(vals, "abc", "1.5", "1e3", "99999999999999999999", "-9223372036854775809")
			if max, ok := s["maximum"].(float64); ok {
				vals = append(vals, strconv.FormatInt(int64(max)+1, 10))
			}
			if min, ok := s["minimum"].(float64); ok {
				vals = append(vals, strconv.FormatInt(int64(min)-1, 10))
			}
		}
		if typ == "boolean" {
			vals = append(vals, "yes", "2")
		}
		if _, ok := s["enum"]; ok {
			vals = append(vals, "not-in-enum")
		}
		switch in {
		case "path":
			for _, v := range vals {
				r := base.clone()
				r.path[name] = v
				add(fmt.Sprintf("path %s=%q", name, truncate(v, 20)), r)
			}
		case "query":
			for _, v := range vals {
				r := base.clone()
				r.query.Set(name, v)
				add(fmt.Sprintf("query %s=%q", name, truncate(v, 20)), r)
			}
		}
	}
	// An unknown query parameter carrying NUL reaches no handler field but
	// must not slip through either.
	r := base.clone()
	r.query.Set("x\x00", "1")
	add("query name with NUL", r)

	s := f.bodySchema(op)
	if s == nil {
		return out
	}
	var body any
	require.NoError(f.t, json.Unmarshal(base.body, &body))
	for _, m := range f.mutations(op, s, body, nil) {
		r := base.clone()
		r.body = m.body
		add(m.name, r)
	}
	// A body one byte past the route's limit (the upload route has its own).
	limit := f.env.App.Config.MaxBodyBytes
	if strings.HasSuffix(op.path, "/codes") {
		limit = f.env.App.Config.MaxUploadBytes
	}
	big := base.clone()
	big.body = []byte(`{"x":"` + strings.Repeat("a", int(limit)) + `"}`)
	add("body past the size limit", big)
	for _, raw := range []string{"", "null", "[]", `"x"`, "{", `{"a":1}{}`, "{\"x\":\"\xff\"}", "\xef\xbb\xbf{}"} {
		r := base.clone()
		r.body = []byte(raw)
		if raw == "" {
			r.body = []byte(" ")
		}
		add(fmt.Sprintf("body %q", raw), r)
	}
	return out
}

type mutation struct {
	name string
	body []byte
}

// mutations walks the body along the schema and replaces one value at a
// time with bad ones (and drops each required property).
func (f *fuzzer) mutations(op operation, s map[string]any, body any, at []any) []mutation {
	var out []mutation
	emit := func(name string, v any, drop bool) {
		doc := deepCopy(body)
		set(&doc, at, v, drop)
		b, err := json.Marshal(doc)
		require.NoError(f.t, err)
		out = append(out, mutation{name: fmt.Sprintf("%s %s", pathName(at), name), body: b})
	}
	typ, _ := types(s)
	if len(at) > 0 {
		if typ != "string" {
			emit("as string", "1", false)
		}
		if typ != "object" {
			emit("as object", map[string]any{}, false)
		}
		if typ != "array" {
			emit("as array", []any{}, false)
		}
		if typ != "boolean" {
			emit("as boolean", true, false)
		}
	}
	switch typ {
	case "string":
		for _, b := range badStrings {
			emit(fmt.Sprintf("= %q", b), b, false)
		}
		emit("= 12345", 12345, false)
		if ml, ok := s["maxLength"].(float64); ok {
			emit("one past maxLength", strings.Repeat("é", int(ml)+1), false)
		}
	case "integer":
		for _, raw := range []string{"2147483648", "-2147483649", "9223372036854775808", "-9223372036854775809", "1e400", "1.5", "1e3", "18446744073709551616"} {
			emit("= "+raw, json.RawMessage(raw), false)
		}
		if max, ok := s["maximum"].(float64); ok {
			emit("= maximum+1", int64(max)+1, false)
		} else {
			f.t.Errorf("%s %s: integer %s has no documented maximum", op.method, op.path, pathName(at))
		}
		if min, ok := s["minimum"].(float64); ok {
			emit("= minimum-1", int64(min)-1, false)
		} else {
			f.t.Errorf("%s %s: integer %s has no documented minimum", op.method, op.path, pathName(at))
		}
	case "boolean":
		emit(`= "true"`, "true", false)
		emit("= 1", 1, false)
	case "array":
		items := f.schema(s["items"])
		emit("= [NUL string]", []any{"\x00"}, false)
		emit("= [{}]", []any{map[string]any{"\x00": "\x00"}}, false)
		if it, _ := types(items); it == "string" {
			for _, b := range badStrings[:3] {
				emit(fmt.Sprintf("= [%q]", b), []any{b}, false)
			}
		}
	case "object":
		props, _ := s["properties"].(map[string]any)
		if len(props) == 0 {
			// Free-form (metadata): control characters in values and keys.
			emit(`= {"k": NUL}`, map[string]any{"k": "\x00"}, false)
			emit(`= {NUL: 1}`, map[string]any{"\x00": 1}, false)
			emit(`= {"k": {"n": ESC}}`, map[string]any{"k": map[string]any{"n": "a\x1b"}}, false)
			emit(`= {"k": [C1]}`, map[string]any{"k": []any{"\u0085"}}, false)
		}
		obj, _ := get(body, at).(map[string]any)
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			out = append(out, f.mutations(op, f.schema(props[k]), body, append(append([]any(nil), at...), k))...)
		}
		for _, k := range asList(s["required"]) {
			if _, ok := obj[k.(string)]; ok {
				key := append(append([]any(nil), at...), k)
				doc := deepCopy(body)
				set(&doc, key, nil, true)
				b, err := json.Marshal(doc)
				require.NoError(f.t, err)
				out = append(out, mutation{name: "drop required " + pathName(key), body: b})
			}
		}
		if len(at) == 0 {
			doc := deepCopy(body).(map[string]any)
			doc["unknownFuzz"] = 1
			b, _ := json.Marshal(doc)
			out = append(out, mutation{name: "unknown property", body: b})
		}
	}
	return out
}

func pathName(at []any) string {
	if len(at) == 0 {
		return "body"
	}
	var b strings.Builder
	for _, p := range at {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func get(v any, at []any) any {
	for _, p := range at {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p.(string)]
	}
	return v
}

// set replaces (or deletes) the value at path; missing objects on the way
// are created.
func set(doc *any, at []any, v any, drop bool) {
	if len(at) == 0 {
		*doc = v
		return
	}
	m, ok := (*doc).(map[string]any)
	if !ok {
		m = map[string]any{}
		*doc = m
	}
	cur := m
	for i, p := range at {
		k := p.(string)
		if i == len(at)-1 {
			if drop {
				delete(cur, k)
			} else {
				cur[k] = v
			}
			return
		}
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// send signs and sends a request with the operation's scheme.
func (f *fuzzer) send(op operation, r request) *apptest.Response {
	f.t.Helper()
	p := op.path
	for k, v := range r.path {
		p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(v))
	}
	if len(r.query) > 0 {
		p += "?" + r.query.Encode()
	}
	var headers map[string]string
	f.keys++
	key := "fuzz-" + strconv.Itoa(f.keys)
	// A fresh second for each signature: identical body-less requests
	// would otherwise run out of unused timestamps in the skew window.
	f.env.Clock.Advance(time.Second)
	switch {
	case op.path == "/me":
		return f.env.Consumer(f.env.Token("acme", "fuzz-user", nil), op.method, p, r.body)
	case strings.HasPrefix(op.path, "/merchant/"):
		return f.merchant.Do(op.method, p, r.body, key)
	default:
		headers = map[string]string{"Idempotency-Key": key}
		return f.env.Partner("acme", op.method, p, r.body, headers)
	}
}
