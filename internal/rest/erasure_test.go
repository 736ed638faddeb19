package rest_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestDeletedUsersOldTokensNeverWorkAgain: a consumer token issued before
// an anonymisation, an erasure or deleteMe is refused for good: after the
// partner revives the user with POST /integrations/users, and after an
// erasure it does not re-create the user from its claims. A token minted
// after the deletion (a second later: iat has one-second resolution) works.
func TestDeletedUsersOldTokensNeverWorkAgain(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	gqlDelete := func(mode string) func(t *testing.T, ext, tok string) {
		return func(t *testing.T, ext, tok string) {
			q := `mutation { deleteMe }`
			if mode != "" {
				q = `mutation { deleteMe(mode: ` + mode + `) }`
			}
			res := env.GraphQL(tok, q, nil)
			require.Empty(t, res.Errors, "%s", res.Data)
			require.JSONEq(t, `{"deleteMe":true}`, string(res.Data))
		}
	}
	restDelete := func(query string) func(t *testing.T, ext, tok string) {
		return func(t *testing.T, ext, tok string) {
			res := env.Partner("acme", http.MethodDelete, "/integrations/users/"+ext+query, nil)
			require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
		}
	}
	cases := []struct {
		name   string
		ext    string
		delete func(t *testing.T, ext, tok string)
		erased bool
	}{
		{"partner anonymises", "old-tok-anon@example.com", restDelete(""), false},
		{"partner erases", "old-tok-erase@example.com", restDelete("?mode=erase"), true},
		{"deleteMe", "old-tok-me@example.com", gqlDelete(""), false},
		{"deleteMe ANONYMISE", "old-tok-me-anon@example.com", gqlDelete("ANONYMISE"), false},
		{"deleteMe ERASE", "old-tok-me-erase@example.com", gqlDelete("ERASE"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := map[string]any{"email": c.ext, "displayName": "Old Token"}
			old := env.Token("acme", c.ext, claims)
			require.Equal(t, http.StatusOK, env.Consumer(old, http.MethodGet, "/me", nil).StatusCode)
			env.Clock.Advance(3 * time.Second)
			c.delete(t, c.ext, old)
			sameSecond := env.Token("acme", c.ext, claims)

			if c.erased {
				// A still-valid token must not re-create the user.
				for _, tok := range []string{old, sameSecond} {
					r := env.Consumer(tok, http.MethodGet, "/me", nil)
					require.Equal(t, http.StatusUnauthorized, r.StatusCode, "%s", r.Body)
					require.Equal(t, "TOKEN_REVOKED", r.Code())
					require.Equal(t, "TOKEN_REVOKED", env.GraphQL(tok, `{ me { id } }`, nil).ErrorCode())
				}
				// A token without iat counts from exp minus the maximum
				// lifetime, which predates the erasure: refused too.
				noIat := env.Token("acme", c.ext, map[string]any{"email": c.ext, "iat": nil})
				require.Equal(t, "TOKEN_REVOKED", env.Consumer(noIat, http.MethodGet, "/me", nil).Code())
				require.Equal(t, "USER_NOT_FOUND", env.Partner("acme", http.MethodGet, "/integrations/users/"+c.ext, nil).Code(),
					"the refused tokens did not re-create the user")
			}

			// The partner revives (or re-creates) the user.
			body, _ := json.Marshal(map[string]any{"externalUserId": c.ext, "email": c.ext})
			res := env.Partner("acme", http.MethodPost, "/integrations/users", body)
			require.Contains(t, []int{http.StatusOK, http.StatusCreated}, res.StatusCode, "%s", res.Body)
			for _, tok := range []string{old, sameSecond} {
				r := env.Consumer(tok, http.MethodGet, "/me", nil)
				require.Equal(t, http.StatusUnauthorized, r.StatusCode, "%s", r.Body)
				require.Equal(t, "TOKEN_REVOKED", r.Code())
			}

			env.Clock.Advance(time.Second)
			fresh := env.Token("acme", c.ext, claims)
			r := env.Consumer(fresh, http.MethodGet, "/me", nil)
			require.Equal(t, http.StatusOK, r.StatusCode, "%s", r.Body)
			require.Equal(t, res.JSON(t)["userId"], r.JSON(t)["id"])
			require.Equal(t, "TOKEN_REVOKED", env.Consumer(old, http.MethodGet, "/me", nil).Code(), "still refused")
		})
	}
}

// TestEndpointsSubscribeToUserErased: user.erased is an event type the API
// accepts and documents (the OpenAPI contract checks the exchange).
func TestEndpointsSubscribeToUserErased(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints", []byte(`{"url":"http://127.0.0.1:9/hook","eventTypes":["user.erased"]}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, []any{"user.erased"}, res.JSON(t)["eventTypes"])
}
