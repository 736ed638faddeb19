package openapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/openapi"
	"github.com/perkshq/perks/internal/partner"
)

// docBlock matches the files of a guide: ```ts file=NAME ... ```.
var docBlock = regexp.MustCompile("(?s)```ts file=(\\S+)\n(.*?)```")

// TestGeneratedClientCallsEveryOperation generates a TypeScript client
// from the served document with openapi-typescript, compiles it with
// openapi-fetch and the signing helper of docs/openapi.md under
// tsc --strict, then calls every documented operation against a test
// server (testdata/client/every_operation.ts) and runs the guide's
// quickstart as written.
func TestGeneratedClientCallsEveryOperation(t *testing.T) {
	t.Parallel()
	tools := openapiTools(t)
	env := apptest.New(t, apptest.Options{WallClock: true})
	ctx := context.Background()
	// The script creates acme's sandbox (201) itself: drop the seeded one.
	_, err := env.DB.Bun.NewDelete().TableExpr("partners").Where("sandbox_of = ?", env.Acme.Partner.ID).Exec(ctx)
	require.NoError(t, err)

	// What the script cannot create through the REST API: a consumer
	// token, claimed vouchers (GraphQL) and a request JWT credential.
	env.FundedUser("acme", "ts-consumer", "SG", 10000)
	gift := env.PutGift("acme", "ts-pool", catalog.GiftInput{Title: "Voucher", CostPoints: 10, CodeSource: catalog.SourcePool, Merchants: []string{demo.DemoMerchant.Code}})
	env.UploadCodes("acme", "ts-pool", "TSPOOL-0001", "TSPOOL-0002")
	token := env.Token("acme", "ts-consumer", nil)
	cancelled := env.Claim(token, gift.ID, "ts-claim-1")
	require.Empty(t, cancelled.Errors)
	redeemed := env.Claim(token, gift.ID, "ts-claim-2")
	require.Empty(t, redeemed.Errors)
	otp := env.RequestOTP(token, redeemed.VoucherID)
	p, err := env.App.Partners.BySlug(ctx, env.DB.Bun, "acme")
	require.NoError(t, err)
	const requestSecret = "ts-client-request-jwt-secret-0123456789"
	_, err = env.App.Partners.AddSharedSecret(ctx, env.DB.Bun, p.ID, partner.KindRequestJWT, "ts client", []byte(requestSecret))
	require.NoError(t, err)
	m := env.DemoMerchant()

	dir := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(tools, "node_modules"), filepath.Join(dir, "node_modules")))
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write("openapi.json", string(openapi.JSONFor(env.Server.URL)))
	write("package.json", `{"type": "module"}`)
	write("tsconfig.json", `{"compilerOptions": {"strict": true, "noUncheckedIndexedAccess": true, "module": "nodenext",
		"moduleResolution": "nodenext", "target": "es2022", "skipLibCheck": true, "outDir": "out", "types": ["node"]}}`)
	_, file, _, _ := runtime.Caller(0)
	guide, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "openapi.md"))
	require.NoError(t, err)
	files := docBlock.FindAllSubmatch(guide, -1)
	require.Len(t, files, 2, "docs/openapi.md: perks.ts and quickstart.ts")
	for _, f := range files {
		write(string(f[1]), string(f[2]))
	}
	script, err := os.ReadFile(filepath.Join(filepath.Dir(file), "testdata", "client", "every_operation.ts"))
	require.NoError(t, err)
	write("every_operation.ts", string(script))

	_, err = run(t, tools, dir, "openapi-typescript", "openapi.json", "-o", "schema.d.ts")
	require.NoError(t, err, "openapi-typescript")
	out, err := run(t, tools, dir, "tsc", "-p", ".")
	require.NoError(t, err, "tsc --strict: %s", out)

	seed := m.PrivateKey.Seed()
	pub := []byte(m.PrivateKey.Public().(ed25519.PublicKey))
	vars := map[string]string{
		"PERKS_URL":                env.Server.URL,
		"PERKS_PARTNER_SLUG":       "acme",
		"PERKS_PARTNER_ID":         p.ID.String(),
		"PERKS_HMAC_SECRET":        env.HMACSecret("acme"),
		"PERKS_REQUEST_JWT_SECRET": requestSecret,
		"PERKS_CONSUMER_TOKEN":     token,
		"PERKS_GIFT_SKU":           "ts-pool",
		"PERKS_VOUCHER_ID":         cancelled.VoucherID,
		"PERKS_VOUCHER_CODE":       *redeemed.Code,
		"PERKS_VOUCHER_OTP":        otp,
		"PERKS_MERCHANT_API_KEY":   m.APIKey,
		"PERKS_MERCHANT_SEED":      base64.RawURLEncoding.EncodeToString(seed),
		"PERKS_MERCHANT_PUBLIC":    base64.RawURLEncoding.EncodeToString(pub),
	}
	vars["PERKS_EXAMPLES_OUT"] = filepath.Join(dir, "examples.out.json")
	out, err = runNode(t, dir, vars, "out/every_operation.js")
	require.NoError(t, err, "every_operation: %s", out)
	if os.Getenv("PERKS_UPDATE_EXAMPLES") == "1" {
		updateExamples(t, filepath.Join(dir, "examples.out.json"), filepath.Join(filepath.Dir(file), "examples.json"))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Equal(t, "done", lines[len(lines)-1])
	called := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		f := strings.Fields(l)
		require.Len(t, f, 3, l)
		called[f[0]+" "+f[1]] = true
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	var documented, missed []string
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" {
				continue
			}
			op := strings.ToUpper(method) + " " + path
			documented = append(documented, op)
			if !called[op] {
				missed = append(missed, op)
			}
		}
	}
	sort.Strings(missed)
	require.Empty(t, missed, "operations the generated client did not call")
	require.Len(t, called, len(documented))

	// The guide, as written, against a fresh user.
	out, err = runNode(t, dir, vars, "out/quickstart.js")
	require.NoError(t, err, "quickstart: %s", out)
	require.Contains(t, string(out), "earned 25 points")
	require.Contains(t, string(out), "usr_42 has")
	res := env.PartnerJSON("acme", http.MethodGet, "/integrations/users/usr_42", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
}

// updateExamples stores the script's first exchange of each operation and
// status as the document's examples (examples.json), with secrets and
// tokens replaced by placeholders.
func updateExamples(t *testing.T, recorded, target string) {
	b, err := os.ReadFile(recorded)
	require.NoError(t, err)
	var exchanges []struct {
		Method, Path, ContentType, Request, Response string
		Status                                       int
	}
	require.NoError(t, json.Unmarshal(b, &exchanges))
	examples := map[string]*openapi.Example{}
	for _, x := range exchanges {
		if x.Status >= 300 {
			continue // error examples are derived from internal/apperr
		}
		key := x.Method + " " + x.Path
		ex := examples[key]
		if ex == nil {
			ex = &openapi.Example{Responses: map[string]openapi.ExampleResponse{}}
			examples[key] = ex
		}
		if len(ex.Request) == 0 && x.Request != "" {
			ex.Request = scrub(t, []byte(x.Request))
		}
		status := strconv.Itoa(x.Status) + " " + x.ContentType
		if _, ok := ex.Responses[status]; ok || x.Response == "" {
			continue
		}
		body := json.RawMessage(x.Response)
		if x.ContentType != "application/json" {
			body, err = json.Marshal(x.Response)
			require.NoError(t, err)
		} else {
			body = scrub(t, body)
		}
		ex.Responses[status] = openapi.ExampleResponse{Body: body}
	}
	out, err := json.MarshalIndent(examples, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(target, append(out, '\n'), 0o644))
	t.Logf("wrote %d examples to %s", len(examples), target)
}

// scrub replaces the values of secret-bearing fields.
func scrub(t *testing.T, b []byte) json.RawMessage {
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if _, ok := e.(string); ok && k == "otp" {
					v[k] = "123456"
					continue
				}
				if s, ok := e.(string); ok && (k == "secret" || k == "token") {
					prefix, _, _ := strings.Cut(s, "_")
					v[k] = prefix + "_EXAMPLEONLY0123456789abcdefghijklmnopqrstuv"
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return out
}
