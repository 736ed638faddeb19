package rest_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/dbtest"
)

const acmeSecret = "dev_acme_secret_change_me"

var validBody = `{"externalUserId":"usr_1","email":"one@acme.example.test","displayName":"One","countryCode":"SG"}`

// TestUpsertUserBadInput sends one bad request per row and checks the
// status, the code, the named field and that no table changed.
func TestUpsertUserBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	now := env.Now().Unix()
	sign := func(secret string, ts int64, body string) string {
		T := strconv.FormatInt(ts, 10)
		return "t=" + T + ",v1=" + auth.SignV1([]byte(secret), T, []byte(body))
	}
	replayed := sign(acmeSecret, now-7, validBody)
	require.Equal(t, http.StatusCreated, send(env, "acme", replayed, "application/json", validBody).StatusCode)

	type tc struct {
		name, slug, sig, contentType, body string
		status                             int
		code, field                        string
	}
	body := func(s string) tc {
		return tc{slug: "acme", sig: sign(acmeSecret, now, s), contentType: "application/json", body: s}
	}
	with := func(c tc, name string, status int, code, field string) tc {
		c.name, c.status, c.code, c.field = name, status, code, field
		return c
	}
	oversize := `{"externalUserId":"x","displayName":"` + strings.Repeat("a", 1<<20) + `"}`
	cases := []tc{
		{name: "no signature", slug: "acme", contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "no slug", sig: sign(acmeSecret, now, validBody), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "unknown slug", slug: "nobody", sig: sign(acmeSecret, now, validBody), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "wrong secret", slug: "acme", sig: sign("not-the-secret-at-all", now, validBody), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "another partner's secret", slug: "acme", sig: sign("dev_globex_secret_change_me", now, validBody), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "signature of another body", slug: "acme", sig: sign(acmeSecret, now, `{"externalUserId":"usr_2"}`), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "signed with another timestamp", slug: "acme", sig: "t=" + strconv.FormatInt(now, 10) + ",v1=" + auth.SignV1([]byte(acmeSecret), strconv.FormatInt(now-1, 10), []byte(validBody)), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "garbage header", slug: "acme", sig: "garbage", contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "no timestamp", slug: "acme", sig: "v1=" + strings.Repeat("ab", 32), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "non-numeric timestamp", slug: "acme", sig: "t=abc,v1=" + strings.Repeat("ab", 32), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "no v1", slug: "acme", sig: "t=" + strconv.FormatInt(now, 10), contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "v1 not hex", slug: "acme", sig: "t=" + strconv.FormatInt(now, 10) + ",v1=zz", contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "v1 truncated", slug: "acme", sig: sign(acmeSecret, now, validBody)[:40], contentType: "application/json", body: validBody, status: 401, code: "INVALID_SIGNATURE"},
		{name: "stale timestamp", slug: "acme", sig: sign(acmeSecret, now-301, validBody), contentType: "application/json", body: validBody, status: 401, code: "TIMESTAMP_OUT_OF_RANGE"},
		{name: "future timestamp", slug: "acme", sig: sign(acmeSecret, now+301, validBody), contentType: "application/json", body: validBody, status: 401, code: "TIMESTAMP_OUT_OF_RANGE"},
		{name: "replayed signature", slug: "acme", sig: replayed, contentType: "application/json", body: validBody, status: 401, code: "SIGNATURE_REPLAYED"},
		with(body(`{"externalUserId":`), "truncated JSON", 400, "MALFORMED_JSON", ""),
		with(body(`{"externalUserId":"a",}`), "syntax error", 400, "MALFORMED_JSON", ""),
		with(body(`[{"externalUserId":"a"}]`), "array body", 400, "MALFORMED_JSON", ""),
		with(body(``), "empty body", 400, "MALFORMED_JSON", ""),
		with(body(`{"externalUserId":"a"} {}`), "trailing data", 400, "MALFORMED_JSON", ""),
		with(body(`{"externalUserId":123}`), "id is a number", 400, "INVALID_FIELD", "externalUserId"),
		with(body(`{"externalUserId":"a","email":true}`), "email is a boolean", 400, "INVALID_FIELD", "email"),
		with(body(`{"externalUserId":"a","countryCode":["SG"]}`), "country is an array", 400, "INVALID_FIELD", "countryCode"),
		with(body(`{"externalUserId":"a","nickname":"x"}`), "unknown field", 400, "UNKNOWN_FIELD", "nickname"),
		with(body(`{"email":"a@b.example"}`), "missing externalUserId", 400, "MISSING_FIELD", "externalUserId"),
		with(body(`{"externalUserId":""}`), "empty externalUserId", 400, "MISSING_FIELD", "externalUserId"),
		with(body(`{"externalUserId":"`+strings.Repeat("x", 129)+`"}`), "externalUserId too long", 400, "INVALID_FIELD", "externalUserId"),
		with(body(`{"externalUserId":"a\u0000b"}`), "control character in id", 400, "INVALID_FIELD", "externalUserId"),
		with(body(`{"externalUserId":"a","email":"not-an-email"}`), "invalid email", 400, "INVALID_FIELD", "email"),
		with(body(`{"externalUserId":"a","email":"Demo <demo@acme.example.test>"}`), "email with a name", 400, "INVALID_FIELD", "email"),
		with(body(`{"externalUserId":"a","countryCode":"XX"}`), "unknown country", 400, "INVALID_FIELD", "countryCode"),
		with(body(`{"externalUserId":"a","countryCode":"SGP"}`), "alpha-3 country", 400, "INVALID_FIELD", "countryCode"),
		with(body(`{"externalUserId":"a","countryCode":"12"}`), "numeric country", 400, "INVALID_FIELD", "countryCode"),
		with(body(`{"externalUserId":"a","locale":"not a locale"}`), "invalid locale", 400, "INVALID_FIELD", "locale"),
		with(body(`{"externalUserId":"a","displayName":"`+strings.Repeat("n", 201)+`"}`), "display name too long", 400, "INVALID_FIELD", "displayName"),
		with(body(oversize), "oversize body", 413, "PAYLOAD_TOO_LARGE", ""),
		func() tc {
			c := body(validBody)
			c.contentType = "text/plain"
			return with(c, "wrong content type", 415, "UNSUPPORTED_MEDIA_TYPE", "")
		}(),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := send(env, c.slug, c.sig, c.contentType, c.body)
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			p := res.JSON(t)
			require.Equal(t, c.code, p["code"], "%s", res.Body)
			require.NotEmpty(t, p["requestId"])
			require.NotEmpty(t, p["detail"])
			if c.field != "" {
				require.Equal(t, c.field, p["field"], "%s", res.Body)
			}
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}

// TestUnknownSlugAndBadSignatureLookAlike: an attacker cannot tell a
// partner's existence from the answer.
func TestUnknownSlugAndBadSignatureLookAlike(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	sig := "t=" + ts + ",v1=" + auth.SignV1([]byte("wrong-secret-wrong"), ts, []byte(validBody))
	a := send(env, "acme", sig, "application/json", validBody)
	b := send(env, "no-such-partner", sig, "application/json", validBody)
	require.Equal(t, a.StatusCode, b.StatusCode)
	pa, pb := a.JSON(t), b.JSON(t)
	delete(pa, "requestId")
	delete(pb, "requestId")
	require.Equal(t, pa, pb)
}

// TestSeveralV1Entries: any matching v1 passes (rotation), and junk entries
// added to a used header do not make it new.
func TestSeveralV1Entries(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ts := strconv.FormatInt(env.Now().Unix(), 10)
	good := auth.SignV1([]byte(acmeSecret), ts, []byte(validBody))
	junk := strings.Repeat("0", 64)
	res := send(env, "acme", "t="+ts+",v1="+junk+",v1="+good, "application/json", validBody)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = send(env, "acme", "t="+ts+",v1="+good+",v1="+junk, "application/json", validBody)
	require.Equal(t, "SIGNATURE_REPLAYED", res.Code())
}

func send(env *apptest.Env, slug, sig, contentType, body string) *apptest.Response {
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/integrations/users", bytes.NewBufferString(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if slug != "" {
		req.Header.Set("X-Partner-Slug", slug)
	}
	if sig != "" {
		req.Header.Set("X-Signature", sig)
	}
	return env.Do(req)
}

// TestUserLifecycle covers create, update (partial), get, anonymise (twice),
// revive and the 404s.
func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"u-1","email":"u1@example.com","firstName":"Ann","locale":"en_US","countryCode":"sg"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	id := res.JSON(t)["userId"]

	res = env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"u-1","displayName":"Ann B"}`))
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, map[string]any{"userId": id, "created": false}, res.JSON(t))

	got := env.Partner("acme", http.MethodGet, "/integrations/users/u-1", nil).JSON(t)
	require.Equal(t, "u1@example.com", got["email"], "absent fields are kept")
	require.Equal(t, "Ann B", got["displayName"])
	require.Equal(t, "en-US", got["locale"], "locale stored as BCP 47")
	require.Equal(t, "SG", got["countryCode"])
	require.Equal(t, "u-1", got["externalUserId"])
	require.Equal(t, false, got["anonymised"])

	for i := 0; i < 2; i++ {
		res = env.Partner("acme", http.MethodDelete, "/integrations/users/u-1", nil)
		require.Equal(t, http.StatusNoContent, res.StatusCode, "anonymise is idempotent: %s", res.Body)
	}
	var events []string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT type FROM events WHERE user_id = ? ORDER BY created_at, type", id).Scan(t.Context(), &events))
	require.ElementsMatch(t, []string{"user.created", "user.updated", "user.anonymised"}, events)

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/integrations/users/nobody"},
		{http.MethodDelete, "/integrations/users/nobody"},
	} {
		res = env.Partner("acme", c.method, c.path, nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, "USER_NOT_FOUND", res.Code())
	}
	res = env.Partner("acme", http.MethodDelete, "/integrations/users/u-1?mode=shred", nil)
	require.Equal(t, "INVALID_FIELD", res.Code())
	require.Equal(t, "mode", res.JSON(t)["field"])
}

// TestConcurrentUpsertsCreateOneUser: 20 simultaneous first POSTs of one
// external id create exactly one user.
func TestConcurrentUpsertsCreateOneUser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const n = 20
	results := make(chan *apptest.Response, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			results <- env.Partner("acme", http.MethodPost, "/integrations/users", []byte(fmt.Sprintf(`{"externalUserId":"same","displayName":"v%d"}`, i)))
		}(i)
	}
	created, ids := 0, map[any]bool{}
	for i := 0; i < n; i++ {
		r := <-results
		require.Contains(t, []int{200, 201}, r.StatusCode, "%s", r.Body)
		if r.StatusCode == 201 {
			created++
		}
		ids[r.JSON(t)["userId"]] = true
	}
	require.Equal(t, 1, created)
	require.Len(t, ids, 1)
	var events int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM events WHERE type = 'user.created'").Scan(t.Context(), &events))
	require.Equal(t, 1, events)
}

// TestConsumerTokenAttacks: each forged, expired or misdirected token is
// refused with its code and creates no user.
func TestConsumerTokenAttacks(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	now := env.Now()
	acmeKey := env.PrivateKey("acme")
	globexKey := env.PrivateKey("globex")
	claims := func(over map[string]any) map[string]any {
		c := map[string]any{"iss": "https://acme.example.test", "sub": "attacker", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&acmeKey.PublicKey)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	valid := apptest.MintRS256(t, acmeKey, nil, claims(nil))
	parts := strings.Split(valid, ".")

	cases := []struct {
		name, header, token string
		status              int
		code                string
	}{
		{"no token", "", "", 401, "UNAUTHENTICATED"},
		{"basic auth", "Basic dXNlcjpwYXNz", "", 401, "UNAUTHENTICATED"},
		{"garbage", "", "not.a.jwt", 401, "TOKEN_INVALID"},
		{"expired", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"exp": now.Add(-2 * time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()})), 401, "TOKEN_EXPIRED"},
		{"no exp", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"exp": nil})), 401, "TOKEN_INVALID"},
		{"no sub", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"sub": nil})), 401, "TOKEN_INVALID"},
		{"alg none", "", apptest.SignJWT(t, map[string]any{"alg": "none"}, claims(nil), nil), 401, "TOKEN_INVALID"},
		{"HS256 signed with the RSA public key", "", apptest.SignJWT(t, map[string]any{"alg": "HS256"}, claims(nil), hs256(pubPEM)), 401, "TOKEN_INVALID"},
		{"HS256 signed with the public key DER", "", apptest.SignJWT(t, map[string]any{"alg": "HS256"}, claims(nil), hs256(pubDER)), 401, "TOKEN_INVALID"},
		{"signed by another partner with acme's iss", "", apptest.MintRS256(t, globexKey, nil, claims(nil)), 401, "TOKEN_INVALID"},
		{"unknown issuer", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"iss": "https://evil.example"})), 401, "TOKEN_INVALID"},
		{"unknown kid", "", apptest.MintRS256(t, acmeKey, map[string]any{"kid": "nope"}, claims(nil)), 401, "TOKEN_INVALID"},
		{"kid of another partner", "", apptest.MintRS256(t, acmeKey, map[string]any{"kid": "globex-dev-1"}, claims(nil)), 401, "TOKEN_INVALID"},
		{"iat in the future", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"iat": now.Add(10 * time.Minute).Unix()})), 401, "TOKEN_INVALID"},
		{"nbf in the future", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), 401, "TOKEN_INVALID"},
		{"lifetime above the maximum", "", apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"exp": now.Add(8 * 24 * time.Hour).Unix()})), 401, "TOKEN_INVALID"},
		{"payload swapped", "", parts[0] + "." + strings.Split(apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"sub": "victim"})), ".")[1] + "." + parts[2], 401, "TOKEN_INVALID"},
		{"signature stripped", "", parts[0] + "." + parts[1] + ".", 401, "TOKEN_INVALID"},
		{"oversize token", "", strings.Repeat("a", 9000), 401, "TOKEN_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/me", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			} else if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			res := env.Do(req)
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.code, res.Code(), "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))

			gql := env.GraphQL(c.token, `{ me { id } }`, nil)
			if c.token != "" {
				require.Equal(t, c.code, gql.ErrorCode())
			}
		})
	}

	// Within the 60 s leeway an expired token still works, and the alias
	// header of seed 003 is accepted.
	leeway := apptest.MintRS256(t, acmeKey, nil, claims(map[string]any{"exp": now.Add(-30 * time.Second).Unix(), "iat": now.Add(-time.Hour).Unix()}))
	require.Equal(t, http.StatusOK, env.Consumer(leeway, http.MethodGet, "/me", nil).StatusCode)
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/me", nil)
	req.Header.Set("X-SaaSquatch-User-Token", valid)
	require.Equal(t, http.StatusOK, env.Do(req).StatusCode)
}

// TestTenantIsolation: globex's credentials and tokens never reach acme's users.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"shared-id","email":"acme-user@example.com"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode)
	acmeUserID := res.JSON(t)["userId"]

	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/integrations/users/shared-id"},
		{http.MethodDelete, "/integrations/users/shared-id"},
	} {
		r := env.Partner("globex", c.method, c.path, nil)
		require.Equal(t, http.StatusNotFound, r.StatusCode, "%s %s: %s", c.method, c.path, r.Body)
		require.Equal(t, "USER_NOT_FOUND", r.Code())
		require.NotContains(t, string(r.Body), "acme-user")
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))

	// The same external id at globex is a different user.
	res = env.Partner("globex", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"shared-id","email":"globex-user@example.com"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.NotEqual(t, acmeUserID, res.JSON(t)["userId"])
	got := env.Partner("acme", http.MethodGet, "/integrations/users/shared-id", nil).JSON(t)
	require.Equal(t, "acme-user@example.com", got["email"])

	// A globex token with X-Partner-Slug: acme still lands at globex; a
	// token claiming acme's issuer but signed by globex is refused.
	tok := env.Token("globex", "shared-id", nil)
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Partner-Slug", "acme")
	me := env.Do(req).JSON(t)
	require.Equal(t, "globex", me["partner"].(map[string]any)["slug"])
	require.Equal(t, "globex-user@example.com", me["email"])
}
