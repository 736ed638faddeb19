package httpserver_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestControlCharactersAreRefusedAtTheEdges: a NUL or another control
// character in a path segment, a query value or a GraphQL variable is a
// 400 INVALID_FIELD, never a lookup of a silently stripped value or a 500.
func TestControlCharactersAreRefusedAtTheEdges(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.FundedUser("acme", "ab", "SG", 10)
	before := dbtest.Snapshot(t, env.DB.Bun)

	for _, path := range []string{
		"/integrations/users/a%00b", // bun dropped the NUL: this found user "ab"
		"/integrations/users/a%0Ab",
		"/integrations/users/a%C2%85b",
		"/integrations/users/a%FFb",
		"/integrations/users?cursor=%00",
		"/integrations/users?x%00=1",
	} {
		res := env.Partner("acme", http.MethodGet, path, nil)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", path, res.Body)
		require.Equal(t, "INVALID_FIELD", res.Code(), path)
	}

	token := env.Token("acme", "ab", nil)
	res := env.GraphQL(token, `query($s: String) { catalog(search: $s) { edges { node { id } } } }`, map[string]any{"s": "x\x00"})
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Equal(t, "INVALID_FIELD", res.ErrorCode())
	// A control character written in the document itself reaches the
	// domain check.
	res = env.GraphQL(token, `{ catalog(search: "x\u0000") { edges { node { id } } } }`, nil)
	require.Equal(t, "INVALID_FIELD", res.ErrorCode(), "%+v", res.Errors)
	// A lookup key with a NUL never matches the value without it.
	res = env.GraphQL("", `{ program(partnerSlug: "ac\u0000me") { name } }`, nil)
	require.Equal(t, "NOT_FOUND", res.ErrorCode(), "%+v", res.Errors)
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
}
