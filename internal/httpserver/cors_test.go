package httpserver_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/partner"
)

// TestGraphQLCORS: a page on an origin a partner lists may call /graphql
// from a browser: the preflight answers with that exact origin (never "*",
// never credentials) and a Max-Age so browsers cache it, and the POST's
// answer is readable. An unlisted origin's preflight is refused with
// ORIGIN_NOT_ALLOWED and its answers carry no CORS header. The list is
// cached for CORSTTL.
func TestGraphQLCORS(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const allowed, other = "https://app.acme.example.test", "https://evil.example.test"
	setOrigins := func(list ...string) {
		_, err := env.App.Partners.UpdateControls(context.Background(), env.DB.Bun, env.Acme.Partner.ID, partner.Controls{CORSOrigins: &list})
		require.NoError(t, err)
	}
	setOrigins("https://APP.acme.example.test:443/")

	preflight := func(origin string) *apptest.Response {
		req, err := http.NewRequest(http.MethodOptions, env.Server.URL+"/graphql", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		return env.Do(req)
	}
	post := func(origin string) *apptest.Response {
		req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", bytes.NewReader([]byte(`{"query":"{ me { id } }"}`)))
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+env.Token("acme", "cors-user", nil))
		return env.Do(req)
	}

	ok := preflight(allowed)
	require.Equal(t, http.StatusNoContent, ok.StatusCode, "%s", ok.Body)
	require.Equal(t, allowed, ok.Header.Get("Access-Control-Allow-Origin"), "the exact origin")
	require.Equal(t, "POST", ok.Header.Get("Access-Control-Allow-Methods"))
	require.Contains(t, ok.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	require.Contains(t, ok.Header.Get("Access-Control-Allow-Headers"), "Content-Type")
	require.Equal(t, "7200", ok.Header.Get("Access-Control-Max-Age"))
	require.Empty(t, ok.Header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, ok.Header.Values("Vary"), "Origin")

	refused := preflight(other)
	require.Equal(t, http.StatusForbidden, refused.StatusCode)
	require.Equal(t, "ORIGIN_NOT_ALLOWED", refused.Code())
	require.Empty(t, refused.Header.Get("Access-Control-Allow-Origin"))
	require.Empty(t, refused.Header.Get("Access-Control-Max-Age"))
	require.Equal(t, http.StatusForbidden, preflight("https://app.acme.example.test.evil.example.test").StatusCode, "exact, not a prefix")
	require.Equal(t, http.StatusForbidden, preflight("http://app.acme.example.test").StatusCode, "the scheme is part of the origin")

	res := post(allowed)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, allowed, res.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, res.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id")
	require.Contains(t, string(res.Body), `"me"`)
	res = post(other)
	require.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), "the browser hides the answer from the page")

	// A removed origin is refused once the cached list expires.
	setOrigins()
	require.Equal(t, http.StatusNoContent, preflight(allowed).StatusCode, "cached")
	env.Clock.Advance(31 * time.Second)
	require.Equal(t, http.StatusForbidden, preflight(allowed).StatusCode)

	// A disabled partner's origins are not allowed.
	setOrigins(allowed)
	disabled := false
	_, err := env.App.Partners.UpdateControls(context.Background(), env.DB.Bun, env.Acme.Partner.ID, partner.Controls{APIEnabled: &disabled})
	require.NoError(t, err)
	env.Clock.Advance(31 * time.Second)
	require.Equal(t, http.StatusForbidden, preflight(allowed).StatusCode)
}
