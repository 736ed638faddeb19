package export_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestExportCarriesTier: each exported user carries their tier code, and a
// tier change without a ledger entry (a replaced list moving the user
// down) exports the user again with the new tier.
func TestExportCarriesTier(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	put := func(body string) {
		res := env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(body))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	}
	put(`{"tiers":[{"code":"member","name":"Member"},{"code":"silver","name":"Silver","threshold":1000}]}`)
	res := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"ann","action":"purchase","points":1000,"createUser":true}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	info := env.Partner("acme", http.MethodGet, "/integrations/users/ann", nil)
	require.Equal(t, http.StatusOK, info.StatusCode, "%s", info.Body)
	require.Equal(t, "silver", info.JSON(t)["tier"])
	var ann string
	require.NoError(t, json.Unmarshal(res.Body, &struct {
		UserID *string `json:"userId"`
	}{&ann}))

	tiers := func(cursor string) (map[string]any, string) {
		env.WaitExportable()
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res := env.Partner("acme", http.MethodGet, "/integrations/exports/users?"+q.Encode(), nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		out := map[string]any{}
		next := ""
		for _, l := range strings.Split(strings.TrimSpace(string(res.Body)), "\n") {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &m))
			if c, ok := m["cursor"].(string); ok {
				next = c
				continue
			}
			out[m["userId"].(string)] = m["tier"]
		}
		return out, next
	}
	got, cursor := tiers("")
	require.Equal(t, "silver", got[ann], "%v", got)

	put(`{"tiers":[{"code":"member","name":"Member"},{"code":"gold","name":"Gold","threshold":5000}]}`)
	info = env.Partner("acme", http.MethodGet, "/integrations/users/ann", nil)
	require.Equal(t, "member", info.JSON(t)["tier"])
	got, _ = tiers(cursor)
	require.Equal(t, map[string]any{ann: "member"}, got)
}
