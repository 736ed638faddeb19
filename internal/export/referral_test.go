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

// TestExportCarriesReferrals: each exported user carries their referral
// code and who referred them; the referrer's line lists the referrals
// that changed in the range, and a referral's status change (qualified by
// the friend's purchase) exports the referrer again.
func TestExportCarriesReferrals(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/referral-policy", []byte(`{"qualifyAction":"purchase","referrerPoints":50,"refereePoints":10}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	upsert := func(body string) string {
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(body))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		return res.JSON(t)["userId"].(string)
	}
	joe := upsert(`{"externalUserId":"joe","referralCode":"JOETESTERSON"}`)
	amy := upsert(`{"externalUserId":"amy","referredBy":"joetesterson"}`)

	export := func(cursor string) (map[string]map[string]any, string) {
		env.WaitExportable()
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res := env.Partner("acme", http.MethodGet, "/integrations/exports/users?"+q.Encode(), nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		out := map[string]map[string]any{}
		next := ""
		for _, l := range strings.Split(strings.TrimSpace(string(res.Body)), "\n") {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &m))
			if c, ok := m["cursor"].(string); ok {
				next = c
				continue
			}
			out[m["userId"].(string)] = m
		}
		return out, next
	}
	got, cursor := export("")
	require.Equal(t, "JOETESTERSON", got[joe]["referralCode"])
	require.Nil(t, got[joe]["referredBy"])
	require.Equal(t, "JOETESTERSON", got[amy]["referredBy"])
	refs := got[joe]["referrals"].([]any)
	require.Len(t, refs, 1)
	require.Equal(t, "pending", refs[0].(map[string]any)["status"])
	require.Equal(t, amy, refs[0].(map[string]any)["refereeUserId"])

	res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"amy","action":"purchase","points":100}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got, _ = export(cursor)
	require.Contains(t, got, joe, "the referral's change exports the referrer")
	refs = got[joe]["referrals"].([]any)
	require.Len(t, refs, 1)
	require.Equal(t, "rewarded", refs[0].(map[string]any)["status"])
	require.EqualValues(t, 50, refs[0].(map[string]any)["referrerPoints"])
}
