package rest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/demo"
)

// sandboxToken mints a token for acme's sandbox: the demo RSA key under
// the sandbox's kid and no issuer (acme's issuer resolves to live acme).
func sandboxToken(t *testing.T, env *apptest.Env, sub string) string {
	now := env.Now()
	return apptest.MintRS256(t, env.PrivateKey("acme"), map[string]any{"kid": demo.AcmeSandbox.KeyID},
		map[string]any{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
}

// TestSandboxAnswersAreMarked: every answer to a sandbox credential or a
// sandbox user's token carries Perks-Environment: sandbox (errors too),
// GraphQL answers extensions.environment as well, and live answers carry
// neither.
func TestSandboxAnswersAreMarked(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	for _, c := range []struct {
		slug string
		want string
	}{{"acme", ""}, {"acme-sandbox", "sandbox"}} {
		res := env.Partner(c.slug, http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"u1"}`))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		require.Equal(t, c.want, res.Header.Get("Perks-Environment"), c.slug)
		res = env.Partner(c.slug, http.MethodGet, "/integrations/users/nobody", nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, c.want, res.Header.Get("Perks-Environment"), "%s error", c.slug)
		res = env.Partner(c.slug, http.MethodGet, "/integrations/exports/users", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		require.Equal(t, c.want, res.Header.Get("Perks-Environment"), "%s export", c.slug)
	}

	const q = `query { me { id } }`
	live := env.GraphQL(env.Token("acme", "u1", nil), q, nil)
	require.Empty(t, live.Errors)
	sb := env.GraphQL(sandboxToken(t, env, "u1"), q, nil)
	require.Empty(t, sb.Errors)
	require.NotEqual(t, string(live.Data), string(sb.Data), "the sandbox's u1 is another user")

	raw := func(tok string) *apptest.Response {
		req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", readCloser([]byte(`{"query":"`+q+`"}`)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		return env.Do(req)
	}
	res := raw(sandboxToken(t, env, "u1"))
	require.Equal(t, "sandbox", res.Header.Get("Perks-Environment"))
	require.Equal(t, map[string]any{"environment": "sandbox"}, res.JSON(t)["extensions"])
	res = raw(env.Token("acme", "u1", nil))
	require.Empty(t, res.Header.Get("Perks-Environment"))
	require.NotContains(t, res.JSON(t), "extensions")

	// The public program query names the sandbox by slug: marked too.
	prog := func(slug string) map[string]any {
		req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", readCloser([]byte(`{"query":"query { program(partnerSlug: \"`+slug+`\") { name } }"}`)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		return env.Do(req).JSON(t)
	}
	require.Equal(t, map[string]any{"environment": "sandbox"}, prog("acme-sandbox")["extensions"])
	require.NotContains(t, prog("acme"), "extensions")

	// /me (REST, consumer token).
	res = env.Consumer(sandboxToken(t, env, "u1"), http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "sandbox", res.Header.Get("Perks-Environment"))
	require.Equal(t, "acme-sandbox", res.JSON(t)["partner"].(map[string]any)["slug"])
}

// TestSandboxIsolation: the sandbox and its live partner never see each
// other's data, whichever credential asks.
func TestSandboxIsolation(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"live-only"}`)).StatusCode)
	require.Equal(t, http.StatusCreated, env.Partner("acme-sandbox", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"sandbox-only"}`)).StatusCode)
	res := env.PartnerJSON("acme-sandbox", http.MethodPost, "/integrations/users/sandbox-only/adjustments", map[string]any{"points": 500, "reason": "test"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	require.Equal(t, "USER_NOT_FOUND", env.Partner("acme", http.MethodGet, "/integrations/users/sandbox-only", nil).Code())
	require.Equal(t, "USER_NOT_FOUND", env.Partner("acme-sandbox", http.MethodGet, "/integrations/users/live-only", nil).Code())
	for _, c := range []struct{ slug, want, not string }{
		{"acme", "live-only", "sandbox-only"}, {"acme-sandbox", "sandbox-only", "live-only"},
	} {
		res := env.Partner(c.slug, http.MethodGet, "/integrations/users", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, string(res.Body), c.want)
		require.NotContains(t, string(res.Body), c.not)
		res = env.Partner(c.slug, http.MethodGet, "/integrations/exports/users", nil)
		require.NotContains(t, string(res.Body), c.not)
	}
	// The sandbox's points never count in live reports.
	res = env.Partner("acme-sandbox", http.MethodGet, "/integrations/reports/liability", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Contains(t, string(res.Body), `"outstanding":500`)
	res = env.Partner("acme", http.MethodGet, "/integrations/reports/liability", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.NotContains(t, string(res.Body), `"outstanding":500`)

	// A sandbox secret does not sign for the live slug, nor the live
	// secret for the sandbox's.
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+"/integrations/users/live-only", nil)
	require.NoError(t, err)
	req.Header.Set("X-Partner-Slug", "acme")
	req.Header.Set("X-Signature", env.SignV1(demo.AcmeSandbox.HMACSecret, nil))
	require.Equal(t, http.StatusUnauthorized, env.Do(req).StatusCode)
	req.Header.Set("X-Partner-Slug", "acme-sandbox")
	req.Header.Set("X-Signature", env.SignV1(demo.Acme.HMACSecret, nil))
	require.Equal(t, http.StatusUnauthorized, env.Do(req).StatusCode)
}

// TestSandboxLifecycle: create (secret shown once, idempotent), show from
// either side, reset (data gone, credentials kept, live untouched).
func TestSandboxLifecycle(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	require.Equal(t, "NOT_FOUND", env.Partner("globex", http.MethodGet, "/integrations/sandbox", nil).Code())
	res := env.Partner("globex", http.MethodPost, "/integrations/sandbox", nil, map[string]string{"Idempotency-Key": "sbx-1"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	created := res.JSON(t)
	require.Equal(t, "globex-sandbox", created["slug"])
	require.Equal(t, "sandbox", created["environment"])
	require.Equal(t, env.Globex.Partner.ID.String(), created["livePartnerId"])
	secret, _ := created["hmacSecret"].(string)
	require.NotEmpty(t, secret)
	require.Empty(t, res.Header.Get("Perks-Environment"), "asked by live globex")

	// The retry gets the answer without the secret; a new call, 200.
	res = env.Partner("globex", http.MethodPost, "/integrations/sandbox", nil, map[string]string{"Idempotency-Key": "sbx-1"})
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.NotContains(t, string(res.Body), secret)
	require.NotEmpty(t, res.JSON(t)["secretNote"])
	res = env.Partner("globex", http.MethodPost, "/integrations/sandbox", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, false, res.JSON(t)["created"])
	require.NotContains(t, res.JSON(t), "hmacSecret")

	// The shown secret signs for the sandbox.
	signed := func(method, path string, body []byte) *apptest.Response {
		req, err := http.NewRequest(method, env.Server.URL+path, readCloser(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Partner-Slug", "globex-sandbox")
		req.Header.Set("X-Signature", env.SignV1(secret, body))
		return env.Do(req)
	}
	res = signed(http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"tester"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, "sandbox", res.Header.Get("Perks-Environment"))
	res = signed(http.MethodGet, "/integrations/sandbox", nil)
	require.Equal(t, created["id"], res.JSON(t)["id"], "the sandbox's own view")
	require.Equal(t, http.StatusCreated, env.Partner("globex", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"tester"}`)).StatusCode)

	// Reset from live: the sandbox's user is gone, its credential works,
	// live's user of the same external id stays.
	res = env.Partner("globex", http.MethodPost, "/integrations/sandbox/reset", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.EqualValues(t, 1, res.JSON(t)["deleted"].(map[string]any)["users"])
	res = signed(http.MethodGet, "/integrations/users/tester", nil)
	require.Equal(t, "USER_NOT_FOUND", res.Code(), "%s", res.Body)
	require.Equal(t, http.StatusOK, env.Partner("globex", http.MethodGet, "/integrations/users/tester", nil).StatusCode)

	// Reset from the sandbox itself works the same way.
	require.Equal(t, http.StatusCreated, signed(http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"again"}`)).StatusCode)
	res = signed(http.MethodPost, "/integrations/sandbox/reset", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, "USER_NOT_FOUND", signed(http.MethodGet, "/integrations/users/again", nil).Code())
}
