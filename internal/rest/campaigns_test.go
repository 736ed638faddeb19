package rest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/dbtest"
)

func putRuleOK(t *testing.T, env *apptest.Env, slug, code string) {
	t.Helper()
	res := env.Partner(slug, http.MethodPut, "/integrations/earning-rules/"+code, []byte(`{"name":"`+code+`","points":10}`))
	require.Less(t, res.StatusCode, 300, "%s", res.Body)
}

// TestCampaignsAPI: PUT creates (201) then replaces (200), GET one and the
// list answer it, DELETE removes it; another partner sees none of it.
func TestCampaignsAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	putRuleOK(t, env, "acme", "purchase")
	body := `{"name":"Double points weekend","from":"2026-12-04T16:00:00Z","until":"2026-12-06T16:00:00Z",
		"actions":["purchase"],"multiplier":2,"condition":"user.tier == 'gold' && user.country == 'SG'",
		"budget":10000,"perUserCap":500,"stacking":"bestOf"}`
	res := env.Partner("acme", http.MethodPut, "/integrations/campaigns/double-weekend", []byte(body))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, "double-weekend", got["code"])
	require.Equal(t, float64(2), got["multiplier"])
	require.Nil(t, got["bonus"])
	require.Equal(t, float64(10000), got["budget"])
	require.Equal(t, float64(10000), got["remaining"])
	require.Equal(t, float64(0), got["spent"])
	require.Equal(t, float64(500), got["perUserCap"])
	require.Equal(t, "bestOf", got["stacking"])
	require.Equal(t, true, got["enabled"])
	require.Equal(t, []any{"purchase"}, got["actions"])
	require.Equal(t, "2026-12-04T16:00:00Z", got["from"])

	res = env.Partner("acme", http.MethodGet, "/integrations/campaigns/double-weekend", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, got, res.JSON(t))

	// Replace means replace: a bonus, no window, all rules, additive.
	res = env.Partner("acme", http.MethodPut, "/integrations/campaigns/double-weekend", []byte(`{"name":"Bonus","bonus":50,"multiplier":null,"enabled":false}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	got = res.JSON(t)
	require.Nil(t, got["multiplier"])
	require.Equal(t, float64(50), got["bonus"])
	require.Nil(t, got["from"])
	require.Nil(t, got["budget"])
	require.Nil(t, got["remaining"])
	require.Equal(t, []any{}, got["actions"])
	require.Equal(t, "additive", got["stacking"])
	require.Equal(t, false, got["enabled"])
	require.Equal(t, float64(2), got["version"])

	res = env.Partner("acme", http.MethodPut, "/integrations/campaigns/fractional", []byte(`{"name":"x1.25","multiplier":1.25}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, float64(1.25), res.JSON(t)["multiplier"])

	res = env.Partner("acme", http.MethodGet, "/integrations/campaigns", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Len(t, res.JSON(t)["items"], 2)

	// Tenant isolation.
	res = env.Partner("globex", http.MethodGet, "/integrations/campaigns", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, []any{}, res.JSON(t)["items"])
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		res = env.Partner("globex", m, "/integrations/campaigns/double-weekend", nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode, "%s", res.Body)
		require.Equal(t, "NOT_FOUND", res.Code())
	}

	res = env.Partner("acme", http.MethodDelete, "/integrations/campaigns/double-weekend", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodGet, "/integrations/campaigns/double-weekend", nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode, "%s", res.Body)
}

// TestCampaignsAPIBadInput: one bad request per row, a 400 with a stable
// code and the field, and the database unchanged.
func TestCampaignsAPIBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	putRuleOK(t, env, "acme", "purchase")
	putRuleOK(t, env, "globex", "globex-only")
	cases := []struct {
		name, path, body string
		code, field      string
		detail           string
	}{
		{"no name", "/integrations/campaigns/c", `{"bonus":5}`, "MISSING_FIELD", "name", ""},
		{"bad code", "/integrations/campaigns/Bad!", `{"name":"x","bonus":5}`, "INVALID_FIELD", "code", ""},
		{"neither", "/integrations/campaigns/c", `{"name":"x"}`, "MISSING_FIELD", "multiplier", ""},
		{"both", "/integrations/campaigns/c", `{"name":"x","bonus":5,"multiplier":2}`, "INVALID_FIELD", "bonus", ""},
		{"multiplier string", "/integrations/campaigns/c", `{"name":"x","multiplier":"2"}`, "INVALID_FIELD", "multiplier", ""},
		{"multiplier 1", "/integrations/campaigns/c", `{"name":"x","multiplier":1}`, "INVALID_FIELD", "multiplier", ""},
		{"multiplier three decimals", "/integrations/campaigns/c", `{"name":"x","multiplier":1.255}`, "INVALID_FIELD", "multiplier", ""},
		{"multiplier exponent", "/integrations/campaigns/c", `{"name":"x","multiplier":2e0}`, "INVALID_FIELD", "multiplier", ""},
		{"bonus fraction", "/integrations/campaigns/c", `{"name":"x","bonus":1.5}`, "INVALID_FIELD", "bonus", ""},
		{"bonus zero", "/integrations/campaigns/c", `{"name":"x","bonus":0}`, "INVALID_FIELD", "bonus", ""},
		{"budget negative", "/integrations/campaigns/c", `{"name":"x","bonus":5,"budget":-1}`, "INVALID_FIELD", "budget", ""},
		{"cap zero", "/integrations/campaigns/c", `{"name":"x","bonus":5,"perUserCap":0}`, "INVALID_FIELD", "perUserCap", ""},
		{"stacking", "/integrations/campaigns/c", `{"name":"x","bonus":5,"stacking":"max"}`, "INVALID_FIELD", "stacking", ""},
		{"from not a time", "/integrations/campaigns/c", `{"name":"x","bonus":5,"from":"tomorrow"}`, "INVALID_FIELD", "from", ""},
		{"until before from", "/integrations/campaigns/c", `{"name":"x","bonus":5,"from":"2026-12-05T00:00:00Z","until":"2026-12-04T00:00:00Z"}`, "INVALID_FIELD", "until", ""},
		{"unknown action", "/integrations/campaigns/c", `{"name":"x","bonus":5,"actions":["purchase","ghost"]}`, "INVALID_FIELD", "actions[1]", ""},
		{"another partner's action", "/integrations/campaigns/c", `{"name":"x","bonus":5,"actions":["globex-only"]}`, "INVALID_FIELD", "actions[0]", ""},
		{"unknown field", "/integrations/campaigns/c", `{"name":"x","bonus":5,"budgetPoints":3}`, "UNKNOWN_FIELD", "budgetPoints", ""},
		{"condition syntax", "/integrations/campaigns/c", `{"name":"x","bonus":5,"condition":"user.tier == 'gold' &&\n earn.amount >"}`, "INVALID_CONDITION", "condition", "line 2, column"},
		{"condition unknown field", "/integrations/campaigns/c", `{"name":"x","bonus":5,"condition":"user.teir == 'gold'"}`, "INVALID_CONDITION", "condition", "line 1, column 5"},
		{"condition not bool", "/integrations/campaigns/c", `{"name":"x","bonus":5,"condition":"earn.points * 2"}`, "INVALID_CONDITION", "condition", "bool"},
		{"condition too costly", "/integrations/campaigns/c", `{"name":"x","bonus":5,"condition":"earn.metadata.a.all(x, earn.metadata.b.exists(y, x == y))"}`, "CONDITION_TOO_COSTLY", "condition", "limit"},
		{"condition too long", "/integrations/campaigns/c", `{"name":"x","bonus":5,"condition":"` + strings.Repeat("true && ", 300) + `true"}`, "INVALID_CONDITION", "condition", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", http.MethodPut, c.path, []byte(c.body))
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.Body)
			p := res.JSON(t)
			require.Equal(t, c.code, p["code"], "%s", res.Body)
			require.Equal(t, c.field, p["field"], "%s", res.Body)
			require.Contains(t, p["detail"], c.detail)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}

// TestUserAttributes: attributes are set, replaced, kept when omitted,
// returned by GET, refused when out of bounds, read by conditions, and
// cleared by anonymisation.
func TestUserAttributes(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"attr-1","countryCode":"SG","attributes":{"segment":"vip","visits":12,"newsletter":true,"score":4.5}}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	userID := uuid.MustParse(res.JSON(t)["userId"].(string))
	getAttrs := func() any {
		res := env.Partner("acme", http.MethodGet, "/integrations/users/attr-1", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		return res.JSON(t)["attributes"]
	}
	require.Equal(t, map[string]any{"segment": "vip", "visits": float64(12), "newsletter": true, "score": 4.5}, getAttrs())

	// Omitted or null: unchanged.
	for _, b := range []string{`{"externalUserId":"attr-1","displayName":"A"}`, `{"externalUserId":"attr-1","attributes":null}`} {
		require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(b)).StatusCode)
		require.Equal(t, "vip", getAttrs().(map[string]any)["segment"])
	}

	// Conditions read them from the user's row.
	putRuleOK(t, env, "acme", "purchase")
	res = env.Partner("acme", http.MethodPut, "/integrations/campaigns/vip", []byte(`{"name":"VIP","bonus":30,"condition":"user.attributes.segment == 'vip' && user.attributes.visits > 10 && user.country == 'SG'"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	apply := func() []campaign.Award {
		tx, err := env.DB.Bun.BeginTx(context.Background(), nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		awards, err := env.App.Campaigns.ApplyTx(context.Background(), tx, env.PartnerID("acme"), userID, campaign.Facts{Action: "purchase", BasePoints: 10})
		require.NoError(t, err)
		return awards
	}
	require.Len(t, apply(), 1)

	// Replace: the whole object.
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"attr-1","attributes":{"segment":"basic"}}`)).StatusCode)
	require.Equal(t, map[string]any{"segment": "basic"}, getAttrs())
	require.Empty(t, apply())

	// Anonymised: cleared in the row, {} in GET; revival does not bring them back.
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"attr-1","attributes":{"segment":"vip","visits":20}}`)).StatusCode)
	require.Len(t, apply(), 1)
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/attr-1", nil).StatusCode)
	require.Equal(t, 1, env.Count("users", "id = ? AND attributes = '{}'", userID))
	require.Empty(t, apply())
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"attr-1"}`)).StatusCode)
	require.Equal(t, map[string]any{}, getAttrs())

	// Erased: the row goes, with the campaign totals that name the user.
	res = env.Partner("acme", http.MethodPut, "/integrations/campaigns/capped", []byte(`{"name":"Capped","bonus":5,"perUserCap":100}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	tx, err := env.DB.Bun.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	_, err = env.App.Campaigns.ApplyTx(context.Background(), tx, env.PartnerID("acme"), userID, campaign.Facts{Action: "purchase", BasePoints: 10})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Equal(t, 1, env.Count("campaign_user_totals", "user_id = ?", userID))
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/attr-1?mode=erase", nil).StatusCode)
	require.Equal(t, 0, env.Count("users", "id = ?", userID))
	require.Equal(t, 0, env.Count("campaign_user_totals", "user_id = ?", userID))
}

// TestUserAttributesBadInput: each out-of-bounds attributes object is a
// 400 naming the field, and changes nothing.
func TestUserAttributesBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"attr-2","attributes":{"a":1}}`)).StatusCode)
	many := make([]string, 51)
	for i := range many {
		many[i] = `"k` + strings.Repeat("x", i) + `":1`
	}
	cases := []struct{ name, attrs, field string }{
		{"not an object", `[1,2]`, "attributes"},
		{"a string", `"vip"`, "attributes"},
		{"51 keys", "{" + strings.Join(many, ",") + "}", "attributes"},
		{"key with a dot", `{"a.b":1}`, "attributes"},
		{"key starting with a digit", `{"1a":1}`, "attributes"},
		{"key too long", `{"` + strings.Repeat("k", 41) + `":1}`, "attributes"},
		{"nested object", `{"address":{"city":"SG"}}`, "attributes.address"},
		{"array", `{"tags":["a"]}`, "attributes.tags"},
		{"null value", `{"segment":null}`, "attributes.segment"},
		{"string too long", `{"note":"` + strings.Repeat("é", 257) + `"}`, "attributes.note"},
		{"control character", `{"note":"a\u0001b"}`, "attributes.note"},
		{"number out of range", `{"n":1e400}`, "attributes.n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"attr-2","attributes":`+c.attrs+`}`))
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.field, res.JSON(t)["field"], "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
		})
	}
}
