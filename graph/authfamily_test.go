package graph_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestConsumerAuthErrorsShareOneFamily: every consumer auth failure carries
// extensions.family UNAUTHENTICATED and a machine-readable authReason
// (missing, invalid, expired, revoked, anonymised), next to its unchanged
// code, so a client library refreshes or signs out by testing one member.
func TestConsumerAuthErrorsShareOneFamily(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	for _, ext := range []string{"fam-revoked", "fam-anon"} {
		env.FundedUser("acme", ext, "SG", 10)
	}
	revoked := env.Token("acme", "fam-revoked", nil)
	anonOld := env.Token("acme", "fam-anon", nil)
	env.Clock.Advance(2 * time.Second)
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodPost, "/integrations/users/fam-revoked/logout", nil).StatusCode)
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/fam-anon", nil).StatusCode)
	env.Clock.Advance(2 * time.Second)
	anonymised := env.Token("acme", "fam-anon", nil)
	expired := env.Token("acme", "fam-x", map[string]any{"iat": env.Now().Add(-2 * time.Hour).Unix(), "exp": env.Now().Add(-time.Hour).Unix()})

	for _, c := range []struct{ name, token, code, reason string }{
		{"no token", "", "UNAUTHENTICATED", "missing"},
		{"garbage", "not-a-jwt", "TOKEN_INVALID", "invalid"},
		{"expired", expired, "TOKEN_EXPIRED", "expired"},
		{"logged out", revoked, "TOKEN_REVOKED", "revoked"},
		{"issued before anonymisation", anonOld, "USER_ANONYMISED", "anonymised"},
		{"anonymised", anonymised, "USER_ANONYMISED", "anonymised"},
	} {
		res := env.GraphQL(c.token, `{ me { id } }`, nil)
		require.Len(t, res.Errors, 1, c.name)
		ext := res.Errors[0].Extensions
		require.Equal(t, c.code, ext["code"], c.name)
		require.Equal(t, "UNAUTHENTICATED", ext["family"], c.name)
		require.Equal(t, c.reason, ext["authReason"], c.name)
	}

	// Other errors are outside the family.
	res := env.GraphQL(env.Token("acme", "fam-other", nil), `{ vouchers(first: 1000) { pageInfo { hasNextPage } } }`, nil)
	require.Equal(t, "INVALID_FIELD", res.ErrorCode())
	require.NotContains(t, res.Errors[0].Extensions, "family")
}

// TestRESTConsumerAuthErrorsShareOneFamily: the consumer REST routes (/me)
// carry the same family and authReason in their problem documents; partner
// authentication failures do not (they are no consumer's session).
func TestRESTConsumerAuthErrorsShareOneFamily(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	expired := env.Token("acme", "fam-rest", map[string]any{"iat": env.Now().Add(-2 * time.Hour).Unix(), "exp": env.Now().Add(-time.Hour).Unix()})
	for token, reason := range map[string]string{"": "missing", "not-a-jwt": "invalid", expired: "expired"} {
		m := env.Consumer(token, http.MethodGet, "/me", nil).JSON(t)
		require.Equal(t, "UNAUTHENTICATED", m["family"], reason)
		require.Equal(t, reason, m["authReason"])
	}
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+"/integrations/program", nil)
	require.NoError(t, err)
	res := env.Do(req)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.NotContains(t, res.JSON(t), "family")
}
