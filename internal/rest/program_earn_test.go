package rest_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestEarnAppliesCampaigns: an earn of the partner API goes through the
// campaigns wired into the earn pipeline (app.NewServices): its answer and
// its history row carry the campaign's step, the budget is charged by the
// earn and only up to what is left, and a dry run shows the step without
// charging anything.
func TestEarnAppliesCampaigns(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPut, "/integrations/earning-rules/purchase", []byte(`{"name":"Purchase","points":1,"pointsPerAmount":100}`))
	require.Less(t, res.StatusCode, 300, "%s", res.Body)
	res = env.Partner("acme", http.MethodPut, "/integrations/campaigns/double", []byte(`{"name":"Double points","actions":["purchase"],
		"multiplier":2,"condition":"has(earn.amount) && earn.amount >= 1000","budget":30}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodPut, "/integrations/campaigns/welcome", []byte(`{"name":"Welcome bonus","bonus":5,"perUserCap":5}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	earn := func(path, ref string, amount int) map[string]any {
		res := env.PartnerJSON("acme", http.MethodPost, path, map[string]any{
			"externalUserId": "u1", "action": "purchase", "amount": amount, "reference": ref, "createUser": true})
		require.Less(t, res.StatusCode, 300, "%s", res.Body)
		return res.JSON(t)
	}
	steps := func(got map[string]any) map[string]float64 {
		out := map[string]float64{}
		for _, s := range got["breakdown"].(map[string]any)["steps"].([]any) {
			st := s.(map[string]any)
			out[st["code"].(string)] = st["points"].(float64)
		}
		return out
	}

	// Dry run: 25.00 earns 25, doubled (+25) and the welcome bonus (+5).
	dry := earn("/integrations/actions?dryRun=true", "o-1", 2500)
	require.Equal(t, float64(55), dry["points"])
	require.Equal(t, map[string]float64{"double": 25, "welcome": 5}, steps(dry))

	// The real earn charges both; the next one gets only what is left of
	// the budget (30 - 25 = 5) and no second welcome bonus (cap 5).
	got := earn("/integrations/actions", "o-1", 2500)
	require.Equal(t, float64(55), got["points"])
	require.Equal(t, map[string]float64{"double": 25, "welcome": 5}, steps(got))
	got = earn("/integrations/actions", "o-2", 2000)
	require.Equal(t, float64(25), got["points"])
	require.Equal(t, map[string]float64{"double": 5}, steps(got))
	// Below the condition's amount: the base only.
	got = earn("/integrations/actions", "o-3", 900)
	require.Equal(t, float64(9), got["points"])
	require.Empty(t, steps(got))

	res = env.Partner("acme", http.MethodGet, "/integrations/campaigns/double", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, float64(30), res.JSON(t)["spent"])
	require.Equal(t, float64(0), res.JSON(t)["remaining"])
}

// TestEarnWorkedExample is docs/program.md's worked example end to end: a
// gold tier (x1.5) and a double-points weekend for gold members in
// Singapore with a budget. A Singapore member earns the base; once gold,
// the tier multiplies the rule's points and the campaign doubles that;
// a gold member elsewhere gets the tier only. Every step is in the
// breakdown, and a user of another partner is untouched by any of it.
func TestEarnWorkedExample(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	put := func(path, body string) {
		t.Helper()
		res := env.Partner("acme", http.MethodPut, path, []byte(body))
		require.Less(t, res.StatusCode, 300, "%s", res.Body)
	}
	put("/integrations/earning-rules/purchase", `{"name":"Purchase","points":1,"pointsPerAmount":100}`)
	put("/integrations/tiers", `{"tiers":[{"code":"member","name":"Member"},{"code":"gold","name":"Gold","threshold":100,"multiplier":1.5}]}`)
	put("/integrations/campaigns/double-weekend", `{"name":"Double points weekend","actions":["purchase"],"multiplier":2,
		"condition":"user.tier == 'gold' && user.country == 'SG'","budget":10000,"perUserCap":500}`)
	for _, u := range [][2]string{{"sg", "SG"}, {"fr", "FR"}} {
		res := env.PartnerJSON("acme", http.MethodPost, "/integrations/users", map[string]any{"externalUserId": u[0], "countryCode": u[1]})
		require.Less(t, res.StatusCode, 300, "%s", res.Body)
	}
	earn := func(user, ref string, amount int) (float64, []map[string]any) {
		t.Helper()
		res := env.PartnerJSON("acme", http.MethodPost, "/integrations/actions", map[string]any{
			"externalUserId": user, "action": "purchase", "amount": amount, "reference": ref})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		got := res.JSON(t)
		var steps []map[string]any
		for _, s := range got["breakdown"].(map[string]any)["steps"].([]any) {
			st := s.(map[string]any)
			steps = append(steps, map[string]any{"kind": st["kind"], "code": st["code"], "points": st["points"]})
		}
		return got["points"].(float64), steps
	}

	// 150.00 as a member: 150 points, no step; it crosses gold's 100.
	points, steps := earn("sg", "sg-1", 15000)
	require.Equal(t, float64(150), points)
	require.Empty(t, steps)
	// 45.00 as gold in SG: 45, x1.5 = 67 (+22), doubled by the campaign (+67).
	points, steps = earn("sg", "sg-2", 4500)
	require.Equal(t, float64(134), points)
	require.Equal(t, []map[string]any{
		{"kind": "tier", "code": "gold", "points": float64(22)},
		{"kind": "campaign", "code": "double-weekend", "points": float64(67)},
	}, steps)
	// Gold in France: the tier only.
	_, _ = earn("fr", "fr-1", 15000)
	points, steps = earn("fr", "fr-2", 4500)
	require.Equal(t, float64(67), points)
	require.Equal(t, []map[string]any{{"kind": "tier", "code": "gold", "points": float64(22)}}, steps)
}
