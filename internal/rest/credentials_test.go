package rest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
)

// hmacAs sends a request signed with an arbitrary HMAC secret of the
// partner (a credential created through the API).
func hmacAs(env *apptest.Env, slug, secret, method, path string, v any, idem string) *apptest.Response {
	env.T.Helper()
	var body []byte
	if v != nil {
		b, err := json.Marshal(v)
		require.NoError(env.T, err)
		body = b
	}
	req, err := http.NewRequest(method, env.Server.URL+path, bytes.NewReader(body))
	require.NoError(env.T, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Partner-Slug", slug)
	req.Header.Set("X-Signature", env.SignV1(secret, body))
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	return env.Do(req)
}

type credItem struct {
	ID          string  `json:"id"`
	Kind        string  `json:"kind"`
	Description string  `json:"description"`
	Enabled     bool    `json:"enabled"`
	PublicKey   *string `json:"publicKey"`
	APIKey      string  `json:"apiKey"`
	PrivateKey  string  `json:"privateKey"`
	Secret      string  `json:"secret"`
	SecretNote  string  `json:"secretNote"`
	PartnerID   string  `json:"partnerId"`
	Replaced    *struct {
		ID      string `json:"id"`
		Enabled bool   `json:"enabled"`
	} `json:"replaced"`
}

func decodeCred(t *testing.T, res *apptest.Response) credItem {
	t.Helper()
	var c credItem
	require.NoError(t, json.Unmarshal(res.Body, &c), "%s", res.Body)
	return c
}

func listCreds(t *testing.T, env *apptest.Env, slug string) []credItem {
	t.Helper()
	res := env.Partner(slug, http.MethodGet, "/integrations/credentials", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	var l struct{ Items []credItem }
	require.NoError(t, json.Unmarshal(res.Body, &l))
	return l.Items
}

// demoHMACID is the id of the demo partner's seeded HMAC credential (the
// one env.Partner signs with).
func demoHMACID(t *testing.T, env *apptest.Env, slug string) string {
	t.Helper()
	for _, c := range listCreds(t, env, slug) {
		if c.Kind == "hmac" && c.Enabled {
			return c.ID
		}
	}
	t.Fatalf("no hmac credential for %s", slug)
	return ""
}

// TestCredentialRoutesCreateAndUse: each kind created over REST works at
// once with what the answer showed once, the list never shows a secret, and
// a disabled credential stops authenticating.
func TestCredentialRoutesCreateAndUse(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	// Ed25519, pair generated: the private key signs a real request.
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "ed25519", "description": "prod"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	ed := decodeCred(t, res)
	require.NotEmpty(t, ed.APIKey)
	require.Contains(t, ed.PrivateKey, "BEGIN PRIVATE KEY")
	k, err := demo.ParsePrivateKey([]byte(ed.PrivateKey))
	require.NoError(t, err)
	edClient := &seed004Client{env: env, apiKey: ed.APIKey, key: k.(ed25519.PrivateKey)}
	require.Equal(t, http.StatusOK, edClient.do(http.MethodGet, "/integrations/credentials", nil, "").StatusCode)

	// Ed25519, the partner's own public key: no private key in the answer.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "ed25519", "publicKey": pubPEM(t, pub)})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	own := decodeCred(t, res)
	require.Empty(t, own.PrivateKey)
	ownClient := &seed004Client{env: env, apiKey: own.APIKey, key: priv}
	require.Equal(t, http.StatusOK, ownClient.do(http.MethodGet, "/integrations/credentials", nil, "").StatusCode)

	// HMAC: the generated secret signs seed 000 requests.
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "hmac", "description": "rotation 2026"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	hm := decodeCred(t, res)
	require.GreaterOrEqual(t, len(hm.Secret), 32)
	require.Equal(t, http.StatusOK, hmacAs(env, "acme", hm.Secret, http.MethodGet, "/integrations/credentials", nil, "").StatusCode)

	// Request JWT: the secret and the partner id (iss) buy a back-end token.
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "request_jwt"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	rj := decodeCred(t, res)
	require.Equal(t, env.PartnerID("acme").String(), rj.PartnerID)
	tok := sign(t, jwt.SigningMethodHS256, []byte(rj.Secret), nil, map[string]any{"iss": rj.PartnerID, "sub": "", "iat": env.Now().Unix(), "data_body": ""})
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/auth/token", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	require.Equal(t, http.StatusOK, env.Do(req).StatusCode)

	// The list shows every record and never a secret.
	list := env.Partner("acme", http.MethodGet, "/integrations/credentials", nil)
	for _, secret := range []string{ed.APIKey, hm.Secret, rj.Secret, "PRIVATE KEY"} {
		require.NotContains(t, string(list.Body), secret)
	}
	require.Len(t, listCreds(t, env, "acme"), len(listCreds(t, env, "acme")))

	// Disabled, the HMAC secret stops working; enabled again, it works.
	res = env.Partner("acme", http.MethodPost, "/integrations/credentials/"+hm.ID+"/disable", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.False(t, decodeCred(t, res).Enabled)
	require.Equal(t, "INVALID_SIGNATURE", hmacAs(env, "acme", hm.Secret, http.MethodGet, "/integrations/credentials", nil, "").Code())
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/credentials/"+hm.ID+"/enable", nil).StatusCode)
	require.Equal(t, http.StatusOK, hmacAs(env, "acme", hm.Secret, http.MethodGet, "/integrations/credentials", nil, "").StatusCode)

	// Rotating the Ed25519 record: a new pair, the old one disabled.
	res = env.Partner("acme", http.MethodPost, "/integrations/credentials/"+ed.ID+"/rotate", nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	rot := decodeCred(t, res)
	require.NotEqual(t, ed.APIKey, rot.APIKey)
	require.NotNil(t, rot.Replaced)
	require.False(t, rot.Replaced.Enabled)
	require.Equal(t, "INVALID_SIGNATURE", edClient.do(http.MethodGet, "/integrations/credentials", nil, "").Code())
}

// TestCredentialRoutesNoLockout: the credential that signs the request can
// be neither disabled nor rotated away (CREDENTIAL_IN_USE, nothing
// changed); rotating it with keepOld gives an overlap, and the new
// credential then disables the old one.
func TestCredentialRoutesNoLockout(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	id := demoHMACID(t, env, "acme")
	before := dbtest.Snapshot(t, env.DB.Bun)
	res := env.Partner("acme", http.MethodPost, "/integrations/credentials/"+id+"/disable", nil)
	require.Equal(t, http.StatusConflict, res.StatusCode, "%s", res.Body)
	require.Equal(t, "CREDENTIAL_IN_USE", res.Code())
	res = env.Partner("acme", http.MethodPost, "/integrations/credentials/"+id+"/rotate", nil)
	require.Equal(t, "CREDENTIAL_IN_USE", res.Code())
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a refused change changed the database")

	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/credentials/"+id+"/rotate", map[string]any{"keepOld": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	next := decodeCred(t, res)
	require.True(t, next.Replaced.Enabled, "keepOld leaves the old secret working during the overlap")
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodGet, "/integrations/credentials", nil).StatusCode)
	res = hmacAs(env, "acme", next.Secret, http.MethodPost, "/integrations/credentials/"+id+"/disable", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "INVALID_SIGNATURE", env.Partner("acme", http.MethodGet, "/integrations/credentials", nil).Code())
}

// TestCredentialRoutesBadInput: bad input answers a 4xx with a stable code
// and changes nothing.
func TestCredentialRoutesBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.App.Credentials.AllowHTTPJWKS = false // production's rule
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	good := pubPEM(t, &rsaKey.PublicKey)
	long := strings.Repeat("x", 201)
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"unknown kind", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "password"}, 400, "INVALID_FIELD", "kind"},
		{"no kind", http.MethodPost, "/integrations/credentials", map[string]any{"description": "x"}, 400, "MISSING_FIELD", "kind"},
		{"bad ed25519 key", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "ed25519", "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, 400, "INVALID_FIELD", "publicKey"},
		{"rsa key for ed25519", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "ed25519", "publicKey": good}, 400, "INVALID_FIELD", "publicKey"},
		{"long description", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "hmac", "description": long}, 400, "INVALID_FIELD", "description"},
		{"short secret", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "hmac", "secret": "short"}, 400, "INVALID_FIELD", "secret"},
		{"secret for ed25519", http.MethodPost, "/integrations/credentials", map[string]any{"kind": "ed25519", "secret": "0123456789abcdef0123"}, 400, "INVALID_FIELD", "secret"},
		{"unknown credential", http.MethodPost, "/integrations/credentials/5b0d7a41-3f5e-4d6c-9a8b-7c6d5e4f3a2b/disable", nil, 404, "NOT_FOUND", ""},
		{"not a uuid", http.MethodPost, "/integrations/credentials/nope/enable", nil, 404, "NOT_FOUND", ""},
		{"bad PEM", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "publicKey": "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"}, 400, "INVALID_FIELD", "publicKey"},
		{"private key PEM", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "publicKey": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n"}, 400, "INVALID_FIELD", "publicKey"},
		{"unknown algorithm", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "algorithm": "HS512", "generateSecret": true}, 400, "INVALID_FIELD", "algorithm"},
		{"alg none", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "algorithm": "none", "publicKey": good}, 400, "INVALID_FIELD", "algorithm"},
		{"wrong algorithm for key", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "algorithm": "ES256", "publicKey": good}, 400, "INVALID_FIELD", "publicKey"},
		{"long key description", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "publicKey": good, "description": long}, 400, "INVALID_FIELD", "description"},
		{"no kid", http.MethodPost, "/integrations/consumer-keys", map[string]any{"publicKey": good}, 400, "MISSING_FIELD", "kid"},
		{"two materials", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "publicKey": good, "generateSecret": true}, 400, "INVALID_FIELD", "publicKey"},
		{"short HS256 secret", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "k", "secret": "too-short"}, 400, "INVALID_FIELD", "secret"},
		{"existing kid", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "primary", "publicKey": good}, 409, "CONSUMER_KEY_EXISTS", "kid"},
		{"unknown kid", http.MethodPost, "/integrations/consumer-keys/nope/disable", nil, 404, "NOT_FOUND", "kid"},
		{"rotate to same kid", http.MethodPost, "/integrations/consumer-keys/primary/rotate", map[string]any{"kid": "primary", "publicKey": good}, 400, "INVALID_FIELD", "kid"},
		{"http JWKS", http.MethodPut, "/integrations/consumer-jwks", map[string]any{"url": "http://keys.acme.example/jwks.json"}, 400, "INVALID_FIELD", "url"},
		{"JWKS with credentials", http.MethodPut, "/integrations/consumer-jwks", map[string]any{"url": "https://u:p@keys.acme.example/jwks.json"}, 400, "INVALID_FIELD", "url"},
		{"no JWKS to remove", http.MethodDelete, "/integrations/consumer-jwks", nil, 404, "NOT_FOUND", ""},
		{"no token", http.MethodPost, "/integrations/consumer-tokens/verify", map[string]any{}, 400, "MISSING_FIELD", "token"},
	}
	// The seeded acme key is "primary"? Make sure the existing-kid case has one.
	env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "primary", "publicKey": good})
	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, c := range cases {
		var res *apptest.Response
		if c.body == nil {
			res = env.Partner("acme", c.method, c.path, nil)
		} else {
			res = env.PartnerJSON("acme", c.method, c.path, c.body)
		}
		require.Equal(t, c.status, res.StatusCode, "%s: %s", c.name, res.Body)
		require.Equal(t, c.code, res.Code(), "%s", c.name)
		var p struct{ Field string }
		require.NoError(t, json.Unmarshal(res.Body, &p))
		require.Equal(t, c.field, p.Field, "%s", c.name)
		require.NotContains(t, string(res.Body), "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v", "%s: an error never echoes key material", c.name)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a refused request changed the database")
}

// TestCredentialRoutesTenantIsolation: globex neither sees nor changes
// acme's credentials and keys; every foreign id answers like an unknown one.
func TestCredentialRoutesTenantIsolation(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	acmeCred := demoHMACID(t, env, "acme")
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "acme-only", "generateSecret": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	for _, c := range listCreds(t, env, "globex") {
		require.NotEqual(t, acmeCred, c.ID)
	}
	keys := env.Partner("globex", http.MethodGet, "/integrations/consumer-keys", nil)
	require.Equal(t, http.StatusOK, keys.StatusCode)
	require.NotContains(t, string(keys.Body), "acme-only")

	before := dbtest.Snapshot(t, env.DB.Bun)
	for _, path := range []string{
		"/integrations/credentials/" + acmeCred + "/disable",
		"/integrations/credentials/" + acmeCred + "/rotate",
		"/integrations/consumer-keys/acme-only/disable",
	} {
		res := env.Partner("globex", http.MethodPost, path, nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode, "%s: %s", path, res.Body)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
}

// TestConsumerKeyRoutes: seed 002's key added over REST verifies a
// consumer token at once; an HS256 secret is generated and shown once (a
// retry with the Idempotency-Key gets the answer without it); disabling
// stops verification; rotation adds the new kid and retires the old one;
// the JWKS URL gets a description and toggle.
func TestConsumerKeyRoutes(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{
		"kid": "widget-2026", "description": "widget key", "publicKey": pubPEM(t, &rsaKey.PublicKey)})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	view := res.JSON(t)
	require.Equal(t, "RS256", view["algorithm"])
	require.Equal(t, true, view["enabled"])
	tok := func(key any, method jwt.SigningMethod, kid, sub string) string {
		return sign(t, method, key, map[string]any{"kid": kid}, map[string]any{"sub": sub, "exp": env.Now().Add(time.Hour).Unix()})
	}
	require.Equal(t, http.StatusOK, me(env, "Authorization", tok(rsaKey, jwt.SigningMethodRS256, "widget-2026", "seed-002-user")).StatusCode)

	// HS256, generated, shown once.
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "IRacmeAccount", "generateSecret": true},
		map[string]string{"Idempotency-Key": "hs256-1"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	secret := res.JSON(t)["secret"].(string)
	require.NotEmpty(t, secret)
	again := env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "IRacmeAccount", "generateSecret": true},
		map[string]string{"Idempotency-Key": "hs256-1"})
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.NotContains(t, string(again.Body), secret)
	require.Contains(t, again.JSON(t), "secretNote")
	require.Equal(t, http.StatusOK, me(env, "X-SaaSquatch-User-Token", tok([]byte(secret), jwt.SigningMethodHS256, "IRacmeAccount", "seed-003-user")).StatusCode)
	var stored int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM idempotency_keys WHERE position(convert_to(?, 'UTF8') in response_body) > 0", secret).Scan(ctx, &stored))
	require.Zero(t, stored, "no secret at rest with the idempotency key")

	// Added switched off: it verifies nothing until enabled.
	off, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "later", "publicKey": pubPEM(t, &off.PublicKey), "enabled": false})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, false, res.JSON(t)["enabled"])
	require.Equal(t, http.StatusUnauthorized, me(env, "Authorization", tok(off, jwt.SigningMethodRS256, "later", "seed-002-user")).StatusCode)

	// Disable: the token stops verifying with the next request.
	res = env.Partner("acme", http.MethodPost, "/integrations/consumer-keys/widget-2026/disable", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, http.StatusUnauthorized, me(env, "Authorization", tok(rsaKey, jwt.SigningMethodRS256, "widget-2026", "seed-002-user")).StatusCode)
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/consumer-keys/widget-2026/enable", nil).StatusCode)

	// Rotate: new kid enabled, old one disabled in the same step.
	next, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys/widget-2026/rotate", map[string]any{"kid": "widget-2027", "publicKey": pubPEM(t, &next.PublicKey)})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, "widget key", res.JSON(t)["description"], "the description carries over")
	require.Equal(t, http.StatusOK, me(env, "Authorization", tok(next, jwt.SigningMethodRS256, "widget-2027", "seed-002-user")).StatusCode)
	require.Equal(t, http.StatusUnauthorized, me(env, "Authorization", tok(rsaKey, jwt.SigningMethodRS256, "widget-2026", "seed-002-user")).StatusCode)

	// An uploaded secret: the audit hook records the write without the
	// secret and without a digest of the body that holds it.
	uploaded := "seed-003-auth-token-0123456789abcdefghij"
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-keys", map[string]any{"kid": "IRuploaded", "secret": uploaded})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.NotContains(t, string(res.Body), uploaded, "an uploaded secret is never echoed")
	var after []string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT after::text FROM audit_log WHERE action = 'POST /integrations/consumer-keys' ORDER BY id").Scan(ctx, &after))
	require.Len(t, after, 4)
	require.Contains(t, after[0], "sha256", "a body without a secret keeps its digest")
	require.NotContains(t, after[3], "sha256")
	require.NotContains(t, after[3], uploaded)

	// JWKS URL with description and toggle.
	res = env.PartnerJSON("acme", http.MethodPut, "/integrations/consumer-jwks", map[string]any{"url": "https://keys.acme.example/jwks.json", "description": "IdP", "enabled": false})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	list := env.Partner("acme", http.MethodGet, "/integrations/consumer-keys", nil).JSON(t)
	require.Equal(t, map[string]any{"url": "https://keys.acme.example/jwks.json", "description": "IdP", "enabled": false}, list["jwks"])
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/consumer-jwks", nil).StatusCode)
	require.Nil(t, env.Partner("acme", http.MethodGet, "/integrations/consumer-keys", nil).JSON(t)["jwks"])
}

// TestConsumerTokenVerifyRoute: the tester names the check that fails and
// has no effect (a valid token for a new user creates nobody).
func TestConsumerTokenVerifyRoute(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	type check struct{ Name, Status, Detail string }
	type report struct {
		Valid   bool
		Code    string
		Reason  string
		NewUser bool
		Checks  []check
	}
	verify := func(tok string) report {
		res := env.PartnerJSON("acme", http.MethodPost, "/integrations/consumer-tokens/verify", map[string]any{"token": tok})
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		var r report
		require.NoError(t, json.Unmarshal(res.Body, &r))
		return r
	}
	status := func(r report) map[string]string {
		m := map[string]string{}
		for _, c := range r.Checks {
			m[c.Name] = c.Status
		}
		return m
	}
	before := dbtest.Snapshot(t, env.DB.Bun)
	ok := verify(env.Token("acme", "never-seen-user", nil))
	require.True(t, ok.Valid)
	require.True(t, ok.NewUser)
	for name, st := range status(ok) {
		require.Equal(t, "pass", st, name)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "testing a token creates no user")

	cases := []struct {
		name, token, failed, reason string
	}{
		{"not a JWT", "not-a-token", "format", "malformed"},
		{"forged", apptest.MintRS256(t, other, nil, map[string]any{"iss": demo.Acme.Issuer, "sub": "u", "exp": env.Now().Add(time.Hour).Unix()}), "signature", "bad_signature"},
		{"expired", env.Token("acme", "u", map[string]any{"exp": env.Now().Add(-time.Hour).Unix(), "iat": env.Now().Add(-2 * time.Hour).Unix()}), "time", "expired"},
		{"globex's issuer", env.Token("globex", "u", nil), "issuer", "unknown_issuer"},
		{"unknown kid", apptest.MintRS256(t, env.PrivateKey("acme"), map[string]any{"kid": "nope"}, map[string]any{"sub": "u", "exp": env.Now().Add(time.Hour).Unix()}), "kid", "unknown_kid"},
		{"no subject", env.Token("acme", "", nil), "subject", "no_subject"},
	}
	for _, c := range cases {
		r := verify(c.token)
		require.False(t, r.Valid, c.name)
		require.Equal(t, c.reason, r.Reason, c.name)
		st := status(r)
		require.Equal(t, "fail", st[c.failed], "%s: %v", c.name, st)
		seen := false
		for _, ch := range r.Checks {
			switch {
			case ch.Name == c.failed:
				seen = true
			case seen:
				require.Equal(t, "skipped", ch.Status, "%s: checks after the failure are not judged", c.name)
			default:
				require.Equal(t, "pass", ch.Status, "%s: %s", c.name, ch.Name)
			}
		}
	}
	require.NotContains(t, env.Logs.String(), "never-seen-user", "the token's claims are not logged")

	// A user logged out after the token was issued: only the last check fails.
	env.FundedUser("acme", "logged-out", "SG", 0)
	old := env.Token("acme", "logged-out", map[string]any{"iat": env.Now().Add(-time.Minute).Unix()})
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodPost, "/integrations/users/logged-out/logout", nil).StatusCode)
	r := verify(old)
	require.Equal(t, "TOKEN_REVOKED", r.Code)
	st := status(r)
	require.Equal(t, "pass", st["subject"])
	require.Equal(t, "fail", st["user"])
}

// TestConsumerJWKSToggle: a JWKS URL set over REST verifies its published
// keys; switched off, it keeps the URL and verifies nothing; on again, it
// verifies.
func TestConsumerJWKSToggle(t *testing.T) {
	t.Parallel()
	env := apptest.New(t) // development: http:// JWKS URLs are accepted
	srv := newJWKSServer(t)
	k := testRSAKey(t, 0)
	srv.set("ok", rsaJWK("pub-1", &k.PublicKey))
	token := sign(t, jwt.SigningMethodRS256, k, map[string]any{"kid": "pub-1"},
		map[string]any{"iss": demo.Acme.Issuer, "sub": "jwks-toggle", "exp": env.Now().Add(time.Hour).Unix()})
	put := func(enabled bool) {
		res := env.PartnerJSON("acme", http.MethodPut, "/integrations/consumer-jwks", map[string]any{"url": srv.URL, "description": "IdP", "enabled": enabled})
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	}
	put(true)
	require.Equal(t, http.StatusOK, me(env, "Authorization", token).StatusCode)
	put(false)
	res := me(env, "Authorization", token)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "TOKEN_INVALID", res.Code())
	put(true)
	require.Equal(t, http.StatusOK, me(env, "Authorization", token).StatusCode)
}

// TestAllowedOriginsRoute: the partner sets its allowed origins over REST;
// a list that would refuse the address of the request itself is refused
// (ALLOWED_ORIGINS_LOCKOUT) and changes nothing; bad entries are refused.
func TestAllowedOriginsRoute(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	get := func() []any {
		res := env.Partner("acme", http.MethodGet, "/integrations/allowed-origins", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		return res.JSON(t)["allowedOrigins"].([]any)
	}
	require.Empty(t, get())
	before := dbtest.Snapshot(t, env.DB.Bun)
	for name, c := range map[string]struct {
		list   any
		status int
		code   string
	}{
		"locks the caller out": {[]string{"203.0.113.7"}, 409, "ALLOWED_ORIGINS_LOCKOUT"},
		"not an origin":        {[]string{"127.0.0.1", "not a host!"}, 400, "INVALID_FIELD"},
		"missing":              {nil, 400, "MISSING_FIELD"},
	} {
		body := map[string]any{}
		if c.list != nil {
			body["allowedOrigins"] = c.list
		}
		res := env.PartnerJSON("acme", http.MethodPut, "/integrations/allowed-origins", body)
		require.Equal(t, c.status, res.StatusCode, "%s: %s", name, res.Body)
		require.Equal(t, c.code, res.Code(), name)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))

	res := env.PartnerJSON("acme", http.MethodPut, "/integrations/allowed-origins", map[string]any{"allowedOrigins": []string{"203.0.113.7", "127.0.0.0/8"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, []any{"203.0.113.7", "127.0.0.0/8"}, get())
	res = env.PartnerJSON("acme", http.MethodPut, "/integrations/allowed-origins", map[string]any{"allowedOrigins": []string{}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Empty(t, get())
}
