package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

const threeTiers = `{"tiers":[{"code":"member","name":"Member"},` +
	`{"code":"silver","name":"Silver","threshold":1000,"multiplier":1.25,"benefits":"Free delivery"},` +
	`{"code":"gold","name":"Gold","threshold":5000,"multiplier":1.5,"benefits":"Free delivery\nLounge"}]}`

// TestTiersAPI: GET is empty until a PUT; a PUT replaces the list exactly
// once per idempotency key; one partner's tiers never show in another's;
// the program policy carries the tier policy.
func TestTiersAPI(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	res := env.Partner("acme", http.MethodGet, "/integrations/tiers", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, map[string]any{"tiers": []any{}}, res.JSON(t))

	key := map[string]string{"Idempotency-Key": "tiers-1"}
	res = env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(threeTiers), key)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	want := map[string]any{"tiers": []any{
		map[string]any{"code": "member", "name": "Member", "threshold": float64(0), "multiplier": float64(1), "benefits": ""},
		map[string]any{"code": "silver", "name": "Silver", "threshold": float64(1000), "multiplier": 1.25, "benefits": "Free delivery"},
		map[string]any{"code": "gold", "name": "Gold", "threshold": float64(5000), "multiplier": 1.5, "benefits": "Free delivery\nLounge"},
	}}
	require.Equal(t, want, res.JSON(t))
	first := res.Body

	// The same key and body: the stored answer, nothing written again.
	require.Equal(t, 3, env.Count("tiers", "true"))
	res = env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(threeTiers), key)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	require.Equal(t, first, res.Body)

	res = env.Partner("acme", http.MethodGet, "/integrations/tiers", nil)
	require.Equal(t, want, res.JSON(t))
	res = env.Partner("globex", http.MethodGet, "/integrations/tiers", nil)
	require.Equal(t, map[string]any{"tiers": []any{}}, res.JSON(t), "tenant isolation")

	// Replace means replace.
	res = env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(`{"tiers":[{"code":"basic","name":"Basic","multiplier":2}]}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodGet, "/integrations/tiers", nil)
	require.Equal(t, map[string]any{"tiers": []any{
		map[string]any{"code": "basic", "name": "Basic", "threshold": float64(0), "multiplier": float64(2), "benefits": ""},
	}}, res.JSON(t))

	res = env.Partner("acme", http.MethodPut, "/integrations/program", []byte(`{"tierBasis":"calendarYear","tierDowngrade":"periodEnd","tierGraceDays":30}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	got := res.JSON(t)
	require.Equal(t, "calendarYear", got["tierBasis"])
	require.Equal(t, "periodEnd", got["tierDowngrade"])
	require.Equal(t, float64(30), got["tierGraceDays"])
}

// TestTiersAPIBadInput: one bad list per row, each a 400 naming the field,
// none changing the database.
func TestTiersAPIBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(threeTiers)).StatusCode)
	cases := []struct{ name, body, code, field string }{
		{"no list", `{}`, "MISSING_FIELD", "tiers"},
		{"first threshold", `{"tiers":[{"code":"a","name":"A","threshold":10}]}`, "INVALID_FIELD", "tiers[0].threshold"},
		{"not increasing", `{"tiers":[{"code":"a","name":"A"},{"code":"b","name":"B","threshold":10},{"code":"c","name":"C","threshold":10}]}`, "INVALID_FIELD", "tiers[2].threshold"},
		{"duplicate code", `{"tiers":[{"code":"a","name":"A"},{"code":"a","name":"B","threshold":10}]}`, "INVALID_FIELD", "tiers[1].code"},
		{"three decimals", `{"tiers":[{"code":"a","name":"A","multiplier":1.255}]}`, "INVALID_FIELD", "tiers[0].multiplier"},
		{"exponent", `{"tiers":[{"code":"a","name":"A","multiplier":1e0}]}`, "INVALID_FIELD", "tiers[0].multiplier"},
		{"below one", `{"tiers":[{"code":"a","name":"A","multiplier":0.5}]}`, "INVALID_FIELD", "tiers[0].multiplier"},
		{"above ten", `{"tiers":[{"code":"a","name":"A","multiplier":10.5}]}`, "INVALID_FIELD", "tiers[0].multiplier"},
		{"multiplier string", `{"tiers":[{"code":"a","name":"A","multiplier":"1.5"}]}`, "INVALID_FIELD", "tiers[0].multiplier"},
		{"no name", `{"tiers":[{"code":"a"}]}`, "INVALID_FIELD", "tiers[0].name"},
		{"bad code", `{"tiers":[{"code":"A b","name":"A"}]}`, "INVALID_FIELD", "tiers[0].code"},
		{"negative threshold", `{"tiers":[{"code":"a","name":"A"},{"code":"b","name":"B","threshold":-1}]}`, "INVALID_FIELD", "tiers[1].threshold"},
		{"unknown field", `{"tiers":[{"code":"a","name":"A","color":"red"}]}`, "UNKNOWN_FIELD", "color"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(c.body))
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.Body)
			p := res.JSON(t)
			require.Equal(t, c.code, p["code"], "%s", res.Body)
			require.Equal(t, c.field, p["field"], "%s", res.Body)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "a rejected request changed the database")
		})
	}
}

// TestGiftMinTier: a gift with minTier is refused (TIER_TOO_LOW) to a user
// below it, the catalog says why, and the same user claims it once an earn
// lifts them to the tier; an unknown minTier is refused at PUT.
func TestGiftMinTier(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	require.Equal(t, http.StatusOK, env.Partner("acme", http.MethodPut, "/integrations/tiers", []byte(threeTiers)).StatusCode)
	res := env.Partner("acme", http.MethodPut, "/integrations/gifts/lounge",
		[]byte(`{"title":"Lounge","costPoints":10,"codeSource":"none","minTier":"platinum"}`))
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.Body)
	require.Equal(t, "minTier", res.JSON(t)["field"])
	res = env.Partner("acme", http.MethodPut, "/integrations/gifts/lounge",
		[]byte(`{"title":"Lounge","costPoints":10,"codeSource":"none","minTier":"silver"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	require.Equal(t, "silver", res.JSON(t)["minTier"])
	var giftID uuid.UUID
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id FROM gifts WHERE sku = 'lounge' AND partner_id = ?", env.PartnerID("acme")).Scan(context.Background(), &giftID))

	env.FundedUser("acme", "ann", "SG", 0)
	earn := func(points int) {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions",
			[]byte(fmt.Sprintf(`{"externalUserId":"ann","action":"purchase","points":%d}`, points)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	earn(999)
	tok := env.Token("acme", "ann", nil)
	reason := func() any {
		res := env.GraphQL(tok, `{ catalog { edges { node { sku canClaim reason } } } }`, nil)
		require.Empty(t, res.Errors)
		var d struct {
			Catalog struct {
				Edges []struct{ Node map[string]any }
			}
		}
		require.NoError(t, json.Unmarshal(res.Data, &d))
		for _, e := range d.Catalog.Edges {
			if e.Node["sku"] == "lounge" {
				return e.Node["reason"]
			}
		}
		t.Fatal("lounge not in the catalog")
		return nil
	}
	require.Equal(t, "TIER_TOO_LOW", reason())
	require.Equal(t, "TIER_TOO_LOW", env.Claim(tok, giftID, "c1").ErrorCode())

	me := func() string {
		res := env.GraphQL(tok, `{ me { tier { code name multiplier } nextTier { code name pointsToGo } } }`, nil)
		require.Empty(t, res.Errors)
		return string(res.Data)
	}
	require.JSONEq(t, `{"me":{"tier":{"code":"member","name":"Member","multiplier":1},"nextTier":{"code":"silver","name":"Silver","pointsToGo":1}}}`, me())
	earn(1) // 1000: silver
	require.JSONEq(t, `{"me":{"tier":{"code":"silver","name":"Silver","multiplier":1.25},"nextTier":{"code":"gold","name":"Gold","pointsToGo":4000}}}`, me())
	require.Nil(t, reason())
	require.Empty(t, env.Claim(tok, giftID, "c2").Errors)
}
