package portal_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/credential"
)

func rsaPublicPEM(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestConsumerAuthPage: a developer adds seed 002's public key in the tab
// (description, enabled toggle) and a token it signs verifies; the token
// tester names the failing check without storing or logging the token;
// disabling the key stops verification; an HS256 secret is generated and
// shown once; a manager and a viewer are refused every change by direct
// POST; a key of another partner is not found.
func TestConsumerAuthPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dev, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	res := dev.post("/portal/consumer-auth/keys", url.Values{"csrf": {dev.csrfOf(t)}, "kid": {"widget"}, "description": {"widget key"},
		"material": {"pem"}, "publicKey": {rsaPublicPEM(t, key)}, "enabled": {"on"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	require.Contains(t, res.Body, "<code>widget</code></td><td>RS256</td><td>widget key</td><td>on</td>")
	token := func(sub string, exp time.Time) string {
		return apptest.MintRS256(t, key, map[string]any{"kid": "widget"}, map[string]any{"sub": sub, "exp": exp.Unix()})
	}
	good := token("seed-002-user", b.env.Now().Add(time.Hour))
	require.Equal(t, http.StatusOK, b.env.Consumer(good, http.MethodGet, "/me", nil).StatusCode)

	// The tester: a valid token, then an expired one.
	res = dev.post("/portal/consumer-auth/test", url.Values{"csrf": {dev.csrfOf(t)}, "token": {good}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Contains(t, res.Body, `id="token-verdict">valid<`)
	require.NotContains(t, res.Body, good, "the token is not echoed back")
	expired := token("seed-002-user", b.env.Now().Add(-time.Hour))
	res = dev.post("/portal/consumer-auth/test", url.Values{"csrf": {dev.csrfOf(t)}, "token": {expired}})
	require.Contains(t, res.Body, `id="token-verdict">refused (TOKEN_EXPIRED, expired)<`)
	require.Regexp(t, `<tr id="check-signature" class="check-pass">`, res.Body)
	require.Regexp(t, `<tr id="check-time" class="check-fail">`, res.Body)
	require.Regexp(t, `<tr id="check-user" class="check-skipped">`, res.Body)
	require.NotContains(t, b.env.Logs.String(), expired)

	// Disabled, the key verifies nothing; the change is audited.
	res = dev.post("/portal/consumer-auth/keys/disable", url.Values{"csrf": {dev.csrfOf(t)}, "kid": {"widget"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, http.StatusUnauthorized, b.env.Consumer(token("seed-002-user", b.env.Now().Add(time.Hour)), http.MethodGet, "/me", nil).StatusCode)
	require.Equal(t, 1, b.env.Count("audit_log", "action = 'consumer_key.disable' AND before->>'enabled' = 'true' AND after->>'enabled' = 'false'"))

	// HS256, generated: shown once, never in the audit log.
	res = dev.post("/portal/consumer-auth/keys", url.Values{"csrf": {dev.csrfOf(t)}, "kid": {"IRacme"}, "material": {"generate"}, "enabled": {"on"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	secret := res.find(t, `<pre id="hs256-secret">([^<]+)</pre>`)
	require.NotContains(t, dev.get("/portal/consumer-auth").Body, secret)
	require.Zero(t, b.env.Count("audit_log", "position(? in coalesce(after::text, '')) > 0", secret))

	// Bad input: the page says what is wrong and nothing changes.
	before := b.env.Count("consumer_keys", "partner_id = ?", b.acme.ID)
	for name, form := range map[string]url.Values{
		"bad PEM":          {"kid": {"bad"}, "material": {"pem"}, "publicKey": {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}},
		"unknown alg":      {"kid": {"bad"}, "material": {"generate"}, "algorithm": {"HS512"}},
		"long description": {"kid": {"bad"}, "material": {"generate"}, "description": {strings.Repeat("d", 201)}},
		"existing kid":     {"kid": {"widget"}, "material": {"generate"}},
	} {
		form.Set("csrf", dev.csrfOf(t))
		res := dev.post("/portal/consumer-auth/keys", form)
		require.True(t, res.Status == http.StatusBadRequest || res.Status == http.StatusConflict, "%s: %d", name, res.Status)
		require.Contains(t, res.Body, `class="error"`, name)
	}
	b.env.App.Credentials.AllowHTTPJWKS = false
	res = dev.post("/portal/consumer-auth/jwks", url.Values{"csrf": {dev.csrfOf(t)}, "url": {"http://keys.acme.example/jwks.json"}, "enabled": {"on"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Equal(t, before, b.env.Count("consumer_keys", "partner_id = ?", b.acme.ID))
	require.Zero(t, b.env.Count("partners", "id = ? AND jwks_url IS NOT NULL", b.acme.ID))
	res = dev.post("/portal/consumer-auth/jwks", url.Values{"csrf": {dev.csrfOf(t)}, "url": {"https://keys.acme.example/jwks.json"}, "description": {"IdP"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("partners", "id = ? AND jwks_description = 'IdP' AND jwks_disabled", b.acme.ID), "unchecked: disabled")

	// Rotation: the new kid verifies, the old one is disabled.
	next, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	res = dev.post("/portal/consumer-auth/keys/enable", url.Values{"csrf": {dev.csrfOf(t)}, "kid": {"widget"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	res = dev.post("/portal/consumer-auth/keys/rotate", url.Values{"csrf": {dev.csrfOf(t)}, "oldKid": {"widget"}, "new-kid": {"widget-2"},
		"new-material": {"pem"}, "new-publicKey": {rsaPublicPEM(t, next)}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("consumer_keys", "partner_id = ? AND kid = 'widget' AND NOT enabled", b.acme.ID))
	require.Equal(t, 1, b.env.Count("consumer_keys", "partner_id = ? AND kid = 'widget-2' AND enabled AND description = 'widget key'", b.acme.ID))

	// Roles: the manager and the viewer see the page without forms, and
	// every change posted directly is refused.
	keys := b.env.Count("consumer_keys", "partner_id = ?", b.acme.ID)
	for _, role := range []string{account.RoleManager, account.RoleViewer} {
		br, _ := b.member(t, b.acme, role+"@acme.example", role)
		pg := br.get("/portal/consumer-auth")
		require.Equal(t, http.StatusOK, pg.Status, pg.Body)
		require.Contains(t, pg.Body, "widget-2")
		require.NotContains(t, pg.Body, `id="add-key"`)
		require.NotContains(t, pg.Body, `id="test-token"`)
		csrf := pg.csrf(t)
		for path, form := range map[string]url.Values{
			"/portal/consumer-auth/keys":         {"kid": {"sneaky"}, "material": {"generate"}},
			"/portal/consumer-auth/keys/disable": {"kid": {"widget-2"}},
			"/portal/consumer-auth/keys/rotate":  {"oldKid": {"widget-2"}, "new-kid": {"x"}, "new-material": {"generate"}},
			"/portal/consumer-auth/jwks":         {"url": {"https://evil.example/jwks"}},
			"/portal/consumer-auth/jwks/remove":  {},
			"/portal/consumer-auth/test":         {"token": {good}},
		} {
			form.Set("csrf", csrf)
			require.Equal(t, http.StatusForbidden, br.post(path, form).Status, "%s %s", role, path)
		}
	}
	require.Equal(t, keys, b.env.Count("consumer_keys", "partner_id = ?", b.acme.ID))
	require.Equal(t, 1, b.env.Count("consumer_keys", "partner_id = ? AND kid = 'widget-2' AND enabled", b.acme.ID))
	require.Equal(t, 1, b.env.Count("partners", "id = ? AND jwks_url = 'https://keys.acme.example/jwks.json'", b.acme.ID))

	// Another partner's owner finds no such key.
	gl, _ := b.member(t, b.globe, "owner@globex.example", account.RoleOwner)
	res = gl.post("/portal/consumer-auth/keys/disable", url.Values{"csrf": {gl.csrfOf(t)}, "kid": {"widget-2"}})
	require.Equal(t, http.StatusNotFound, res.Status, res.Body)
	require.NotContains(t, gl.get("/portal/consumer-auth").Body, "widget-2")
	require.Equal(t, 1, b.env.Count("consumer_keys", "partner_id = ? AND kid = 'widget-2' AND enabled", b.acme.ID))
}

// TestAPIAccessSecretsOriginsCallback: the API access page creates HMAC
// and request-JWT secrets (shown once, working at once), rotates one with
// an overlap, saves allowed origins (a bad entry changes nothing) and the
// callback URL with its event subscriptions as the partner's callback
// webhook endpoint, whose signing secret it shows once.
func TestAPIAccessSecretsOriginsCallback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dev, _ := b.member(t, b.acme, "dev@acme.example", account.RoleDeveloper)

	res := dev.post("/portal/api-access", url.Values{"csrf": {dev.csrfOf(t)}, "kind": {"hmac"}, "description": {"billing"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	secret := res.find(t, `<pre id="shared-secret">([^<]+)</pre>`)
	signed := func(secret string) int {
		req, err := http.NewRequest(http.MethodGet, b.env.Server.URL+"/integrations/credentials", nil)
		require.NoError(t, err)
		req.Header.Set("X-Partner-Slug", "acme")
		req.Header.Set("X-Signature", b.env.SignV1(secret, nil))
		return b.env.Do(req).StatusCode
	}
	require.Equal(t, http.StatusOK, signed(secret))
	require.NotContains(t, dev.get("/portal/api-access").Body, secret)

	res = dev.post("/portal/api-access", url.Values{"csrf": {dev.csrfOf(t)}, "kind": {"request_jwt"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	require.Equal(t, b.acme.ID.String(), res.find(t, `<code id="partner-id">([^<]+)</code>`))

	// Rotate the HMAC secret keeping the old one: both work.
	id := res.find(t, `(?s)<tr id="cred-([0-9a-f-]+)"><td>hmac</td><td>billing</td>`)
	res = dev.post("/portal/api-access/"+id+"/rotate", url.Values{"csrf": {dev.csrfOf(t)}, "keepOld": {"on"}})
	require.Equal(t, http.StatusCreated, res.Status, res.Body)
	next := res.find(t, `<pre id="shared-secret">([^<]+)</pre>`)
	require.Equal(t, http.StatusOK, signed(secret))
	require.Equal(t, http.StatusOK, signed(next))

	// Allowed origins.
	res = dev.post("/portal/api-access/origins", url.Values{"csrf": {dev.csrfOf(t)}, "allowedOrigins": {"203.0.113.7\nnot a host!"}})
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("partners", "id = ? AND allowed_origins = '{}'", b.acme.ID))
	res = dev.post("/portal/api-access/origins", url.Values{"csrf": {dev.csrfOf(t)}, "allowedOrigins": {"203.0.113.7\n127.0.0.1, 192.0.2.0/24"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, 1, b.env.Count("partners", "id = ? AND allowed_origins = '{203.0.113.7,127.0.0.1,192.0.2.0/24}'", b.acme.ID))
	require.Equal(t, http.StatusOK, signed(secret), "the test server calls from 127.0.0.1")

	// Callback URL: the partner's callback endpoint, its secret shown once.
	cb := credential.CallbackEndpointID(b.acme.ID)
	res = dev.post("/portal/api-access/callback", url.Values{"csrf": {dev.csrfOf(t)}, "url": {"http://127.0.0.1:9/callback"},
		"eventTypes": {"voucher.redeemed", "points.earned"}, "enabled": {"on"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	whsec := res.find(t, `<pre id="webhook-secret">([^<]+)</pre>`)
	require.True(t, strings.HasPrefix(whsec, "whsec_"))
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "partner_id = ? AND id = ? AND url = 'http://127.0.0.1:9/callback' AND enabled", b.acme.ID, cb))
	// Saved again: same endpoint, subscriptions replaced, no new secret.
	res = dev.post("/portal/api-access/callback", url.Values{"csrf": {dev.csrfOf(t)}, "url": {"http://127.0.0.1:9/callback2"}, "eventTypes": {"voucher.redeemed"}})
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.NotContains(t, res.Body, "webhook-secret")
	require.Contains(t, res.Body, `value="voucher.redeemed" id="ev-voucher.redeemed" checked`)
	require.Equal(t, 1, b.env.Count("webhook_endpoints", "partner_id = ? AND id = ? AND url = 'http://127.0.0.1:9/callback2' AND NOT enabled", b.acme.ID, cb))
	// The same endpoint over REST.
	rest := b.env.Partner("acme", http.MethodGet, "/integrations/webhook-endpoints/"+cb.String(), nil)
	require.Equal(t, http.StatusOK, rest.StatusCode, "%s", rest.Body)

	// No secret reached the audit log.
	for _, s := range []string{secret, next, whsec} {
		n := b.env.Count("audit_log", "position(? in coalesce(before::text, '') || coalesce(after::text, '')) > 0", s)
		require.Zero(t, n, "a secret in the audit log")
	}
	require.Equal(t, 1, b.env.Count("audit_log", "action = 'partner.allowed_origins'"))
}
